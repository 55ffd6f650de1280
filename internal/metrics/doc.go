// Package metrics is how a canary's metric checks are measured: a Provider answers one
// query with one number, or with ErrNoData when there was nothing to measure.
//
// builtin/ measures request-success-rate and request-duration from the proxies' own
// windows; providers that send queries elsewhere (prometheus/, web) implement the same
// interface.
package metrics
