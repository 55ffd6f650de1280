package demoapp

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func get(t *testing.T, srv *httptest.Server, method, path, body string, hdr map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return v
}

type endpointCase struct {
	name, method, path, body string
	hdr                      map[string]string
	code                     int
	check                    func(t *testing.T, h http.Header, body string)
}

// endpointCases are the requests TestEndpoints makes, in order, against an app with
// version 3.1.0, revision abc123, hostname host-a, colour #ff0000 and message "hi".
func endpointCases() []endpointCase {
	return []endpointCase{
		{"info", "GET", "/", "", nil, 200, func(t *testing.T, h http.Header, body string) {
			in := decode[map[string]string](t, body)
			want := map[string]string{"hostname": "host-a", "version": "3.1.0", "revision": "abc123", "color": "#ff0000", "message": "hi"}
			for k, v := range want {
				if in[k] != v {
					t.Errorf("%s = %q, want %q", k, in[k], v)
				}
			}
			for _, k := range []string{"goos", "goarch", "runtime", "num_goroutine", "num_cpu", "logo"} {
				if _, ok := in[k]; !ok {
					t.Errorf("field %s missing in %s", k, body)
				}
			}
		}},
		{"page", "GET", "/", "", map[string]string{"Accept": "text/html,application/xhtml+xml"}, 200, func(t *testing.T, h http.Header, body string) {
			if !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
				t.Errorf("content type %q", h.Get("Content-Type"))
			}
			for _, s := range []string{"v3.1.0", "#ff0000", "<svg", "hi"} {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %q", s)
				}
			}
		}},
		{"version", "GET", "/version", "", nil, 200, func(t *testing.T, _ http.Header, body string) {
			v := decode[map[string]string](t, body)
			if v["version"] != "3.1.0" || v["commit"] != "abc123" {
				t.Errorf("version = %v", v)
			}
		}},
		{"healthz", "GET", "/healthz", "", nil, 200, wantJSON(`{"status":"OK"}`)},
		{"readyz", "GET", "/readyz", "", nil, 200, wantJSON(`{"status":"OK"}`)},
		{"status 503", "GET", "/status/503", "", nil, 503, wantJSON(`{"status":503}`)},
		{"status 201 by POST", "POST", "/status/201", "", nil, 201, wantJSON(`{"status":201}`)},
		{"status not a number", "GET", "/status/abc", "", nil, 400, nil},
		{"status out of range", "GET", "/status/99", "", nil, 400, nil},
		{"delay 0", "GET", "/delay/0", "", nil, 200, wantJSON(`{"delay":0}`)},
		{"delay fraction", "GET", "/delay/0.01", "", nil, 200, wantJSON(`{"delay":0.01}`)},
		{"delay negative", "GET", "/delay/-1", "", nil, 400, nil},
		{"delay too long", "GET", "/delay/100000", "", nil, 400, nil},
		{"token", "POST", "/token", "test", nil, 200, checkToken("test")},
		{"token anonymous", "POST", "/token", "", nil, 200, checkToken("anonymous")},
		{"token by GET", "GET", "/token", "", nil, 405, nil},
		{"headers", "GET", "/headers", "", map[string]string{"X-Canary": "always"}, 200, func(t *testing.T, _ http.Header, body string) {
			h := decode[map[string][]string](t, body)
			if got := h["X-Canary"]; len(got) != 1 || got[0] != "always" {
				t.Errorf("X-Canary echoed as %v", got)
			}
		}},
		{"echo", "POST", "/echo", "hello mesh", nil, 202, func(t *testing.T, h http.Header, body string) {
			if body != "hello mesh" || h.Get("X-Color") != "#ff0000" {
				t.Errorf("echo = %q, X-Color %q", body, h.Get("X-Color"))
			}
		}},
		{"echo by GET", "GET", "/echo", "", nil, 405, nil},
		{"env", "GET", "/env", "", nil, 200, func(t *testing.T, _ http.Header, body string) {
			env := decode[[]string](t, body)
			found := false
			for _, e := range env {
				found = found || e == "DEMOAPP_TEST_MARKER=present"
			}
			if !found {
				t.Errorf("/env lacks the test's variable")
			}
		}},
		{"not found", "GET", "/nope", "", nil, 404, nil},
		{"metrics", "GET", "/metrics", "", nil, 200, func(t *testing.T, _ http.Header, body string) {
			if !strings.Contains(body, "go_goroutines") {
				t.Errorf("metrics lack the Go collector")
			}
		}},
	}
}

