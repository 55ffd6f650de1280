// Package hooks talks to the world outside the mesh on a canary's behalf: Flagger-style
// webhooks (gates, tests, load, rollback checks, events) and alerts to chat services.
//
// Payloads follow Flagger's, so the hooks users already run — flagger-loadtester, their
// own gates, Slack, Microsoft Teams, Discord — work unchanged:
//
//	webhook  POST {name, namespace, phase, checksum, metadata}   2xx passes
//	event    POST the same, metadata += eventMessage, eventType, timestamp
//	slack    {channel, username, icon_emoji, attachments[{color, author_name, text, mrkdwn_in, fields}]}
//	discord  the Slack shape, posted to the webhook URL + "/slack"
//	msteams  a MessageCard {@type, @context, themeColor, summary, sections[{activityTitle, activitySubtitle, facts}]}
//	generic  the event webhook payload
package hooks
