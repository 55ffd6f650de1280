package proxy

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// Tests of the HTTP/1.1 fast path with real loopback servers. Most existing tests run
// through it too (it is the default for plain HTTP listeners); these cover what is
// particular to it: connection reuse, framing, pipelining, its failure modes, and
// handing connections to net/http.

// handoffs is how many connections a listener gave to net/http.
func handoffs(p *Proxy, listener string) uint64 {
	return p.stats.listener(listener).handedOver.Load()
}

// svcSnapshot has one service "svc.demo" over the given backend address.
func svcSnapshot(addr string, opts ...func(*snapshot.Route)) *snapshot.Snapshot {
	c := snapshot.Cluster{Name: "demo/svc", Mesh: testMesh, Protocol: "http", Port: 80,
		Endpoints: []snapshot.Endpoint{{Address: addr, Ready: true}}}
	rt := snapshot.Route{Name: "demo/svc/main", Targets: targets("svc", 1)}
	for _, o := range opts {
		o(&rt)
	}
	return egressSnapshot(1, []snapshot.Cluster{c}, service("svc", rt))
}

func oneService(t *testing.T, addr string, opts ...func(*snapshot.Route)) *Proxy {
	t.Helper()
	return startProxy(t, svcSnapshot(addr, opts...))
}

// rawConn is a client connection that writes raw requests and parses responses.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, p *Proxy) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr("egress").String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawConn) send(raw string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, raw); err != nil {
		rc.t.Fatal(err)
	}
}

// read reads one response to a request of method and its whole body, skipping
// interim (1xx) responses.
func (rc *rawConn) read(method string) (*http.Response, string) {
	rc.t.Helper()
	res, err := http.ReadResponse(rc.br, &http.Request{Method: method})
	for err == nil && res.StatusCode < 200 {
		res, err = http.ReadResponse(rc.br, &http.Request{Method: method})
	}
	if err != nil {
		rc.t.Fatalf("reading a response: %v", err)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		rc.t.Fatalf("reading a body: %v", err)
	}
	return res, string(body)
}

func TestFastPathKeepAliveReuse(t *testing.T) {
	var conns atomic.Int64
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.URL.Path)
	}))
	be.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	be.Start()
	t.Cleanup(be.Close)
	p := oneService(t, be.Listener.Addr().String())
	rc := dialRaw(t, p)
	for i := range 20 {
		rc.send(fmt.Sprintf("GET /r%d HTTP/1.1\r\nHost: svc.demo\r\n\r\n", i))
		if res, body := rc.read("GET"); res.StatusCode != 200 || body != fmt.Sprintf("/r%d", i) {
			t.Fatalf("request %d: %d %q", i, res.StatusCode, body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("the backend saw %d connections for 20 sequential requests, want 1 (pooled)", n)
	}
	const cn = `{envoy_cluster_name="cds_egress_global_svc_demo_http_80"}`
	if v := metricValue(t, p, "envoy_cluster_upstream_cx_total"+cn); v != "1" {
		t.Errorf("upstream_cx_total = %q, want 1", v)
	}
	if v := metricValue(t, p, `envoy_http_downstream_cx_total{envoy_http_conn_manager_prefix="egress"}`); v != "1" {
		t.Errorf("downstream_cx_total = %q, want 1", v)
	}
	if v := metricValue(t, p, `envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="cds_egress_global_svc_demo_http_80"}`); v != "20" {
		t.Errorf("upstream_rq 200 = %q, want 20", v)
	}
	if n := handoffs(p, "egress"); n != 0 {
		t.Errorf("%d connections went to net/http, want none", n)
	}
}

// echo answers with the request's framing and body; /chunked answers in chunks
// (flushed), /trailer with a trailer, and /length/N with N bytes.
func echo(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	w.Header().Set("X-Got-Length", fmt.Sprint(r.ContentLength))
	w.Header().Set("X-Got-Encoding", strings.Join(r.TransferEncoding, ","))
	switch {
	case r.URL.Path == "/chunked":
		for _, part := range []string{"one,", "two,", string(body)} {
			io.WriteString(w, part)
			w.(http.Flusher).Flush()
		}
	case r.URL.Path == "/trailer":
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "body")
		w.(http.Flusher).Flush()
		w.Header().Set("X-Sum", "42")
	case strings.HasPrefix(r.URL.Path, "/length/"):
		var n int
		fmt.Sscan(strings.TrimPrefix(r.URL.Path, "/length/"), &n)
		w.Header().Set("Content-Length", fmt.Sprint(n))
		w.Write(bytes.Repeat([]byte("x"), n))
	default:
		w.Write(body)
	}
}

