package builtin

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/internal/metrics"
)

// windows is an in-memory WindowSource: fixed stats per cluster, and the windows asked.
type windows struct {
	stats map[string]Stats
	asked []time.Duration
}

func (w *windows) Window(cluster string, d time.Duration) Stats {
	w.asked = append(w.asked, d)
	s, ok := w.stats[cluster]
	if !ok {
		return Stats{NoData: true}
	}
	return s
}

func TestQuery(t *testing.T) {
	src := &windows{stats: map[string]Stats{
		"demo/podinfo-canary": {Requests: 200, Errors5xx: 3, SuccessRate: 98.5, P99: 1500 * time.Microsecond},
		"demo/idle":           {NoData: true},
	}}
	tests := []struct {
		name, cluster, query string
		want                 float64
		wantErr              error
		errText              string
	}{
		{name: "success rate", cluster: "demo/podinfo-canary", query: "request-success-rate", want: 98.5},
		{name: "p99 in ms", cluster: "demo/podinfo-canary", query: "request-duration", want: 1.5},
		{name: "no requests", cluster: "demo/idle", query: "request-success-rate", wantErr: metrics.ErrNoData},
		{name: "unknown cluster", cluster: "demo/none", query: "request-duration", wantErr: metrics.ErrNoData},
		{name: "unknown metric", cluster: "demo/podinfo-canary", query: "error-rate", errText: "not a built-in metric"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Provider{Source: src, Cluster: tt.cluster, Interval: time.Minute}
			got, err := p.Query(context.Background(), tt.query)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case tt.errText != "":
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("err = %v, want one saying %q", err, tt.errText)
				}
			case err != nil:
				t.Fatal(err)
			case got != tt.want:
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	if src.asked[0] != time.Minute {
		t.Errorf("window asked %v, want the metric's interval 1m", src.asked[0])
	}
}

func TestQueryWithoutProxies(t *testing.T) {
	p := &Provider{Cluster: "demo/podinfo-canary", Interval: time.Minute}
	_, err := p.Query(context.Background(), "request-success-rate")
	if !errors.Is(err, ErrNoProxies) || !strings.Contains(err.Error(), "no in-process proxies") {
		t.Fatalf("err = %v, want ErrNoProxies", err)
	}
}
