package hooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// Field is one fact of an alert (name and value), shown as a table by chat services.
type Field struct {
	Name  string
	Value string
}

// Alert is one message about a canary.
type Alert struct {
	Workload  string // the canary's name
	Namespace string
	Message   string
	Fields    []Field
	// Severity is info, warn or error; error is shown in red.
	Severity string
}

// Notifier sends alerts to one chat service or endpoint.
type Notifier interface {
	Post(ctx context.Context, a Alert) error
}

// SecretLookup returns the keys of a named secret in the canary's namespace: "address"
// (the webhook URL), "token", "proxy", "username", "channel".
type SecretLookup func(ctx context.Context, namespace, name string) (map[string]string, error)

// NewNotifier builds the notifier of an AlertProvider, reading its address from
// secretRef when set. Unknown types are refused, naming the known ones.
func NewNotifier(ctx context.Context, p *v1alpha1.AlertProvider, secrets SecretLookup) (Notifier, error) {
	s := p.Spec
	addr, proxy, username, channel := s.Address, s.Proxy, s.Username, s.Channel
	if s.SecretRef != nil {
		if secrets == nil {
			return nil, fmt.Errorf("AlertProvider %s/%s: secretRef %s cannot be read here", p.Namespace, p.Name, s.SecretRef.Name)
		}
		kv, err := secrets(ctx, p.Namespace, s.SecretRef.Name)
		if err != nil {
			return nil, fmt.Errorf("AlertProvider %s/%s: secret %s: %w", p.Namespace, p.Name, s.SecretRef.Name, err)
		}
		addr = firstNonEmpty(kv["address"], addr)
		proxy = firstNonEmpty(kv["proxy"], proxy)
		username = firstNonEmpty(kv["username"], username)
		channel = firstNonEmpty(kv["channel"], channel)
	}
	u, err := url.ParseRequestURI(addr)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("AlertProvider %s/%s: address %q is not an http(s) URL", p.Namespace, p.Name, addr)
	}
	client, err := httpClient(proxy)
	if err != nil {
		return nil, fmt.Errorf("AlertProvider %s/%s: proxy: %w", p.Namespace, p.Name, err)
	}
	if username == "" {
		username = "canarymesh"
	}
	post := poster{url: addr, client: client}
	switch s.Type {
	case v1alpha1.AlertProviderSlack, v1alpha1.AlertProviderRocket:
		return &slack{poster: post, username: username, channel: channel}, nil
	case v1alpha1.AlertProviderDiscord:
		if !strings.HasSuffix(u.Path, "/slack") {
			u.Path = path.Join(u.Path, "slack")
		}
		post.url = u.String()
		return &slack{poster: post, username: username, channel: channel}, nil
	case v1alpha1.AlertProviderMSTeams:
		return &teams{poster: post}, nil
	case v1alpha1.AlertProviderGChat:
		return &gchat{poster: post}, nil
	case v1alpha1.AlertProviderGeneric:
		return &generic{poster: post}, nil
	}
	return nil, fmt.Errorf("AlertProvider %s/%s: type %q is not one of %s", p.Namespace, p.Name, s.Type, strings.Join(v1alpha1.AlertProviderTypes, ", "))
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func httpClient(proxy string) (*http.Client, error) {
	if proxy == "" {
		return &http.Client{Timeout: 10 * time.Second}, nil
	}
	pu, err := url.Parse(proxy)
	if err != nil {
		return nil, err
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: http.ProxyURL(pu)}}, nil
}

type poster struct {
	url    string
	client *http.Client
}

func (p poster) post(ctx context.Context, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxBodyInMessage))
		return fmt.Errorf("%s answered %d: %s", p.url, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}

func title(a Alert) string { return a.Workload + "." + a.Namespace }

// slack is Slack's incoming-webhook payload, which Rocket.Chat and Discord (on /slack)
// accept as well.
type slack struct {
	poster
	username, channel string
}

type slackPayload struct {
	Channel     string            `json:"channel,omitempty"`
	Username    string            `json:"username"`
	IconEmoji   string            `json:"icon_emoji"`
	Attachments []slackAttachment `json:"attachments"`
}

type slackAttachment struct {
	Color      string       `json:"color"`
	AuthorName string       `json:"author_name"`
	Text       string       `json:"text"`
	MrkdwnIn   []string     `json:"mrkdwn_in"`
	Fields     []slackField `json:"fields"`
}

type slackField struct {
	Title string `json:"title"`
	Value string `json:"value"`
	Short bool   `json:"short"`
}

func (s *slack) Post(ctx context.Context, a Alert) error {
	color := "good"
	if a.Severity == "error" {
		color = "danger"
	}
	fields := make([]slackField, 0, len(a.Fields))
	for _, f := range a.Fields {
		fields = append(fields, slackField{Title: f.Name, Value: f.Value})
	}
	return s.post(ctx, slackPayload{Channel: s.channel, Username: s.username, IconEmoji: ":rocket:",
		Attachments: []slackAttachment{{Color: color, AuthorName: title(a), Text: a.Message, MrkdwnIn: []string{"text"}, Fields: fields}}})
}

// teams is a Microsoft Teams MessageCard.
type teams struct{ poster }

type teamsFact struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type teamsSection struct {
	ActivityTitle    string      `json:"activityTitle"`
	ActivitySubtitle string      `json:"activitySubtitle"`
	Facts            []teamsFact `json:"facts"`
}

type teamsPayload struct {
	Type       string         `json:"@type"`
	Context    string         `json:"@context"`
	ThemeColor string         `json:"themeColor"`
	Summary    string         `json:"summary"`
	Sections   []teamsSection `json:"sections"`
}

func (t *teams) Post(ctx context.Context, a Alert) error {
	facts := make([]teamsFact, 0, len(a.Fields))
	for _, f := range a.Fields {
		facts = append(facts, teamsFact(f))
	}
	color := "0076D7"
	if a.Severity == "error" {
		color = "FF0000"
	}
	return t.post(ctx, teamsPayload{Type: "MessageCard", Context: "http://schema.org/extensions", ThemeColor: color,
		Summary: title(a), Sections: []teamsSection{{ActivityTitle: a.Message, ActivitySubtitle: title(a), Facts: facts}}})
}

// gchat is a Google Chat card message.
type gchat struct{ poster }

func (g *gchat) Post(ctx context.Context, a Alert) error {
	widgets := []map[string]any{{"textParagraph": map[string]string{"text": a.Message}}}
	for _, f := range a.Fields {
		widgets = append(widgets, map[string]any{"keyValue": map[string]string{"topLabel": f.Name, "content": f.Value}})
	}
	return g.post(ctx, map[string]any{"cards": []any{map[string]any{
		"header":   map[string]string{"title": title(a), "subtitle": a.Severity},
		"sections": []any{map[string]any{"widgets": widgets}},
	}}})
}

// generic posts the event webhook's payload, for any HTTP endpoint.
type generic struct{ poster }

func (g *generic) Post(ctx context.Context, a Alert) error {
	md := map[string]string{"eventMessage": a.Message, "eventType": a.Severity, "timestamp": fmt.Sprint(time.Now().UnixMilli())}
	for _, f := range a.Fields {
		md[f.Name] = f.Value
	}
	return g.post(ctx, Payload{Name: a.Workload, Namespace: a.Namespace, Metadata: md})
}