func TestFastPathBodies(t *testing.T) {
	be := newBackend(t, "echo", echo)
	p := oneService(t, be.addr())
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB
	rc := dialRaw(t, p)

	rc.send("POST / HTTP/1.1\r\nHost: svc.demo\r\nContent-Length: 5\r\n\r\nhello")
	if res, body := rc.read("POST"); body != "hello" || res.Header.Get("X-Got-Length") != "5" {
		t.Errorf("Content-Length body: %q, backend saw length %s", body, res.Header.Get("X-Got-Length"))
	}
	rc.send("POST / HTTP/1.1\r\nHost: svc.demo\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n")
	if res, body := rc.read("POST"); body != "abcdefg" || res.Header.Get("X-Got-Encoding") != "chunked" {
		t.Errorf("chunked request body: %q, backend saw %q", body, res.Header.Get("X-Got-Encoding"))
	}
	rc.send("POST /chunked HTTP/1.1\r\nHost: svc.demo\r\nContent-Length: 5\r\n\r\nthree")
	if res, body := rc.read("POST"); body != "one,two,three" || len(res.TransferEncoding) != 1 || res.ContentLength != -1 {
		t.Errorf("chunked response: %q %v (length %d)", body, res.TransferEncoding, res.ContentLength)
	}
	rc.send("GET /trailer HTTP/1.1\r\nHost: svc.demo\r\n\r\n")
	if res, body := rc.read("GET"); body != "body" || res.Trailer.Get("X-Sum") != "42" {
		t.Errorf("trailers: %q %v", body, res.Trailer)
	}
	rc.send(fmt.Sprintf("POST / HTTP/1.1\r\nHost: svc.demo\r\nContent-Length: %d\r\n\r\n%s", len(big), big))
	if _, body := rc.read("POST"); body != big {
		t.Errorf("1 MiB Content-Length body: %d bytes back", len(body))
	}
	rc.send(fmt.Sprintf("POST /chunked HTTP/1.1\r\nHost: svc.demo\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(big), big))
	if _, body := rc.read("POST"); body != "one,two,"+big {
		t.Errorf("1 MiB chunked both ways: %d bytes back", len(body))
	}
	rc.send("GET /length/100000 HTTP/1.1\r\nHost: svc.demo\r\n\r\n")
	if res, body := rc.read("GET"); len(body) != 100000 || res.ContentLength != 100000 {
		t.Errorf("100 kB response: %d bytes, length %d", len(body), res.ContentLength)
	}
	if n := handoffs(p, "egress"); n != 0 {
		t.Errorf("%d connections went to net/http, want none", n)
	}
}

func TestFastPathBodilessResponses(t *testing.T) {
	be := newBackend(t, "codes", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/204":
			w.WriteHeader(http.StatusNoContent)
		case "/304":
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Content-Length", "7")
			io.WriteString(w, "content")
		}
	})
	p := oneService(t, be.addr())
	rc := dialRaw(t, p)
	// All on one connection: a response with a stray body would corrupt the next.
	rc.send("HEAD / HTTP/1.1\r\nHost: svc.demo\r\n\r\n")
	if res, body := rc.read("HEAD"); res.StatusCode != 200 || body != "" || res.ContentLength != 7 {
		t.Errorf("HEAD: %d %q length %d", res.StatusCode, body, res.ContentLength)
	}
	for _, path := range []string{"/204", "/304"} {
		rc.send("GET " + path + " HTTP/1.1\r\nHost: svc.demo\r\n\r\n")
		if res, body := rc.read("GET"); res.Status[:3] != path[1:] || body != "" {
			t.Errorf("GET %s: %s %q", path, res.Status, body)
		}
	}
	rc.send("GET / HTTP/1.1\r\nHost: svc.demo\r\n\r\n")
	if res, body := rc.read("GET"); res.StatusCode != 200 || body != "content" {
		t.Errorf("after them: %d %q", res.StatusCode, body)
	}
}

