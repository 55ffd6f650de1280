package proxy

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

func TestBadInput(t *testing.T) {
	ok := newBackend(t, "ok", nil)
	garbage := rawBackend(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		io.WriteString(c, "SMTP READY\r\n\r\n")
	})
	hangup := rawBackend(t, func(c net.Conn) {
		bufio.NewReader(c).ReadString('\n')
		c.(*net.TCPConn).SetLinger(0) // reset, not a clean close
	})
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := closed.Addr().String()
	closed.Close()
	at := func(name, addr string) snapshot.Cluster {
		return snapshot.Cluster{Name: "demo/" + name, Mesh: testMesh, Protocol: "http", Port: 80,
			Endpoints: []snapshot.Endpoint{{Address: addr, Ready: true}}}
	}
	p := startProxy(t, egressSnapshot(1,
		[]snapshot.Cluster{cluster("ok", ok), at("garbage", garbage), at("hangup", hangup), at("refused", refused)},
		service("ok", snapshot.Route{Name: "demo/ok/main", Targets: targets("ok", 1)}),
		service("garbage", snapshot.Route{Name: "demo/garbage/main", Targets: targets("garbage", 1)}),
		service("hangup", snapshot.Route{Name: "demo/hangup/main", Targets: targets("hangup", 1)}),
		service("refused", snapshot.Route{Name: "demo/refused/main", Targets: targets("refused", 1)})))
	addr := p.Addr("egress")

	if got := rawRequest(t, addr, "GET / HTTP/1.1\r\nHost: ok.demo\r\nthis is not a header\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 400") {
		t.Errorf("malformed request: %q, want 400", got)
	}
	big := "GET / HTTP/1.1\r\nHost: ok.demo\r\nX-Big: " + strings.Repeat("a", 100<<10) + "\r\n\r\n"
	if got := rawRequest(t, addr, big); !strings.HasPrefix(got, "HTTP/1.1 431") {
		t.Errorf("oversized header: %q, want 431", got)
	}
	if code, body := get(t, p, "garbage.demo", "/"); code != http.StatusBadGateway {
		t.Errorf("bad upstream response: %d %q, want 502", code, body)
	}
	if code, body := get(t, p, "hangup.demo", "/"); code != http.StatusServiceUnavailable || !strings.Contains(body, "upstream connect error or disconnect/reset before headers") {
		t.Errorf("upstream reset: %d %q, want 503", code, body)
	}
	if code, body := get(t, p, "refused.demo", "/"); code != http.StatusServiceUnavailable || !strings.Contains(body, "connection failure") {
		t.Errorf("connect failure: %d %q, want 503 connection failure", code, body)
	}
	if code, body := get(t, p, "ok.demo", "/"); code != 200 || body != "ok" {
		t.Errorf("after all that, a good request got %d %q", code, body)
	}
	if v := metricValue(t, p, `envoy_cluster_upstream_cx_connect_fail{envoy_cluster_name="cds_egress_global_refused_demo_http_80"}`); v != "1" {
		t.Errorf("connect failures = %q, want 1", v)
	}
	if v := metricValue(t, p, `envoy_http_downstream_rq_xx{envoy_response_code_class="5",envoy_http_conn_manager_prefix="egress"}`); v != "3" {
		t.Errorf("downstream 5xx = %q, want 3", v)
	}
}

func TestClientHangUpIsCounted(t *testing.T) {
	arrived := make(chan struct{}, 1)
	slow := newBackend(t, "slow", func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-r.Context().Done()
	})
	p := startProxy(t, egressSnapshot(1, []snapshot.Cluster{cluster("slow", slow)},
		service("slow", snapshot.Route{Name: "demo/slow/main", Targets: targets("slow", 1)})))
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+p.Addr("egress").String()+"/", nil)
	req.Host = "slow.demo"
	errc := make(chan error)
	go func() {
		_, err := testClient.Do(req)
		errc <- err
	}()
	<-arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v", err)
	}
	eventually(t, "the hang-up is counted", func() bool {
		return metricValue(t, p, `canarymesh_http_downstream_rq_client_closed_total{envoy_http_conn_manager_prefix="egress"}`) == "1"
	})
}

