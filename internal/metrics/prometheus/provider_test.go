package prometheus_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/crypto/bcrypt"

	"github.com/canarymesh/canarymesh/internal/metrics"
	prom "github.com/canarymesh/canarymesh/internal/metrics/prometheus"
	"github.com/canarymesh/canarymesh/internal/metrics/prometheus/promtest"
)

// exporter serves two series of one gauge, test_requests{code="200"} 90 and
// {code="500"} 10, over HTTP as any application would.
func exporter(t *testing.T) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "test_requests", Help: "requests by code"}, []string{"code"})
	reg.MustRegister(g)
	g.WithLabelValues("200").Set(90)
	g.WithLabelValues("500").Set(10)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// waitScraped waits until the server answers q with data.
func waitScraped(t *testing.T, p *prom.Provider, q string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := p.Query(context.Background(), q)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no data after 30s: %v", q, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestProviderAgainstRealPrometheus(t *testing.T) {
	addr := exporter(t)
	srv := promtest.Start(t, promtest.Options{Targets: []promtest.Target{{Job: "app", Addresses: []string{addr}}}})
	p, err := prom.New(prom.Options{Address: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	waitScraped(t, p, `sum(test_requests)`)
	ctx := context.Background()

	tests := []struct {
		name, query string
		want        float64
		noData      bool
		errHas      []string
	}{
		{name: "one sample", query: `sum(test_requests{code!~"5.*"}) / sum(test_requests) * 100`, want: 90},
		{name: "scalar", query: `scalar(sum(test_requests))`, want: 100},
		{name: "empty result", query: `sum(test_requests{code="404"})`, noData: true},
		{name: "zero over zero", query: `sum(test_requests{code="404"}) / sum(test_requests{code="404"})`, noData: true},
		{name: "several series", query: `test_requests`,
			errHas: []string{"returned 2 series", `code="200"`, `code="500"`}},
		{name: "syntax error", query: `sum(rate(test_requests[1m]`,
			errHas: []string{"refused the query", "bad_data", "parse error"}},
		{name: "range vector", query: `test_requests{code="200"}[5m]`, errHas: []string{"range vector"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := p.Query(ctx, tt.query)
			switch {
			case tt.noData:
				if !errors.Is(err, metrics.ErrNoData) {
					t.Fatalf("got %v, %v; want ErrNoData", v, err)
				}
			case tt.errHas != nil:
				if err == nil {
					t.Fatalf("got %v, want an error", v)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not say %q", err, s)
					}
				}
			default:
				if err != nil || v != tt.want {
					t.Fatalf("got %v, %v; want %v", v, err, tt.want)
				}
			}
		})
	}
}

func TestProviderUnreachable(t *testing.T) {
	addr := promtest.FreeAddr(t) // nothing listens there
	p, err := prom.New(prom.Options{Address: "http://" + addr, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Query(context.Background(), "1")
	if err == nil || errors.Is(err, metrics.ErrNoData) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("err %v: want a connection error naming %s", err, addr)
	}
}

func TestProviderBasicAuthAndBearer(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	srv := promtest.Start(t, promtest.Options{WebConfig: "basic_auth_users:\n  canary: " + string(hash) + "\n",
		ReadyUser: "canary", ReadyPassword: "s3cret"})
	ctx := context.Background()

	anon, _ := prom.New(prom.Options{Address: srv.URL})
	if _, err := anon.Query(ctx, "1"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("without credentials: %v, want a 401", err)
	}
	o, err := prom.Options{Address: srv.URL}.WithCredentials(map[string][]byte{"username": []byte("canary"), "password": []byte("s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := prom.New(o)
	if v, err := p.Query(ctx, "42"); err != nil || v != 42 {
		t.Errorf("with basic auth: %v, %v", v, err)
	}
	wrong, _ := prom.New(prom.Options{Address: srv.URL, Username: "canary", Password: "nope"})
	if _, err := wrong.Query(ctx, "1"); err == nil {
		t.Error("a wrong password was accepted")
	}
	// A bearer token, as an authenticating proxy in front of Prometheus wants it: the
	// proxy lets "Bearer abc" through with the server's own credentials.
	target, _ := url.Parse(srv.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer abc" {
			http.Error(w, "token required", http.StatusUnauthorized)
			return
		}
		r.SetBasicAuth("canary", "s3cret")
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	tok, err := prom.Options{Address: front.URL}.WithCredentials(map[string][]byte{"token": []byte("abc\n")})
	if err != nil {
		t.Fatal(err)
	}
	bp, _ := prom.New(tok)
	if v, err := bp.Query(ctx, "7"); err != nil || v != 7 {
		t.Errorf("with a bearer token: %v, %v", v, err)
	}
	for _, bad := range []map[string][]byte{
		{},
		{"username": []byte("u")},
		{"username": []byte("u"), "password": []byte("p"), "token": []byte("t")},
	} {
		if _, err := (prom.Options{}).WithCredentials(bad); err == nil {
			t.Errorf("credentials %v accepted", bad)
		}
	}
}