func TestEndpoints(t *testing.T) {
	t.Setenv("DEMOAPP_TEST_MARKER", "present")
	srv := httptest.NewServer(New(Options{Version: "3.1.0", Revision: "abc123", Hostname: "host-a", Color: "#ff0000", Message: "hi"}))
	defer srv.Close()

	for _, tc := range endpointCases() {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv, tc.method, tc.path, tc.body, tc.hdr)
			if resp.StatusCode != tc.code {
				t.Fatalf("%s %s = %d, want %d; body %s", tc.method, tc.path, resp.StatusCode, tc.code, body)
			}
			if tc.check != nil {
				tc.check(t, resp.Header, body)
			}
		})
	}

	// Every request above was counted by status, method and route.
	_, body := get(t, srv, "GET", "/metrics", "", nil)
	for _, s := range []string{
		`http_requests_total{method="GET",path="/status/{code}",status="503"} 1`,
		`http_requests_total{method="POST",path="/token",status="200"} 2`,
		`http_requests_total{method="GET",path="other",status="404"} 1`,
		`http_request_duration_seconds_count{method="GET",path="/delay/{seconds}",status="200"} 2`,
	} {
		if !strings.Contains(body, s) {
			t.Errorf("/metrics lacks %s", s)
		}
	}
}

func wantJSON(want string) func(t *testing.T, _ http.Header, body string) {
	return func(t *testing.T, _ http.Header, body string) {
		t.Helper()
		var got, w any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal([]byte(want), &w)
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(w)
		if string(gb) != string(wb) {
			t.Errorf("body %s, want %s", gb, wb)
		}
	}
}

func checkToken(user string) func(t *testing.T, _ http.Header, body string) {
	return func(t *testing.T, _ http.Header, body string) {
		t.Helper()
		tr := decode[tokenResponse](t, body)
		parts := strings.Split(tr.Token, ".")
		if len(parts) != 3 {
			t.Fatalf("token %q is not a JWT", tr.Token)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		if err != nil {
			t.Fatal(err)
		}
		claims := decode[map[string]any](t, string(payload))
		if claims["name"] != user || claims["iss"] != "podinfo" {
			t.Errorf("claims %v, want name %q", claims, user)
		}
		if d := time.Until(tr.ExpiresAt); d <= 0 || d > tokenTTL {
			t.Errorf("expires_at %v is not within a minute from now", tr.ExpiresAt)
		}
	}
}

func TestReadyzToggle(t *testing.T) {
	srv := httptest.NewServer(New(Options{}))
	defer srv.Close()
	steps := []struct {
		method, path string
		code         int
	}{
		{"GET", "/readyz", 200},
		{"POST", "/readyz/disable", 202},
		{"GET", "/readyz", 503},
		{"GET", "/healthz", 200},
		{"POST", "/readyz/enable", 202},
		{"GET", "/readyz", 200},
	}
	for _, s := range steps {
		if resp, _ := get(t, srv, s.method, s.path, "", nil); resp.StatusCode != s.code {
			t.Errorf("%s %s = %d, want %d", s.method, s.path, resp.StatusCode, s.code)
		}
	}
}

func TestUIFromEnvironment(t *testing.T) {
	t.Setenv(EnvColor, "#00ff00")
	t.Setenv(EnvLogo, "https://example.invalid/bunny.gif")
	t.Setenv(EnvMessage, "from env")

	in := newApp(Options{Version: "3.1.1"}).info()
	if in.Color != "#00ff00" || in.Logo != "https://example.invalid/bunny.gif" || in.Message != "from env" {
		t.Errorf("env not honoured: %+v", in)
	}
	// Options set explicitly win over the environment, as podinfo's flags do.
	in = newApp(Options{Version: "3.1.1", Color: "#123456", Message: "flag"}).info()
	if in.Color != "#123456" || in.Message != "flag" || in.Logo != "https://example.invalid/bunny.gif" {
		t.Errorf("options do not win over env: %+v", in)
	}
}

func TestDefaults(t *testing.T) {
	t.Setenv(EnvColor, "")
	t.Setenv(EnvLogo, "")
	t.Setenv(EnvMessage, "")
	in := newApp(Options{Version: "3.1.0"}).info()
	if in.Color != DefaultColor || in.Message != "greetings from podinfo v3.1.0" || in.Hostname == "" {
		t.Errorf("defaults: %+v", in)
	}
}

// serve runs one request through h without a network, for the statistical tests.
func serve(h http.Handler, method, path string) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code
}

