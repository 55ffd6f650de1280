package proxy

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

const testMesh = "global"

// backend is a real HTTP server on loopback that counts its requests.
type backend struct {
	name string
	srv  *httptest.Server
	hits atomic.Int64
}

// newBackend starts a backend; a nil handler answers 200 with the backend's name.
func newBackend(t *testing.T, name string, h http.HandlerFunc) *backend {
	t.Helper()
	b := &backend{name: name}
	if h == nil {
		h = func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			io.WriteString(w, name)
		}
	}
	b.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		w.Header().Set("X-Backend", name)
		h(w, r)
	}))
	t.Cleanup(b.srv.Close)
	return b
}

func (b *backend) addr() string { return b.srv.Listener.Addr().String() }

// cluster is a virtual node "demo/NAME" whose endpoints are the backends.
func cluster(name string, bs ...*backend) snapshot.Cluster {
	c := snapshot.Cluster{Name: "demo/" + name, Mesh: testMesh, Protocol: "http", Port: 80}
	for _, b := range bs {
		c.Endpoints = append(c.Endpoints, snapshot.Endpoint{Address: b.addr(), Ready: true})
	}
	return c
}

func targets(ws ...any) []snapshot.WeightedCluster {
	var out []snapshot.WeightedCluster
	for i := 0; i+1 < len(ws); i += 2 {
		out = append(out, snapshot.WeightedCluster{Cluster: "demo/" + ws[i].(string), Weight: ws[i+1].(int)})
	}
	return out
}

// service is a virtual host "demo/NAME" answering to NAME.demo.
func service(name string, routes ...snapshot.Route) snapshot.VirtualHost {
	return snapshot.VirtualHost{Name: "demo/" + name, Domains: []string{name + ".demo", name + ".demo.svc.cluster.local"}, Routes: routes}
}

// egressSnapshot is an egress node with one listener, "egress".
func egressSnapshot(version uint64, clusters []snapshot.Cluster, hosts ...snapshot.VirtualHost) *snapshot.Snapshot {
	return &snapshot.Snapshot{Version: version, Node: snapshot.EgressNode, Clusters: clusters,
		Listeners: []snapshot.Listener{{Name: "egress", Kind: snapshot.Egress, Protocol: "http", Port: 15001, VirtualHosts: hosts}}}
}

func ephemeralBind(snapshot.Listener) string { return "127.0.0.1:0" }

// startProxy runs a proxy on ephemeral loopback ports with s applied.
func startProxy(t *testing.T, s *snapshot.Snapshot, opts ...func(*Options)) *Proxy {
	t.Helper()
	o := Options{Bind: ephemeralBind}
	for _, f := range opts {
		f(&o)
	}
	p := New(o)
	t.Cleanup(func() { p.Close() })
	if err := p.Update(s); err != nil {
		t.Fatalf("Update: %v", err)
	}
	return p
}

var testClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}

// do sends a request for host through a listener and returns the status and body.
func do(t testing.TB, p *Proxy, listener, method, host, path string, body io.Reader) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+p.Addr(listener).String()+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s%s: %v", method, host, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s%s: reading body: %v", method, host, path, err)
	}
	return res.StatusCode, string(data), res.Header
}

func get(t testing.TB, p *Proxy, host, path string) (int, string) {
	t.Helper()
	code, body, _ := do(t, p, "egress", http.MethodGet, host, path, nil)
	return code, body
}

// metrics scrapes the proxy's exposition.
func metrics(t testing.TB, p *Proxy) string {
	t.Helper()
	rec := httptest.NewRecorder()
	p.Metrics().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/stats/prometheus", nil))
	return rec.Body.String()
}

// metricValue finds one sample by its full series text (name and labels, as exposed).
func metricValue(t testing.TB, p *Proxy, series string) string {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(metrics(t, p)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			return v
		}
	}
	return ""
}

// eventually polls cond every 10ms for up to 10s; waits are bounded, not timed.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawRequest writes raw bytes to a listener and returns the status line of the answer.
func rawRequest(t *testing.T, addr net.Addr, raw string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return strings.TrimSpace(line)
}

// rawBackend accepts connections and hands each to serve, for backends that misbehave
// below HTTP.
func rawBackend(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