func TestFastPathPipelining(t *testing.T) {
	be := newBackend(t, "echo", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) })
	p := oneService(t, be.addr())
	rc := dialRaw(t, p)
	rc.send("GET /a HTTP/1.1\r\nHost: svc.demo\r\n\r\nPOST /b HTTP/1.1\r\nHost: svc.demo\r\nContent-Length: 3\r\n\r\nxyz" +
		"GET /c HTTP/1.1\r\nHost: svc.demo\r\n\r\n")
	for _, want := range []string{"/a", "/b", "/c"} {
		if res, body := rc.read("GET"); res.StatusCode != 200 || body != want {
			t.Fatalf("pipelined response: %d %q, want %q", res.StatusCode, body, want)
		}
	}
}

func TestFastPathConnectionClose(t *testing.T) {
	be := newBackend(t, "ok", nil)
	p := oneService(t, be.addr())
	rc := dialRaw(t, p)
	rc.send("GET / HTTP/1.1\r\nHost: svc.demo\r\nConnection: close\r\n\r\n")
	res, body := rc.read("GET")
	if res.StatusCode != 200 || body != "ok" || !res.Close {
		t.Fatalf("got %d %q close=%v, want 200 ok with Connection: close", res.StatusCode, body, res.Close)
	}
	if n, err := rc.br.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("the connection stayed open: %d %v", n, err)
	}
}

// TestFastPathUpstreamFailures checks that both front ends answer a misbehaving
// upstream the same way.
func TestFastPathUpstreamFailures(t *testing.T) {
	midHead := rawBackend(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Ty")
	})
	midBody := rawBackend(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
	})
	reset := rawBackend(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		c.(*net.TCPConn).SetLinger(0)
	})
	garbage := rawBackend(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "SMTP READY\r\n\r\n")
	})
	for _, noFast := range []bool{false, true} {
		t.Run(fmt.Sprintf("noFast=%v", noFast), func(t *testing.T) {
			for _, tc := range []struct {
				name, addr string
				code       int
			}{
				{"closes mid-head", midHead, 502},
				{"resets before the head", reset, 503},
				{"garbage", garbage, 502},
			} {
				p := startProxy(t, svcSnapshot(tc.addr), func(o *Options) { o.NoFastPath = noFast })
				if code, body := get(t, p, "svc.demo", "/"); code != tc.code {
					t.Errorf("%s: %d %q, want %d", tc.name, code, body, tc.code)
				}
			}
			p := startProxy(t, svcSnapshot(midBody), func(o *Options) { o.NoFastPath = noFast })
			rc := dialRaw(t, p)
			rc.send("GET / HTTP/1.1\r\nHost: svc.demo\r\n\r\n")
			// The head may have gone out already (the fast path streams it) or not
			// (net/http buffers it): either way the client must see the failure.
			if res, err := http.ReadResponse(rc.br, nil); err == nil {
				if body, err := io.ReadAll(res.Body); err == nil || len(body) == 100 {
					t.Errorf("closes mid-body: the client must see a truncated body, got %d bytes, %v", len(body), err)
				}
			}
		})
	}
}

