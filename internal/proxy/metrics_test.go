package proxy

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

func TestMetricsExposition(t *testing.T) {
	v1 := newBackend(t, "v1", nil)
	v2 := newBackend(t, "v2", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	p := startProxy(t, egressSnapshot(1, []snapshot.Cluster{cluster("v1", v1), cluster("v2", v2)},
		service("podinfo", snapshot.Route{Name: "demo/podinfo-router/main", Targets: targets("v1", 50, "v2", 50)})))
	for i := 0; i < 10; i++ {
		get(t, p, "podinfo.demo", "/")
	}
	text := metrics(t, p)
	for _, want := range []string{
		`# TYPE envoy_cluster_upstream_rq counter`,
		`envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="cds_egress_global_v1_demo_http_80"} 5`,
		`envoy_cluster_upstream_rq{envoy_response_code="500",envoy_cluster_name="cds_egress_global_v2_demo_http_80"} 5`,
		`envoy_cluster_upstream_rq_xx{envoy_response_code_class="5",envoy_cluster_name="cds_egress_global_v2_demo_http_80"} 5`,
		`# TYPE envoy_cluster_upstream_rq_time histogram`,
		`envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="cds_egress_global_v1_demo_http_80",le="0.5"}`,
		`envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="cds_egress_global_v1_demo_http_80",le="3600000"}`,
		`envoy_cluster_upstream_rq_time_bucket{envoy_cluster_name="cds_egress_global_v1_demo_http_80",le="+Inf"} 5`,
		`envoy_cluster_upstream_rq_time_count{envoy_cluster_name="cds_egress_global_v1_demo_http_80"} 5`,
		`envoy_cluster_upstream_rq_total{envoy_cluster_name="cds_egress_global_v1_demo_http_80"} 5`,
		`envoy_cluster_upstream_cx_total{envoy_cluster_name="cds_egress_global_v1_demo_http_80"} `,
		`envoy_cluster_upstream_cx_active{envoy_cluster_name="cds_egress_global_v1_demo_http_80"} `,
		`envoy_cluster_upstream_rq_retry{envoy_cluster_name="cds_egress_global_v1_demo_http_80"} 0`,
		`envoy_cluster_upstream_rq_timeout{envoy_cluster_name="cds_egress_global_v1_demo_http_80"} 0`,
		`envoy_cluster_upstream_rq_pending_overflow{envoy_cluster_name="cds_egress_global_v1_demo_http_80"} 0`,
		`envoy_cluster_outlier_detection_ejections_active{envoy_cluster_name="cds_egress_global_v1_demo_http_80"} 0`,
		`envoy_cluster_outlier_detection_ejections_total{envoy_cluster_name="cds_egress_global_v1_demo_http_80"} 0`,
		`envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="egress"} 10`,
		`canarymesh_route_requests_total{mesh="global",virtual_service="demo/podinfo",route="demo/podinfo-router/main",virtual_node="demo/v1",code="200"} 5`,
		`canarymesh_route_requests_total{mesh="global",virtual_service="demo/podinfo",route="demo/podinfo-router/main",virtual_node="demo/v2",code="500"} 5`,
		`canarymesh_route_request_duration_seconds_bucket{mesh="global",virtual_service="demo/podinfo",route="demo/podinfo-router/main",virtual_node="demo/v1",le="0.0005"}`,
		`canarymesh_route_request_duration_seconds_count{mesh="global",virtual_service="demo/podinfo",route="demo/podinfo-router/main",virtual_node="demo/v1"} 5`,
		`canarymesh_snapshot_version 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %s", want)
		}
	}
	checkExposition(t, text)
	if w := p.Window("demo/v2", time.Minute); w.Requests != 5 || w.Errors5xx != 5 || w.SuccessRate != 0 {
		t.Errorf("window of v2 = %+v", w)
	}
	if w := p.Window("demo/unknown", time.Minute); !w.NoData {
		t.Errorf("a node without traffic must have no data: %+v", w)
	}
}

var (
	sampleLine = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+]+|\+Inf|NaN)$`)
	metaLine   = regexp.MustCompile(`^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$`)
)

// checkExposition checks every line against the text format's grammar, each family's
// TYPE before its samples, and no family declared twice.
func checkExposition(t *testing.T, text string) {
	t.Helper()
	declared := map[string]bool{}
	for i, line := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "#"):
			if !metaLine.MatchString(line) {
				t.Errorf("line %d: bad comment %q", i+1, line)
			}
			if f := strings.Fields(line); f[1] == "TYPE" {
				if declared[f[2]] {
					t.Errorf("line %d: family %s declared twice", i+1, f[2])
				}
				declared[f[2]] = true
			}
		case !sampleLine.MatchString(line):
			t.Errorf("line %d: bad sample %q", i+1, line)
		default:
			name := line[:strings.IndexAny(line, "{ ")]
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, "_bucket"), "_sum"), "_count")
			if !declared[name] && !declared[base] {
				t.Errorf("line %d: sample of undeclared family %s", i+1, name)
			}
		}
	}
}

