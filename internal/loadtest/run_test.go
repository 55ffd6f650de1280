package loadtest

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// counter is a real loopback server that counts requests and keeps the last one.
type counter struct {
	*httptest.Server
	n         atomic.Int64
	inflight  atomic.Int64
	maxFlight atomic.Int64

	mu   sync.Mutex
	last *http.Request
	body string
}

func newCounter(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int64)) *counter {
	t.Helper()
	c := &counter{}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := c.n.Add(1)
		f := c.inflight.Add(1)
		defer c.inflight.Add(-1)
		for m := c.maxFlight.Load(); f > m && !c.maxFlight.CompareAndSwap(m, f); m = c.maxFlight.Load() {
		}
		b, _ := io.ReadAll(r.Body)
		c.mu.Lock()
		c.last, c.body = r.Clone(context.Background()), string(b)
		c.mu.Unlock()
		if h != nil {
			h(w, r, n)
			return
		}
		_, _ = io.WriteString(w, "hello")
	}))
	t.Cleanup(c.Close)
	return c
}

func run(t *testing.T, cfg Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func TestRunSendsExactlyN(t *testing.T) {
	srv := newCounter(t, nil)
	res := run(t, Config{URL: srv.URL, Requests: 37, Concurrency: 4})
	if got := srv.n.Load(); got != 37 {
		t.Errorf("server got %d requests, want 37 (hey would send 36: 37/4 per worker)", got)
	}
	if res.Requests != 37 || res.StatusCodes[200] != 37 || res.Errors != 0 {
		t.Errorf("result: %d requests, %v codes, %d errors", res.Requests, res.StatusCodes, res.Errors)
	}
	if res.SizeTotal != 37*5 {
		t.Errorf("SizeTotal = %d, want %d", res.SizeTotal, 37*5)
	}
	if res.Fastest <= 0 || res.Fastest > res.Average || res.Average > res.Slowest {
		t.Errorf("fastest %v, average %v, slowest %v out of order", res.Fastest, res.Average, res.Slowest)
	}
}

func TestRunConcurrencyIsTheNumberOfWorkers(t *testing.T) {
	const workers = 4
	var srv *counter
	srv = newCounter(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		// hold the first requests until every worker is in, so the peak is observable
		deadline := time.Now().Add(5 * time.Second)
		for n <= workers && srv.maxFlight.Load() < workers && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	})
	run(t, Config{URL: srv.URL, Requests: 4 * workers, Concurrency: workers})
	if got := srv.maxFlight.Load(); got != workers {
		t.Errorf("peak requests in flight = %d, want -c %d", got, workers)
	}
}

func TestRunQPSLimitsEachWorker(t *testing.T) {
	srv := newCounter(t, nil)
	res := run(t, Config{URL: srv.URL, Duration: time.Second, QPS: 10, Concurrency: 2})
	// 2 workers × 10/s × 1s: at most 20 ticks, plus slack for a tick racing the end.
	if got := srv.n.Load(); got < 2 || got > 22 {
		t.Errorf("server got %d requests in 1s at -q 10 -c 2, want about 20 and at most 22", got)
	}
	if res.Requests != srv.n.Load() {
		t.Errorf("result counts %d, server %d", res.Requests, srv.n.Load())
	}
}

func TestRunOpenModelRate(t *testing.T) {
	srv := newCounter(t, nil)
	res := run(t, Config{URL: srv.URL, Rate: 50, Duration: time.Second, Concurrency: 10})
	got := srv.n.Load()
	if got+res.Missed > 50 || got < 10 {
		t.Errorf("sent %d (+%d missed) at --rate 50 for 1s, want at most 50 and not few", got, res.Missed)
	}
	if res.Rate != 50 {
		t.Errorf("Rate = %v", res.Rate)
	}

	srv2 := newCounter(t, nil)
	run(t, Config{URL: srv2.URL, Rate: 2000, Requests: 30, Concurrency: 3})
	if got := srv2.n.Load(); got != 30 {
		t.Errorf("--rate with -n 30 sent %d", got)
	}
}

// With one slot and a server slower than the schedule, latencies count from the due
// time: the queueing shows, and the requests that never left are reported missed.
func TestRunOpenModelCountsQueueing(t *testing.T) {
	const stall = 200 * time.Millisecond
	srv := newCounter(t, func(w http.ResponseWriter, r *http.Request, _ int64) { time.Sleep(stall) })
	res := run(t, Config{URL: srv.URL, Rate: 20, Duration: time.Second, Concurrency: 1})
	if res.Slowest < 2*stall {
		t.Errorf("slowest = %v; a request due at 50ms behind one of %v cannot finish before %v", res.Slowest, stall, 2*stall)
	}
	if res.Missed == 0 {
		t.Errorf("no missed requests reported; %d sent of 20 due", res.Requests)
	}
}