func TestFastPathSlowUpstreamIs504(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	p := oneService(t, slow.addr(), func(r *snapshot.Route) { r.Timeout = &snapshot.Timeouts{PerRequest: 50 * time.Millisecond} })
	rc := dialRaw(t, p)
	rc.send("GET / HTTP/1.1\r\nHost: svc.demo\r\n\r\n")
	if res, body := rc.read("GET"); res.StatusCode != 504 || body != "upstream request timeout" {
		t.Fatalf("got %d %q, want 504", res.StatusCode, body)
	}
	if v := metricValue(t, p, `envoy_cluster_upstream_rq_timeout{envoy_cluster_name="cds_egress_global_svc_demo_http_80"}`); v != "1" {
		t.Errorf("rq_timeout = %q, want 1", v)
	}
	if n := handoffs(p, "egress"); n != 0 {
		t.Errorf("%d connections went to net/http, want none", n)
	}
}

func TestFastPathHandsOverToNetHTTP(t *testing.T) {
	be := newBackend(t, "echo", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %s", r.Proto, r.Header.Get("X-Big")[:min(3, len(r.Header.Get("X-Big")))])
	})
	p := oneService(t, be.addr())
	// h2c with prior knowledge: the connection preface is not HTTP/1.1.
	var ps http.Protocols
	ps.SetUnencryptedHTTP2(true)
	h2c := &http.Client{Transport: &http.Transport{Protocols: &ps}}
	req, _ := http.NewRequest("GET", "http://"+p.Addr("egress").String()+"/", nil)
	req.Host = "svc.demo"
	res, err := h2c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.ProtoMajor != 2 || res.StatusCode != 200 {
		t.Errorf("h2c: %s %d", res.Proto, res.StatusCode)
	}
	// Mid-connection: a plain request on the fast path, then one it leaves to net/http
	// (Expect: 100-continue), then another plain one, now served by net/http.
	rc := dialRaw(t, p)
	rc.send("GET / HTTP/1.1\r\nHost: svc.demo\r\n\r\n")
	if res, body := rc.read("GET"); res.StatusCode != 200 || body != "HTTP/1.1 " {
		t.Fatalf("first: %d %q", res.StatusCode, body)
	}
	rc.send("POST / HTTP/1.1\r\nHost: svc.demo\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi")
	if res, _ := rc.read("POST"); res.StatusCode != 200 {
		t.Fatalf("expect: %d", res.StatusCode)
	}
	rc.send("GET / HTTP/1.1\r\nHost: svc.demo\r\nX-Big: " + strings.Repeat("b", 20<<10) + "\r\n\r\n")
	if res, body := rc.read("GET"); res.StatusCode != 200 || body != "HTTP/1.1 bbb" {
		t.Fatalf("after the handover: %d %q", res.StatusCode, body)
	}
	if n := handoffs(p, "egress"); n != 2 {
		t.Errorf("%d connections went to net/http, want 2", n)
	}
	if v := metricValue(t, p, `envoy_http_downstream_rq_total{envoy_http_conn_manager_prefix="egress"}`); v != "4" {
		t.Errorf("downstream_rq_total = %q, want 4: each request counted once", v)
	}
}

