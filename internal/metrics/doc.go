// Package metrics is how a canary's metric checks are measured: a Provider answers one
// query with one number, or with ErrNoData when there was nothing to measure.
//
// builtin/ measures request-success-rate and request-duration from the proxies' own
// windows; prometheus/ runs PromQL against a Prometheus server and web/ reads a number
// out of any HTTP API's JSON answer. Both serve MetricTemplates, whose queries are
// rendered first with Flagger's template variables (RenderQuery). Their credentials come
// from a SecretSource: Secrets in Kubernetes, files (FileSecrets) in standalone mode.
package metrics