func TestStreamedResponseArrivesInParts(t *testing.T) {
	next := make(chan struct{})
	streamer := newBackend(t, "stream", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "part1\n")
		w.(http.Flusher).Flush()
		<-next
		io.WriteString(w, "part2\n")
	})
	p := startProxy(t, egressSnapshot(1, []snapshot.Cluster{cluster("stream", streamer)},
		service("stream", snapshot.Route{Name: "demo/stream/main", Targets: targets("stream", 1)})))
	req, _ := http.NewRequestWithContext(ctxTimeout(t, 10*time.Second), "GET", "http://"+p.Addr("egress").String()+"/", nil)
	req.Host = "stream.demo"
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	r := bufio.NewReader(res.Body)
	// The second part is only written after the first arrives: a buffering proxy
	// would deadlock here (until the context's bound).
	line, err := r.ReadString('\n')
	if err != nil || line != "part1\n" {
		t.Fatalf("first part: %q %v", line, err)
	}
	close(next)
	if rest, _ := io.ReadAll(r); string(rest) != "part2\n" {
		t.Fatalf("second part: %q", rest)
	}
}

func TestRequestIDAndTraceHeaders(t *testing.T) {
	seen := make(chan http.Header, 2)
	echo := newBackend(t, "echo", func(w http.ResponseWriter, r *http.Request) { seen <- r.Header.Clone() })
	p := startProxy(t, egressSnapshot(1, []snapshot.Cluster{cluster("echo", echo)},
		service("echo", snapshot.Route{Name: "demo/echo/main", Targets: targets("echo", 1)})))
	get(t, p, "echo.demo", "/")
	h := <-seen
	if id := h.Get("X-Request-Id"); len(id) != 36 || id[14] != '4' {
		t.Errorf("generated x-request-id %q is not a UUID", id)
	}
	req, _ := http.NewRequest("GET", "http://"+p.Addr("egress").String()+"/", nil)
	req.Host = "echo.demo"
	req.Header.Set("X-Request-Id", "given-id")
	req.Header.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	req.Header.Set("Connection", "keep-alive, X-Hop")
	req.Header.Set("X-Hop", "must not pass")
	res, err := testClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	h = <-seen
	if h.Get("X-Request-Id") != "given-id" || h.Get("Traceparent") != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
		t.Errorf("x-request-id and traceparent must pass untouched: %v", h)
	}
	if h.Get("X-Hop") != "" || h.Get("X-Forwarded-Proto") != "http" {
		t.Errorf("hop-by-hop headers must go and x-forwarded-proto be set: %v", h)
	}
	if res.Header.Get("X-Envoy-Upstream-Service-Time") == "" {
		t.Error("x-envoy-upstream-service-time is missing")
	}
}

func TestIngressListener(t *testing.T) {
	app := newBackend(t, "app", nil)
	local := cluster("app", app)
	local.Name = snapshot.LocalClusterPrefix + "demo/app"
	s := &snapshot.Snapshot{Version: 1, Node: "VirtualNode/demo/app", Mesh: testMesh, Clusters: []snapshot.Cluster{local},
		Listeners: []snapshot.Listener{{Name: "ingress-8080", Kind: snapshot.Ingress, Protocol: "http", Port: 8080,
			LocalCluster: local.Name, Timeout: &snapshot.Timeouts{PerRequest: time.Second}}}}
	p := startProxy(t, s)
	for i := 0; i < 5; i++ {
		if code, body, _ := do(t, p, "ingress-8080", "GET", "anything", "/", nil); code != 200 || body != "app" {
			t.Fatalf("ingress: %d %q", code, body)
		}
	}
	if v := metricValue(t, p, `envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="cds_ingress_global_app_demo_http_8080"}`); v != "5" {
		t.Errorf("ingress requests = %q, want 5 under App Mesh's cluster name", v)
	}
	if w := p.Window("demo/app", time.Minute); w.Requests != 5 || w.SuccessRate != 100 || w.NoData {
		t.Errorf("window of the node = %+v", w)
	}
}