func TestFastPathBadInput(t *testing.T) {
	be := newBackend(t, "ok", nil)
	p := oneService(t, be.addr())
	for _, tc := range []struct {
		name, raw string
		want      string
	}{
		{"header too large", "GET / HTTP/1.1\r\nHost: svc.demo\r\nX-Big: " + strings.Repeat("a", 100<<10) + "\r\n\r\n", "HTTP/1.1 431"},
		{"a large header net/http still takes", "GET / HTTP/1.1\r\nHost: svc.demo\r\nX-Big: " + strings.Repeat("a", 20<<10) + "\r\n\r\n", "HTTP/1.1 200"},
		{"not a header", "GET / HTTP/1.1\r\nHost: svc.demo\r\nnot a header\r\n\r\n", "HTTP/1.1 400"},
		{"no Host", "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400"},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: svc.demo\r\nHost: other.demo\r\n\r\n", "HTTP/1.1 400"},
		{"bad escape", "GET /%zz HTTP/1.1\r\nHost: svc.demo\r\n\r\n", "HTTP/1.1 400"},
		{"length and chunked (net/http lets chunked win)", "POST / HTTP/1.1\r\nHost: svc.demo\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "HTTP/1.1 200"},
		{"broken chunked body", "POST / HTTP/1.1\r\nHost: svc.demo\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n", "HTTP/1.1 400"},
		{"unknown coding", "POST / HTTP/1.1\r\nHost: svc.demo\r\nTransfer-Encoding: gzip\r\n\r\n", "HTTP/1.1 501"},
		{"not HTTP", "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n", "HTTP/1.1 400"},
	} {
		if got := rawRequest(t, p.Addr("egress"), tc.raw); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%s: %q, want %s", tc.name, got, tc.want)
		}
	}
	if code, body := get(t, p, "svc.demo", "/"); code != 200 || body != "ok" {
		t.Errorf("after all that: %d %q", code, body)
	}
}

// TestFastPathUpstreamClosesIdleConnections has a backend that closes each connection
// after one response without saying so: pooled connections are found closed before
// use and replaced, for requests that must not be sent twice too.
func TestFastPathUpstreamClosesIdleConnections(t *testing.T) {
	var served atomic.Int64
	addr := rawBackend(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		io.Copy(io.Discard, req.Body)
		served.Add(1)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	})
	p := oneService(t, addr)
	for i := range 6 {
		method := []string{"GET", "POST"}[i%2]
		code, body, _ := do(t, p, "egress", method, "svc.demo", "/", strings.NewReader("x"))
		if code != 200 || body != "ok" {
			t.Fatalf("%s %d: %d %q", method, i, code, body)
		}
		time.Sleep(2 * probeAfter) // let the connection age past the probe threshold
	}
	if n := served.Load(); n != 6 {
		t.Errorf("the backend served %d requests, want 6 (each once)", n)
	}
}

func TestFastPathRetriesBufferedBody(t *testing.T) {
	var calls atomic.Int64
	flaky := newBackend(t, "flaky", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write(body)
	})
	p := oneService(t, flaky.addr(), func(r *snapshot.Route) {
		r.Retry = &snapshot.RetryPolicy{MaxRetries: 2, HTTPEvents: []string{"server-error"}}
	})
	code, body, _ := do(t, p, "egress", "POST", "svc.demo", "/", strings.NewReader("payload"))
	if code != 200 || body != "payload" {
		t.Fatalf("got %d %q, want the body replayed to a 200", code, body)
	}
	if v := metricValue(t, p, `envoy_cluster_upstream_rq_retry{envoy_cluster_name="cds_egress_global_svc_demo_http_80"}`); v != "1" {
		t.Errorf("rq_retry = %q, want 1", v)
	}
	if n := handoffs(p, "egress"); n != 0 {
		t.Errorf("%d connections went to net/http, want none", n)
	}
}

func TestFastPathShutdownFinishesInFlight(t *testing.T) {
	arrived, release := make(chan struct{}), make(chan struct{})
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(arrived)
			<-release
		}
		io.WriteString(w, "done")
	})
	p := oneService(t, slow.addr())
	idle := dialRaw(t, p)
	idle.send("GET / HTTP/1.1\r\nHost: svc.demo\r\n\r\n")
	idle.read("GET")
	busy := dialRaw(t, p)
	busy.send("GET /slow HTTP/1.1\r\nHost: svc.demo\r\n\r\n")
	<-arrived
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.Close()
	}()
	if _, err := idle.br.ReadByte(); err != io.EOF { // the idle connection closes at once
		t.Errorf("idle connection: %v, want EOF", err)
	}
	close(release)
	res, body := busy.read("GET")
	if res.StatusCode != 200 || body != "done" || !res.Close {
		t.Errorf("in flight: %d %q close=%v, want 200 done, Connection: close", res.StatusCode, body, res.Close)
	}
	wg.Wait()
}
