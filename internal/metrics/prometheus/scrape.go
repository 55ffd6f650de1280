package prometheus

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// Files the scrape configuration's file_sd jobs read, beside the configuration file.
const (
	ProxiesTargetsFile   = "canarymesh-proxies.json"
	WorkloadsTargetsFile = "canarymesh-workloads.json"
)

// Pod annotations (and Workload annotations in standalone mode) that Prometheus'
// conventional Kubernetes configuration reads.
const (
	AnnotationScrape = "prometheus.io/scrape"
	AnnotationPath   = "prometheus.io/path"
	AnnotationPort   = "prometheus.io/port"
)

// ClusterLabelRelabel are metric_relabel_configs that give every proxy cluster series
// the labels Flagger's App Mesh queries select on, taken from envoy_cluster_name
// (cds_DIRECTION_[MESH_]NODE_NAMESPACE_PROTOCOL_PORT): kubernetes_namespace is the
// node's namespace and kubernetes_pod_name a pod-like name of the workload behind the
// node, as if that workload's sidecar had counted the request. The canary node
// NAME-canary serves workload NAME, so its pod name is NAME-standalone-PROXY, which
// {{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+) matches; the primary's,
// NAME-primary-standalone-PROXY, has one part too many, as a primary pod's name has in
// Kubernetes.
func ClusterLabelRelabel() []map[string]any {
	const re = `cds_(egress|ingress)_(?:[a-z0-9.-]+_)?([a-z0-9.-]+?)(?:-canary)?_([a-z0-9.-]+)_(?:http|http2|grpc|tcp)_[0-9]+`
	return []map[string]any{
		{"source_labels": []string{"envoy_cluster_name"}, "regex": re, "target_label": "kubernetes_namespace", "replacement": "$3"},
		{"source_labels": []string{"envoy_cluster_name"}, "regex": re, "target_label": "kubernetes_pod_name", "replacement": "${2}-standalone-${1}"},
	}
}

// ScrapeOptions describe what `canarymesh up` serves.
type ScrapeOptions struct {
	// AdminAddr is the admin listener (host:port): the proxies' /stats/prometheus and
	// the controller's /metrics.
	AdminAddr string
	// Interval is the scrape interval (default 15s).
	Interval time.Duration
}

// ScrapeConfig returns a Prometheus configuration with three jobs: the in-process
// proxies and the workloads, both from file_sd files kept beside it (see TargetGroups),
// and the canary controller's /metrics.
func ScrapeConfig(o ScrapeOptions) ([]byte, error) {
	if o.AdminAddr == "" {
		return nil, fmt.Errorf("scrape config: no admin address")
	}
	iv := o.Interval
	if iv <= 0 {
		iv = 15 * time.Second
	}
	cfg := map[string]any{
		"global": map[string]any{"scrape_interval": iv.String(), "evaluation_interval": iv.String()},
		"scrape_configs": []any{
			map[string]any{
				"job_name":               "canarymesh-proxies",
				"file_sd_configs":        []any{map[string]any{"files": []string{ProxiesTargetsFile}, "refresh_interval": "30s"}},
				"metric_relabel_configs": ClusterLabelRelabel(),
			},
			map[string]any{
				"job_name":       "canarymesh-controller",
				"metrics_path":   "/metrics",
				"static_configs": []any{map[string]any{"targets": []string{o.AdminAddr}}},
			},
			map[string]any{
				"job_name":        "canarymesh-workloads",
				"file_sd_configs": []any{map[string]any{"files": []string{WorkloadsTargetsFile}, "refresh_interval": "30s"}},
			},
		},
	}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("scrape config: %w", err)
	}
	return append([]byte("# Written by canarymesh up --prometheus-config; the target files beside it are kept current.\n"), b...), nil
}

