// Package prometheus is the MetricTemplate provider "prometheus": it runs a rendered
// PromQL query against a Prometheus server's HTTP API (with client_golang's API client)
// and answers with the single sample it returns. It also holds Flagger's App Mesh
// queries for the built-in checks (BuiltinQuery) and writes the scrape configuration
// that makes them work against Canarymesh's proxies (ScrapeConfig, TargetGroups).
//
//	MetricTemplate ─RenderQuery─▶ PromQL ─/api/v1/query─▶ one sample │ ErrNoData │ error
//
// A result of several series is an error naming them: summing or picking one would
// judge a canary on numbers the user did not ask for.
//
// The scrape configuration is written as plain YAML maps: Prometheus' own config
// package would bring the whole server in as a dependency for a few fields.
//
// promtest/ starts a real Prometheus server for tests.
package prometheus
