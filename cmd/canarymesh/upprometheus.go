package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/metrics"
	"github.com/canarymesh/canarymesh/internal/metrics/builtin"
	"github.com/canarymesh/canarymesh/internal/metrics/prometheus"
	"github.com/canarymesh/canarymesh/internal/proxy/local"
	"github.com/canarymesh/canarymesh/internal/store"
)

// secretsDir is where standalone MetricTemplate secretRefs are read from, in the data
// directory: secrets/NAMESPACE/NAME.yaml.
const secretsDir = "secrets"

// promFlags are `up`'s Prometheus options.
type promFlags struct {
	metricsServer string
	configFile    string
	interval      time.Duration
	dataDir       string // set by runUp
}

func addPrometheusFlags(fl *pflag.FlagSet, f *promFlags) {
	fl.StringVar(&f.metricsServer, "metrics-server", "", "Prometheus URL: the built-in checks run Flagger's App Mesh queries there instead of reading the proxies' windows, and so do metric checks with an inline query (a Canary's spec.metricsServer overrides it)")
	fl.StringVar(&f.configFile, "prometheus-config", "", "write a Prometheus configuration to this file that scrapes the proxies, the controller and the workloads (file_sd target files beside it are kept current)")
	fl.DurationVar(&f.interval, "prometheus-scrape-interval", 15*time.Second, "scrape interval written by --prometheus-config")
}

// meshMetrics measures metric checks: the windows, the default Prometheus, and the
// secrets directory for templates' secretRefs.
func (f *promFlags) meshMetrics(st store.Store, windows builtin.WindowSource) *canary.MeshMetrics {
	return &canary.MeshMetrics{Store: st, Windows: windows, MetricsServer: f.metricsServer,
		Secrets: metrics.FileSecrets{Dir: filepath.Join(f.dataDir, secretsDir)}}
}

// writeConfig writes --prometheus-config and keeps its target files current until ctx
// ends; mgr is nil without in-process proxies.
func (f *promFlags) writeConfig(ctx context.Context, st store.Store, mgr *local.Manager, adminAddr string, log *slog.Logger) error {
	if f.configFile == "" {
		return nil
	}
	if adminAddr == "" {
		return fmt.Errorf("--prometheus-config: nothing serves the proxies' and the controller's metrics; give --admin-listen")
	}
	cfg, err := prometheus.ScrapeConfig(prometheus.ScrapeOptions{AdminAddr: adminAddr, Interval: f.interval})
	if err != nil {
		return err
	}
	dir := filepath.Dir(f.configFile)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--prometheus-config: %w", err)
	}
	if err := prometheus.WriteFileAtomic(f.configFile, cfg); err != nil {
		return fmt.Errorf("--prometheus-config: %w", err)
	}
	w := &prometheus.TargetsWriter{Dir: dir, AdminAddr: adminAddr, Log: log,
		Workloads: func(ctx context.Context) ([]*v1alpha1.Workload, error) {
			objs, _, err := st.List(ctx, store.Filter{Kind: "Workload"})
			if err != nil {
				return nil, err
			}
			out := make([]*v1alpha1.Workload, 0, len(objs))
			for _, o := range objs {
				if w, ok := o.(*v1alpha1.Workload); ok {
					out = append(out, w)
				}
			}
			return out, nil
		}}
	if mgr != nil {
		w.Nodes = mgr.Nodes
	}
	if err := w.Write(ctx); err != nil {
		return err
	}
	go w.Run(ctx)
	log.Info("prometheus configuration written", "file", f.configFile, "targets", filepath.Join(dir, prometheus.ProxiesTargetsFile))
	return nil
}