// TargetGroup is one entry of a file_sd file.
type TargetGroup struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// ProxyTargets are the in-process proxies behind the admin address: the egress proxy at
// /stats/prometheus and every other node at /proxies/NODE/stats/prometheus.
func ProxyTargets(adminAddr string, nodes []string) []TargetGroup {
	nodes = append([]string(nil), nodes...)
	sort.Strings(nodes)
	out := make([]TargetGroup, 0, len(nodes))
	for _, n := range nodes {
		path := "/proxies/" + n + "/stats/prometheus"
		if n == snapshot.EgressNode {
			path = "/stats/prometheus"
		}
		out = append(out, TargetGroup{Targets: []string{adminAddr},
			Labels: map[string]string{"__metrics_path__": path, "canarymesh_node": n}})
	}
	return out
}

// WorkloadTargets are the instances of the workloads, at 127.0.0.1:PORT and the path
// of their prometheus.io/path annotation (default /metrics); a workload annotated
// prometheus.io/scrape: "false" is left out.
func WorkloadTargets(ws []*v1alpha1.Workload) []TargetGroup {
	var out []TargetGroup
	for _, w := range ws {
		if w.Annotations[AnnotationScrape] == "false" {
			continue
		}
		path := w.Annotations[AnnotationPath]
		if path == "" {
			path = "/metrics"
		}
		for _, in := range w.Status.Instances {
			if in.Port == 0 {
				continue
			}
			out = append(out, TargetGroup{Targets: []string{"127.0.0.1:" + strconv.Itoa(int(in.Port))},
				Labels: map[string]string{"__metrics_path__": path, "namespace": w.Namespace, "workload": w.Name,
					"instance_index": strconv.Itoa(int(in.Index)), "revision": in.Revision}})
		}
	}
	return out
}

// TargetsWriter keeps the file_sd files current as proxies and workloads come and go.
type TargetsWriter struct {
	// Dir holds the files (the configuration file's directory).
	Dir string
	// AdminAddr is where the proxies' metrics are served.
	AdminAddr string
	// Nodes lists the nodes with a running proxy; nil when none run in this process.
	Nodes func() []string
	// Workloads lists the workloads.
	Workloads func(ctx context.Context) ([]*v1alpha1.Workload, error)
	// Every is how often the lists are read (default 2s).
	Every time.Duration
	Log   *slog.Logger

	last map[string][]byte
}

// Write writes both files if their content changed.
func (w *TargetsWriter) Write(ctx context.Context) error {
	var nodes []string
	if w.Nodes != nil {
		nodes = w.Nodes()
	}
	proxies := ProxyTargets(w.AdminAddr, nodes)
	var ws []*v1alpha1.Workload
	if w.Workloads != nil {
		var err error
		if ws, err = w.Workloads(ctx); err != nil {
			return fmt.Errorf("listing workloads for the scrape targets: %w", err)
		}
	}
	if err := w.writeIfChanged(ProxiesTargetsFile, proxies); err != nil {
		return err
	}
	return w.writeIfChanged(WorkloadsTargetsFile, WorkloadTargets(ws))
}

func (w *TargetsWriter) writeIfChanged(name string, groups []TargetGroup) error {
	if groups == nil {
		groups = []TargetGroup{}
	}
	b, err := json.MarshalIndent(groups, "", "  ")
	if err != nil {
		return err
	}
	if w.last == nil {
		w.last = map[string][]byte{}
	}
	if bytes.Equal(w.last[name], b) {
		return nil
	}
	if err := WriteFileAtomic(filepath.Join(w.Dir, name), append(b, '\n')); err != nil {
		return fmt.Errorf("writing scrape targets: %w", err)
	}
	w.last[name] = b
	return nil
}

// Run writes the files now and whenever the lists change, until ctx ends.
func (w *TargetsWriter) Run(ctx context.Context) {
	every := w.Every
	if every <= 0 {
		every = 2 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if err := w.Write(ctx); err != nil && w.Log != nil {
			w.Log.WarnContext(ctx, "cannot update the Prometheus scrape targets", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// WriteFileAtomic writes through a temporary file and a rename, so that Prometheus never
// reads a half-written file.
func WriteFileAtomic(p string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}