func TestGatewayRoutes(t *testing.T) {
	seen := make(chan string, 1)
	color := newBackend(t, "color", func(w http.ResponseWriter, r *http.Request) { seen <- r.Host + " " + r.URL.Path })
	gw := func(rs ...snapshot.Route) *snapshot.Snapshot {
		internal := service("color", snapshot.Route{Name: "demo/color-router/main", Targets: targets("color", 1)})
		internal.Internal = true
		return &snapshot.Snapshot{Version: 1, Node: "VirtualGateway/demo/gw", Mesh: testMesh,
			Clusters: []snapshot.Cluster{cluster("color", color)},
			Listeners: []snapshot.Listener{{Name: "gateway-8088", Kind: snapshot.Gateway, Protocol: "http", Port: 8088,
				VirtualHosts: []snapshot.VirtualHost{{Name: "VirtualGateway/demo/gw", Domains: []string{"*"}, Routes: rs}, internal}}}}
	}
	route := func(prefix string, rw snapshot.Rewrite) snapshot.Route {
		rw.TargetHostname = "color.demo"
		return snapshot.Route{Name: "demo/gr", Match: snapshot.Match{Prefix: prefix}, VirtualService: "demo/color", Rewrite: &rw}
	}
	for _, tc := range []struct {
		name  string
		route snapshot.Route
		path  string
		want  string
	}{
		{"default prefix rewrite", route("/red/", snapshot.Rewrite{}), "/red/paint", "color.demo /paint"},
		{"default prefix rewrite, no slash", route("/red", snapshot.Rewrite{}), "/red/paint", "color.demo /paint"},
		{"prefix rewrite disabled", route("/red/", snapshot.Rewrite{DefaultPrefix: "DISABLED"}), "/red/paint", "color.demo /red/paint"},
		{"prefix value", route("/red/", snapshot.Rewrite{Prefix: "/blue/"}), "/red/paint", "color.demo /blue/paint"},
		{"path rewrite", route("/red/", snapshot.Rewrite{Path: "/fixed"}), "/red/paint", "color.demo /fixed"},
		{"hostname kept", route("/red/", snapshot.Rewrite{Hostname: "DISABLED"}), "/red/paint", "gw.example /paint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := startProxy(t, gw(tc.route))
			if code, _, _ := do(t, p, "gateway-8088", "GET", "gw.example", tc.path, nil); code != 200 {
				t.Fatalf("status %d", code)
			}
			if got := <-seen; got != tc.want {
				t.Errorf("backend saw %q, want %q", got, tc.want)
			}
			// The service's own host is internal: it cannot be reached past the gateway.
			if code, _, _ := do(t, p, "gateway-8088", "GET", "color.demo", "/other", nil); code != 404 {
				t.Errorf("a request no gateway route accepts got %d, want 404", code)
			}
		})
	}
}

func TestAllowAllPassthrough(t *testing.T) {
	outside := newBackend(t, "outside", nil)
	s := egressSnapshot(1, nil)
	s.Mesh = testMesh
	s.Listeners[0].AllowAll = true
	p := startProxy(t, s)
	if code, body := get(t, p, outside.addr(), "/"); code != 200 || body != "outside" {
		t.Fatalf("passthrough: %d %q", code, body)
	}
	if v := metricValue(t, p, `envoy_cluster_upstream_rq{envoy_response_code="200",envoy_cluster_name="cds_egress_global_amazonaws"}`); v != "1" {
		t.Errorf("passthrough requests = %q", v)
	}
}

func TestActiveHealthCheck(t *testing.T) {
	healthy := newBackend(t, "healthy", nil)
	sick := newBackend(t, "sick", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/health" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		io.WriteString(w, "sick")
	})
	c := cluster("checked", healthy, sick)
	c.HealthCheck = &snapshot.HealthCheck{Protocol: "http", Path: "/health", Interval: 20 * time.Millisecond,
		Timeout: time.Second, HealthyThreshold: 2, UnhealthyThreshold: 2}
	p := startProxy(t, egressSnapshot(1, []snapshot.Cluster{c},
		service("checked", snapshot.Route{Name: "demo/checked/main", Targets: targets("checked", 1)})))
	const cn = `{envoy_cluster_name="cds_egress_global_checked_demo_http_80"}`
	eventually(t, "the sick endpoint is marked unhealthy", func() bool {
		return metricValue(t, p, "envoy_cluster_membership_healthy"+cn) == "1"
	})
	for i := 0; i < 20; i++ {
		if code, body := get(t, p, "checked.demo", "/"); code != 200 || body != "healthy" {
			t.Fatalf("request %d: %d %q; an unhealthy endpoint must get no traffic", i, code, body)
		}
	}
	if v := metricValue(t, p, "envoy_cluster_health_check_failure"+cn); v == "0" {
		t.Error("health check failures are not counted")
	}
}

func TestTCPHealthCheckAndDNSCluster(t *testing.T) {
	// A backend on every loopback address, so "localhost" works whichever way it resolves.
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "dns") }))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	port := ln.Addr().(*net.TCPAddr).Port
	c := snapshot.Cluster{Name: "demo/dns", Mesh: testMesh, Protocol: "http", Port: 80,
		DNS:         &snapshot.DNSDiscovery{Hostname: "localhost", Port: port, ResponseType: "ENDPOINTS"},
		HealthCheck: &snapshot.HealthCheck{Protocol: "tcp", Interval: 20 * time.Millisecond, Timeout: time.Second}}
	p := startProxy(t, egressSnapshot(1, []snapshot.Cluster{c},
		// Where ::1 is listed but IPv6 is off, the first requests may meet it before the
		// health check does: a connection-error retry covers them.
		service("dns", snapshot.Route{Name: "demo/dns/main", Targets: targets("dns", 1),
			Retry: &snapshot.RetryPolicy{MaxRetries: 2, TCPEvents: []string{"connection-error"}}})),
		func(o *Options) { o.DNSRefresh = 50 * time.Millisecond })
	const cn = `{envoy_cluster_name="cds_egress_global_dns_demo_http_80"}`
	if v := metricValue(t, p, "envoy_cluster_membership_total"+cn); v == "0" || v == "" {
		t.Fatalf("the DNS cluster has %q endpoints right after Update", v)
	}
	for i := 0; i < 10; i++ {
		if code, body := get(t, p, "dns.demo", "/"); code != 200 || body != "dns" {
			t.Fatalf("request %d through the DNS cluster: %d %q", i, code, body)
		}
	}
}