func TestErrorRate(t *testing.T) {
	const n = 4000
	for _, rate := range []float64{0, 0.1, 0.5, 1} {
		h := New(Options{ErrorRate: rate})
		fails := 0
		for range n {
			switch code := serve(h, "GET", "/"); code {
			case 500:
				fails++
			case 200:
			default:
				t.Fatalf("unexpected status %d", code)
			}
		}
		// Binomial standard deviation is at most sqrt(n)/2 ≈ 32 of 4000 requests; allow
		// six of them, so this fails about once in a billion runs.
		got := float64(fails) / n
		if tol := 6 * 0.5 / 63.2; got < rate-tol || got > rate+tol {
			t.Errorf("error rate %v: %d of %d failed (%.3f)", rate, fails, n, got)
		}
		// Probes and metrics never fail: a failing release stays observable.
		for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
			for range 50 {
				if code := serve(h, "GET", p); code != 200 {
					t.Fatalf("error rate %v: %s answered %d", rate, p, code)
				}
			}
		}
	}
}

func TestDelayOption(t *testing.T) {
	const d = 30 * time.Millisecond
	h := New(Options{Delay: d})
	for range 5 {
		start := time.Now()
		if code := serve(h, "GET", "/version"); code != 200 {
			t.Fatalf("status %d", code)
		}
		if el := time.Since(start); el < d {
			t.Fatalf("answered after %v, before the %v delay", el, d)
		}
	}

	// Probes are not delayed: with an hour's delay they still answer, and a delayed
	// request ends when its client goes away.
	h = New(Options{Delay: time.Hour})
	done := make(chan int, 1)
	go func() { done <- serve(h, "GET", "/readyz") }()
	select {
	case code := <-done:
		if code != 200 {
			t.Fatalf("/readyz = %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("/readyz was delayed")
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil).WithContext(ctx))
		done <- rec.Code
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a delayed request outlived its client")
	}
}

func TestDelayEndpointWaits(t *testing.T) {
	h := New(Options{})
	start := time.Now()
	if code := serve(h, "GET", "/delay/0.05"); code != 200 {
		t.Fatalf("status %d", code)
	}
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Fatalf("answered after %v, before 50ms", el)
	}
}

// TestServeShutsDownGracefully: a request in flight when the context ends still gets
// its answer, and Serve returns without error.
func TestServeShutsDownGracefully(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, Options{}) }()
	url := "http://" + ln.Addr().String()

	type result struct {
		code int
		err  error
	}
	inflight := make(chan result, 1)
	go func() {
		resp, err := http.Get(url + "/delay/1")
		if err != nil {
			inflight <- result{0, err}
			return
		}
		resp.Body.Close()
		inflight <- result{resp.StatusCode, nil}
	}()
	// Wait until the server is answering, then stop it while /delay is in flight.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server never answered")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Give the /delay request time to reach the server; it then waits a second.
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	r := <-inflight
	if r.err != nil || r.code != 200 {
		t.Fatalf("request in flight: %d %v", r.code, r.err)
	}
}
