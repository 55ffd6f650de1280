package proxy

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// mirrorSnapshot routes web.demo to primary and mirrors percent of it to shadow.
func mirrorSnapshot(primary, shadow *backend, shadowAddr string, percent int) *snapshot.Snapshot {
	sc := snapshot.Cluster{Name: "demo/shadow", Mesh: testMesh, Protocol: "http", Port: 80}
	switch {
	case shadow != nil:
		sc = cluster("shadow", shadow)
	case shadowAddr != "":
		sc.Endpoints = []snapshot.Endpoint{{Address: shadowAddr, Ready: true}}
	}
	rt := snapshot.Route{Name: "demo/web/route", Protocol: "http", Match: snapshot.Match{Prefix: "/"},
		Targets: targets("primary", 100), Mirror: &snapshot.Mirror{Cluster: "demo/shadow", Percent: percent}}
	return egressSnapshot(1, []snapshot.Cluster{cluster("primary", primary), sc}, service("web", rt))
}

// The mirror copies exactly percent of every 100 requests (the pick is deterministic),
// the primary serves them all, and the copies are counted on the mirror's cluster and
// its window, which the canary's built-in metrics read.
func TestMirrorPercent(t *testing.T) {
	var mu sync.Mutex
	var hosts []string
	primary := newBackend(t, "primary", nil)
	shadow := newBackend(t, "shadow", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.Host)
		mu.Unlock()
		w.WriteHeader(http.StatusInternalServerError) // discarded: the client never sees it
	})
	p := startProxy(t, mirrorSnapshot(primary, shadow, "", 30))
	const n = 200
	for i := range n {
		if code, body := get(t, p, "web.demo:8080", "/x"); code != 200 || body != "primary" {
			t.Fatalf("request %d: %d %q, want the primary's 200", i, code, body)
		}
	}
	eventually(t, "60 copies reach the shadow", func() bool { return shadow.hits.Load() == n*30/100 })
	if got := primary.hits.Load(); got != n {
		t.Errorf("primary served %d, want %d", got, n)
	}
	eventually(t, "the window counts the copies", func() bool {
		w := p.Window("demo/shadow", time.Minute)
		return w.Requests == n*30/100 && w.SuccessRate == 0
	})
	mu.Lock()
	if hosts[0] != "web.demo-shadow:8080" {
		t.Errorf("shadow Host = %q, want web.demo-shadow:8080", hosts[0])
	}
	mu.Unlock()
	sent := metricValue(t, p, `envoy_cluster_upstream_rq_mirrored{envoy_cluster_name="cds_egress_global_shadow_demo_http_80"}`)
	if sent != "60" {
		t.Errorf("mirrored counter = %q, want 60", sent)
	}
	// Over any 100 consecutive requests the share is exact, not merely on average.
	m := &mirrorTarget{percent: 7}
	taken := 0
	for range 1000 {
		if m.take() {
			taken++
		}
	}
	if taken != 70 {
		t.Errorf("7%% of 1000 took %d", taken)
	}
}

// A request's body, method, path, query and headers reach the mirror as they reach the
// primary.
func TestMirrorCopiesRequest(t *testing.T) {
	type seen struct{ method, uri, header, body string }
	got := make(chan seen, 1)
	primary := newBackend(t, "primary", nil)
	shadow := newBackend(t, "shadow", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- seen{r.Method, r.RequestURI, r.Header.Get("X-Token"), string(b)}
	})
	p := startProxy(t, mirrorSnapshot(primary, shadow, "", 100))
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.Addr("egress").String()+"/orders?id=7", strings.NewReader(`{"item":"book"}`))
	req.Host = "web.demo"
	req.Header.Set("X-Token", "t1")
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	select {
	case s := <-got:
		want := seen{"POST", "/orders?id=7", "t1", `{"item":"book"}`}
		if s != want {
			t.Errorf("mirror saw %+v, want %+v", s, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the copy never arrived")
	}
	// A chunked body of unknown length is copied too.
	req, _ = http.NewRequest(http.MethodPut, "http://"+p.Addr("egress").String()+"/c", io.MultiReader(strings.NewReader("ab"), strings.NewReader("cd")))
	req.Host = "web.demo"
	res, err = testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	select {
	case s := <-got:
		if s.body != "abcd" || s.method != "PUT" {
			t.Errorf("chunked copy = %+v", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the chunked copy never arrived")
	}
}

// A mirror that hangs, or is down, changes nothing for the client: every request is
// answered by the primary while every copy is still stuck; copies beyond the in-flight
// bound are dropped and counted, not queued.
func TestMirrorSlowOrDownLeavesPrimaryAlone(t *testing.T) {
	release := make(chan struct{})
	primary := newBackend(t, "primary", nil)
	shadow := newBackend(t, "shadow", func(w http.ResponseWriter, r *http.Request) { <-release })
	defer close(release)
	p := startProxy(t, mirrorSnapshot(primary, shadow, "", 100))
	p.mirrorSlots = make(chan struct{}, 3) // a small bound, to reach it
	for i := range 10 {
		if code, body := get(t, p, "web.demo", "/"); code != 200 || body != "primary" {
			t.Fatalf("request %d with the mirror stuck: %d %q", i, code, body)
		}
	}
	eventually(t, "three copies in flight", func() bool { return shadow.hits.Load() == 3 })
	series := `{envoy_cluster_name="cds_egress_global_shadow_demo_http_80"}`
	if d := metricValue(t, p, "envoy_cluster_upstream_rq_mirror_dropped"+series); d != "7" {
		t.Errorf("dropped = %q, want 7", d)
	}

	// Broken: the mirror's endpoint hangs up on every connection.
	down := rawBackend(t, func(c net.Conn) {})
	p2 := startProxy(t, mirrorSnapshot(primary, nil, down, 100))
	for i := range 5 {
		if code, body := get(t, p2, "web.demo", "/"); code != 200 || body != "primary" {
			t.Fatalf("request %d with the mirror broken: %d %q", i, code, body)
		}
	}
	eventually(t, "the failed copies count against the mirror's window", func() bool {
		w := p2.Window("demo/shadow", time.Minute)
		return w.Requests == 5 && w.SuccessRate == 0
	})
}

// A body larger than the copy limit is forwarded whole to the primary and not mirrored.
func TestMirrorLargeBodyNotCopied(t *testing.T) {
	primary := newBackend(t, "primary", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		io.WriteString(w, itoa(int(n)))
	})
	shadow := newBackend(t, "shadow", nil)
	p := startProxy(t, mirrorSnapshot(primary, shadow, "", 100))
	big := strings.Repeat("x", maxMirrorBody+1)
	for _, body := range []io.Reader{strings.NewReader(big), io.MultiReader(strings.NewReader(big))} {
		code, got, _ := do(t, p, "egress", http.MethodPost, "web.demo", "/", body)
		if code != 200 || got != itoa(len(big)) {
			t.Fatalf("primary answered %d %q", code, got)
		}
	}
	series := `{envoy_cluster_name="cds_egress_global_shadow_demo_http_80"}`
	eventually(t, "both dropped", func() bool {
		return metricValue(t, p, "envoy_cluster_upstream_rq_mirror_dropped"+series) == "2"
	})
	if h := shadow.hits.Load(); h != 0 {
		t.Errorf("the shadow got %d copies of an oversized body", h)
	}
}
