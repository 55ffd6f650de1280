// Package builtin measures the canary's built-in metrics from the proxies' own counters,
// with no Prometheus: request-success-rate, the percentage of requests not answered
// 5xx, and request-duration, their P99 in milliseconds, over a window of the canary's
// virtual node (the metric's interval).
package builtin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/metrics"
)

// Stats is one virtual node's traffic over a recent window.
type Stats struct {
	Requests  uint64
	Errors5xx uint64
	// SuccessRate is the percentage of requests not answered 5xx.
	SuccessRate float64
	// P99 is the 99th percentile of request durations.
	P99 time.Duration
	// NoData is true when no request completed in the window.
	NoData bool
}

// WindowSource reports a virtual node's traffic over the last d. cluster names the
// virtual node as "NAMESPACE/NAME".
type WindowSource interface {
	Window(cluster string, d time.Duration) Stats
}

// WindowFunc adapts a function to WindowSource.
type WindowFunc func(cluster string, d time.Duration) Stats

// Window calls f.
func (f WindowFunc) Window(cluster string, d time.Duration) Stats { return f(cluster, d) }

// Names are the built-in metrics, as Query accepts them.
var Names = []string{v1alpha1.MetricRequestSuccessRate, v1alpha1.MetricRequestDuration}

// ErrNoProxies: no window source was given, as when canarymesh up runs without its
// in-process proxies.
var ErrNoProxies = errors.New("no in-process proxies: built-in metrics are measured by them (run canarymesh up without --no-proxies, or use a MetricTemplate)")

// Provider answers built-in metric queries (the query is the metric's name) for one
// virtual node over one window.
type Provider struct {
	Source   WindowSource
	Cluster  string        // the virtual node, "NAMESPACE/NAME"
	Interval time.Duration // the window
}

var _ metrics.Provider = (*Provider)(nil)

// Query measures the named built-in metric.
func (p *Provider) Query(ctx context.Context, query string) (float64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if query != v1alpha1.MetricRequestSuccessRate && query != v1alpha1.MetricRequestDuration {
		return 0, fmt.Errorf("%q is not a built-in metric (%s and %s are)", query, Names[0], Names[1])
	}
	if p.Source == nil {
		return 0, ErrNoProxies
	}
	if p.Interval <= 0 {
		return 0, fmt.Errorf("metric %s: interval %v is not positive", query, p.Interval)
	}
	s := p.Source.Window(p.Cluster, p.Interval)
	if s.NoData || s.Requests == 0 {
		return 0, fmt.Errorf("%s of %s over %v: %w", query, p.Cluster, p.Interval, metrics.ErrNoData)
	}
	if query == v1alpha1.MetricRequestSuccessRate {
		return s.SuccessRate, nil
	}
	return float64(s.P99) / float64(time.Millisecond), nil
}