func TestAccessLog(t *testing.T) {
	dir := t.TempDir()
	textPath, jsonPath := filepath.Join(dir, "access.log"), filepath.Join(dir, "access.json")
	v1 := newBackend(t, "v1", nil)
	s := egressSnapshot(1, []snapshot.Cluster{cluster("v1", v1)},
		service("podinfo", snapshot.Route{Name: "demo/podinfo/main", Targets: targets("v1", 1)}))
	s.Listeners[0].AccessLog = &snapshot.AccessLog{Path: textPath, Format: "text"}
	jsonListener := s.Listeners[0]
	jsonListener.Name = "egress-json"
	jsonListener.AccessLog = &snapshot.AccessLog{Path: jsonPath, Format: "json", Fields: map[string]string{
		"code": "%RESPONSE_CODE%", "path": "%REQ(:PATH)%", "upstream": "%UPSTREAM_HOST%", "id": "%REQ(X-REQUEST-ID)%",
		"line": "%REQ(:METHOD)% %REQ(:PATH)%", "missing": "%REQ(X-NOT-SENT)%"}}
	s.Listeners = append(s.Listeners, jsonListener)
	p := New(Options{Bind: ephemeralBind})
	if err := p.Update(s); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		do(t, p, "egress", "GET", "podinfo.demo", "/api/info", nil)
	}
	do(t, p, "egress", "GET", "nowhere.demo", "/", nil)
	do(t, p, "egress-json", "GET", "podinfo.demo", "/json?x=1", nil)
	p.Close() // flushes the logs

	data, _ := os.ReadFile(textPath)
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d text lines, want 4:\n%s", len(lines), data)
	}
	envoyLine := regexp.MustCompile(`^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] "GET /api/info HTTP/1\.1" 200 - 0 2 \d+ \d+ "-" "Go-http-client/1\.1" "[0-9a-f-]{36}" "podinfo\.demo" "127\.0\.0\.1:\d+"$`)
	if !envoyLine.MatchString(lines[0]) {
		t.Errorf("text line is not Envoy's default format: %q", lines[0])
	}
	if !strings.Contains(lines[3], `"GET / HTTP/1.1" 404 NR `) {
		t.Errorf("a request without a route must log 404 NR: %q", lines[3])
	}
	data, _ = os.ReadFile(jsonPath)
	var entry map[string]any
	if err := json.Unmarshal(data, &entry); err != nil {
		t.Fatalf("json line %q: %v", data, err)
	}
	if entry["code"] != float64(200) || entry["path"] != "/json?x=1" || entry["line"] != "GET /json?x=1" ||
		entry["missing"] != nil || len(entry["id"].(string)) != 36 || entry["upstream"] != v1.addr() {
		t.Errorf("json entry %v", entry)
	}
}

func TestWindow(t *testing.T) {
	w := &window{}
	now := time.Unix(1_700_000_000, 0)
	for i := 0; i < 100; i++ {
		code := 200
		if i < 5 {
			code = 503
		}
		w.record(now.Add(-30*time.Second), code, time.Duration(i+1)*time.Millisecond)
	}
	w.record(now.Add(-5*time.Minute), 500, time.Second) // outside a one-minute window
	got := w.stats(now, time.Minute)
	if got.Requests != 100 || got.Errors5xx != 5 || got.SuccessRate != 95 || got.NoData {
		t.Fatalf("stats = %+v", got)
	}
	// The 99th of 1..100 ms is 99 ms; buckets are 25% wide.
	if got.P99 < 80*time.Millisecond || got.P99 > 125*time.Millisecond {
		t.Errorf("P99 = %v, want about 99ms", got.P99)
	}
	if all := w.stats(now, 10*time.Minute); all.Requests != 101 {
		t.Errorf("ten minutes hold %d requests, want 101", all.Requests)
	}
	if old := w.stats(now.Add(20*time.Minute), 10*time.Minute); !old.NoData {
		t.Errorf("slots older than the ring must not count: %+v", old)
	}
}