func TestRunRequestShape(t *testing.T) {
	srv := newCounter(t, nil)
	run(t, Config{
		URL: srv.URL + "/token?x=1", Method: "post", Requests: 3, Concurrency: 1,
		Header:      http.Header{"X-Canary": {"yes"}, "User-Agent": {"flagger"}},
		Body:        []byte("test"),
		ContentType: "application/json",
		Host:        "podinfo.test",
		BasicAuth:   "u:p",
	})
	srv.mu.Lock()
	defer srv.mu.Unlock()
	r := srv.last
	if r.Method != "POST" || r.URL.Path != "/token" || r.URL.RawQuery != "x=1" {
		t.Errorf("request line: %s %s", r.Method, r.URL)
	}
	if srv.body != "test" {
		t.Errorf("body = %q", srv.body)
	}
	if r.Header.Get("X-Canary") != "yes" || r.Header.Get("Content-Type") != "application/json" || r.Host != "podinfo.test" {
		t.Errorf("headers %v, host %q", r.Header, r.Host)
	}
	if u, p, _ := r.BasicAuth(); u != "u" || p != "p" {
		t.Errorf("basic auth %q:%q", u, p)
	}
	if ua := r.Header.Get("User-Agent"); ua != "flagger "+userAgent {
		t.Errorf("User-Agent = %q", ua)
	}
}

func TestRunHostHeaderSetsHost(t *testing.T) {
	srv := newCounter(t, nil)
	run(t, Config{URL: srv.URL, Requests: 1, Concurrency: 1, Header: http.Header{"Host": {"via-header.test"}}})
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.last.Host != "via-header.test" {
		t.Errorf("Host = %q", srv.last.Host)
	}
}

func TestRunStatusCodeDistribution(t *testing.T) {
	srv := newCounter(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if n%4 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	res := run(t, Config{URL: srv.URL, Requests: 40, Concurrency: 2})
	if res.StatusCodes[200] != 30 || res.StatusCodes[503] != 10 {
		t.Errorf("status codes = %v, want 30×200 and 10×503", res.StatusCodes)
	}
}

func TestRunErrorDistribution(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	res := run(t, Config{URL: "http://" + addr + "/", Requests: 5, Concurrency: 1})
	if res.Errors != 5 || res.Requests != 0 {
		t.Fatalf("errors %d, requests %d; want 5 and 0", res.Errors, res.Requests)
	}
	if len(res.ErrorDist) != 1 {
		t.Fatalf("error distribution %v", res.ErrorDist)
	}
	for msg, n := range res.ErrorDist {
		if !strings.Contains(msg, "connection refused") || n != 5 {
			t.Errorf("error distribution: [%d] %s", n, msg)
		}
	}
}

func TestRunRequestTimeout(t *testing.T) {
	srv := newCounter(t, func(w http.ResponseWriter, r *http.Request, _ int64) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	})
	res := run(t, Config{URL: srv.URL, Requests: 2, Concurrency: 2, Timeout: 100 * time.Millisecond})
	if res.Errors != 2 {
		t.Fatalf("errors = %d, want 2 timeouts (%v)", res.Errors, res.ErrorDist)
	}
	for msg := range res.ErrorDist {
		if !strings.Contains(msg, "Client.Timeout") {
			t.Errorf("error %q is not the client timeout", msg)
		}
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	srv := newCounter(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	var calls atomic.Int64
	cfg := Config{
		URL: srv.URL, Duration: time.Hour, Concurrency: 2, QPS: 100,
		ProgressInterval: 20 * time.Millisecond,
		Progress: func(p Progress) {
			if calls.Add(1) == 3 {
				cancel()
			}
		},
	}
	done := make(chan struct{})
	var res *Result
	var err error
	go func() { res, err = Run(ctx, cfg); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not stop after its context was cancelled")
	}
	if !errors.Is(err, context.Canceled) || res == nil {
		t.Fatalf("Run = %v, %v; want a partial result and context.Canceled", res, err)
	}
	if res.Errors != 0 {
		t.Errorf("cancellation counted as errors: %v", res.ErrorDist)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{URL: "localhost:8080"},
		{URL: "http://a/", QPS: 1, Rate: 1},
		{URL: "http://a/", Requests: 1, Concurrency: 2},
		{URL: "http://a/", BodyFile: "/nonexistent/body"},
	} {
		if res, err := Run(t.Context(), cfg); err == nil || res != nil {
			t.Errorf("Run(%+v) = %v, %v; want an error", cfg, res, err)
		}
	}
}