func TestDNSKeepsLastGoodAddresses(t *testing.T) {
	u := benchUpstream()
	defer u.retire(0)
	var logged bytes.Buffer
	u.p.log = slog.New(slog.NewTextHandler(&logged, nil))
	fail := false
	w := &dnsWatcher{u: u, spec: snapshot.DNSDiscovery{Hostname: "svc.example"}, port: 80,
		lookup: func(context.Context, string) ([]string, error) {
			if fail {
				return nil, errors.New("no such host")
			}
			return []string{"10.0.0.1", "10.0.0.2"}, nil
		}}
	w.resolveOnce(context.Background())
	fail = true
	w.resolveOnce(context.Background())
	if got := u.dnsAddrs; len(got) != 2 || got[0] != "10.0.0.1:80" {
		t.Fatalf("after a failed resolution the addresses are %v; the last good ones must stay", got)
	}
	// A name that keeps failing is reported once, and again when it recovers.
	for range 5 {
		w.resolveOnce(context.Background())
	}
	fail = false
	w.resolveOnce(context.Background())
	if n := strings.Count(logged.String(), "DNS resolution failed"); n != 1 {
		t.Errorf("six failed resolutions logged %d warnings, want 1:\n%s", n, logged.String())
	}
	if !strings.Contains(logged.String(), "DNS resolution works again") {
		t.Errorf("the recovery was not logged:\n%s", logged.String())
	}
	if got := dnsAddresses([]string{"10.0.0.1", "10.0.0.2"}, 80, "LOADBALANCER"); len(got) != 1 {
		t.Fatalf("LOADBALANCER keeps one address, got %v", got)
	}
}

func TestHTTP2OverTLSAndH2C(t *testing.T) {
	protos := make(chan int, 4)
	h2 := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		protos <- r.ProtoMajor
		io.WriteString(w, "h2")
	}))
	var ps http.Protocols
	ps.SetUnencryptedHTTP2(true)
	h2.Config.Protocols = &ps
	h2.Start()
	t.Cleanup(h2.Close)
	c := snapshot.Cluster{Name: "demo/h2", Mesh: testMesh, Protocol: "http2", Port: 80,
		Endpoints: []snapshot.Endpoint{{Address: h2.Listener.Addr().String(), Ready: true}}}
	certSrv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(certSrv.Close)
	s := egressSnapshot(1, []snapshot.Cluster{c}, service("h2", snapshot.Route{Name: "demo/h2/main", Targets: targets("h2", 1)}))
	s.Listeners = append(s.Listeners, snapshot.Listener{Name: "egress-tls", Kind: snapshot.Egress, Protocol: "http2",
		Port: 15443, VirtualHosts: s.Listeners[0].VirtualHosts})
	p := startProxy(t, s, func(o *Options) {
		o.TLS = func(l snapshot.Listener) *tls.Config {
			if l.Name == "egress-tls" {
				return &tls.Config{Certificates: certSrv.TLS.Certificates}
			}
			return nil
		}
	})
	tlsClient := certSrv.Client()
	tlsClient.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	for name, tc := range map[string]struct {
		client *http.Client
		url    string
	}{
		"TLS with ALPN": {tlsClient, "https://" + p.Addr("egress-tls").String() + "/"},
		"h2c":           {&http.Client{Transport: &http.Transport{Protocols: &h2c}}, "http://" + p.Addr("egress").String() + "/"},
	} {
		req, _ := http.NewRequest("GET", tc.url, nil)
		req.Host = "h2.demo"
		res, err := tc.client.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.ProtoMajor != 2 || string(body) != "h2" {
			t.Errorf("%s: HTTP/%d %q", name, res.ProtoMajor, body)
		}
		if got := <-protos; got != 2 {
			t.Errorf("%s: the http2 cluster was reached over HTTP/%d", name, got)
		}
	}
}
