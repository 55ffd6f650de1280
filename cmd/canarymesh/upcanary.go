package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/hooks"
	"github.com/canarymesh/canarymesh/internal/metrics/builtin"
	"github.com/canarymesh/canarymesh/internal/proxy/local"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/workload"
)

// startCanaries runs the canary controller over the store: Workload targets, the mesh's
// router, metric checks measured by metrics, and prop to wait for the proxies before a
// canary is scaled down. stop ends it
// and waits for the runs under way, before the store closes.
func startCanaries(ctx context.Context, st store.Store, log *slog.Logger, metrics *canary.MeshMetrics, prop canary.Propagation) (stats *canary.Stats, stop func()) {
	log = log.With("component", "canary")
	stats = canary.NewStats()
	c := &canary.Controller{
		Store:    st,
		Target:   &workload.WorkloadTarget{Store: st},
		Router:   &canary.MeshRouter{Store: st, Log: log},
		Metrics:  metrics,
		Hooks:    &hooks.Caller{},
		Recorder: &hooks.Recorder{Store: st, Source: "canary-controller"},
		Stats:    stats,
		Log:      log,
		// New weights must be ACKed by the proxies before a canary is scaled down.
		Propagation: prop,
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(cctx)
	}()
	return stats, func() { cancel(); <-done }
}

// proxyWindows gives the built-in metrics the in-process proxies' traffic windows.
func proxyWindows(m *local.Manager) builtin.WindowSource {
	return builtin.WindowFunc(func(cluster string, d time.Duration) builtin.Stats {
		w := m.Window(cluster, d)
		return builtin.Stats{Requests: w.Requests, Errors5xx: w.Errors5xx, SuccessRate: w.SuccessRate, P99: w.P99, NoData: w.NoData}
	})
}
