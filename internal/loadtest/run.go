package loadtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Run sends the load Config describes and returns what it measured. It stops by itself
// when -n requests were sent or -z has passed (requests in flight then complete), or
// when ctx is cancelled: it then returns the partial Result with ctx's error. Any other
// error means the config was invalid and nothing was sent.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	body, err := cfg.body()
	if err != nil {
		return nil, err
	}
	client, err := newClient(cfg)
	if err != nil {
		return nil, err
	}
	defer client.CloseIdleConnections()
	r := &runner{cfg: cfg, body: body, client: client, col: newCollector()}

	start := time.Now()
	// sendCtx ends the sending of new requests; requests already sent run on ctx, so
	// the end of -z does not count the last responses as errors.
	sendCtx, stopSending := ctx, context.CancelFunc(func() {})
	if cfg.Duration > 0 {
		sendCtx, stopSending = context.WithDeadline(ctx, start.Add(cfg.Duration))
	}
	defer stopSending()
	stopProgress := r.reportProgress(start)
	if cfg.Rate > 0 {
		r.openModel(ctx, sendCtx, start)
	} else {
		r.closedModel(ctx, sendCtx)
	}
	stopProgress()

	res := r.col.result(time.Since(start))
	res.Rate, res.Missed = cfg.Rate, r.missed
	return res, ctx.Err()
}

type runner struct {
	cfg    Config
	body   []byte
	client *http.Client
	col    *collector
	sent   atomic.Int64 // requests handed out, against -n
	missed int64        // open model: due but never sent
}

// take claims the right to send one more request under -n.
func (r *runner) take() bool {
	return r.cfg.Requests <= 0 || r.sent.Add(1) <= int64(r.cfg.Requests)
}

// closedModel is hey's: -c workers, each sending its next request when the previous
// one is answered, at most -q per second each.
func (r *runner) closedModel(reqCtx, sendCtx context.Context) {
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(func() { r.worker(reqCtx, sendCtx) })
	}
	wg.Wait()
}

func (r *runner) worker(reqCtx, sendCtx context.Context) {
	var throttle <-chan time.Time
	if r.cfg.QPS > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / r.cfg.QPS))
		defer t.Stop()
		throttle = t.C
	}
	for sendCtx.Err() == nil && r.take() {
		if throttle != nil {
			select {
			case <-sendCtx.Done():
				return
			case <-throttle:
			}
		}
		r.do(reqCtx, time.Now())
	}
}

// openModel sends on a fixed schedule of --rate per second. A request's latency counts
// from the time it was due, so when all -c senders are busy the wait shows in the
// latencies instead of silently lowering the rate (coordinated omission).
func (r *runner) openModel(reqCtx, sendCtx context.Context, start time.Time) {
	due := make(chan time.Time)
	var wg sync.WaitGroup
	for range r.cfg.Concurrency {
		wg.Go(func() {
			for at := range due {
				r.do(reqCtx, at)
			}
		})
	}
	interval := max(time.Duration(float64(time.Second)/r.cfg.Rate), 1)
	deadline, bounded := sendCtx.Deadline()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for next := start; r.take(); next = next.Add(interval) {
		if bounded && !next.Before(deadline) {
			break // the schedule is done
		}
		if !sleepUntil(sendCtx, timer, next) || !sendDue(sendCtx, due, next) {
			if bounded && reqCtx.Err() == nil {
				r.missed = int64((deadline.Sub(next) + interval - 1) / interval)
			}
			break
		}
	}
	close(due)
	wg.Wait()
}

// sleepUntil waits for t; false if ctx ended first.
func sleepUntil(ctx context.Context, timer *time.Timer, t time.Time) bool {
	if wait := time.Until(t); wait > 0 {
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return false
		case <-timer.C:
		}
	}
	return ctx.Err() == nil
}

// sendDue hands a due time to a free sender; false if ctx ended while all were busy.
func sendDue(ctx context.Context, due chan<- time.Time, at time.Time) bool {
	select {
	case due <- at:
		return true
	case <-ctx.Done():
		return false
	}
}

// do sends one request and records its outcome, latency measured from `from`.
func (r *runner) do(ctx context.Context, from time.Time) {
	req, err := r.newRequest(ctx)
	if err != nil {
		r.col.recordError(err)
		return
	}
	resp, err := r.client.Do(req)
	if err != nil {
		if ctx.Err() == nil { // not the caller cancelling the run
			r.col.recordError(err)
		}
		return
	}
	size, _ := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	r.col.record(resp.StatusCode, time.Since(from), size)
}

func (r *runner) newRequest(ctx context.Context) (*http.Request, error) {
	var body io.Reader
	if len(r.body) > 0 {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.cfg.Method, r.cfg.URL, body)
	if err != nil {
		return nil, err
	}
	for name, vals := range r.cfg.Header {
		if strings.EqualFold(name, "Host") && len(vals) > 0 {
			req.Host = vals[len(vals)-1]
			continue
		}
		req.Header[http.CanonicalHeaderKey(name)] = vals
	}
	req.Header.Set("Content-Type", r.cfg.ContentType)
	if r.cfg.Host != "" {
		req.Host = r.cfg.Host
	}
	if ua := req.Header.Get("User-Agent"); ua == "" {
		req.Header.Set("User-Agent", userAgent)
	} else {
		req.Header.Set("User-Agent", ua+" "+userAgent)
	}
	if user, pass, ok := strings.Cut(r.cfg.BasicAuth, ":"); ok {
		req.SetBasicAuth(user, pass)
	}
	return req, nil
}

// newClient is hey's client: connections pooled per worker, TLS not verified (a load
// test targets canaries by address), redirects followed unless disabled.
func newClient(cfg Config) (*http.Client, error) {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: min(cfg.Concurrency, 500),
		DisableKeepAlives:   cfg.DisableKeepAlive,
		DisableCompression:  cfg.DisableCompression,
		ForceAttemptHTTP2:   cfg.HTTP2,
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true, ServerName: cfg.Host}, //nolint:gosec // load-test targets, as hey
		TLSHandshakeTimeout: 10 * time.Second,
	}
	if cfg.Proxy != "" {
		u, err := url.Parse("http://" + strings.TrimPrefix(cfg.Proxy, "http://"))
		if err != nil {
			return nil, fmt.Errorf("-x %q: %w", cfg.Proxy, err)
		}
		tr.Proxy = http.ProxyURL(u)
	}
	c := &http.Client{Transport: tr}
	if cfg.Timeout > 0 {
		c.Timeout = cfg.Timeout
	}
	if cfg.DisableRedirects {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return c, nil
}

// reportProgress calls cfg.Progress every interval until the returned func is called.
func (r *runner) reportProgress(start time.Time) (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(r.cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				r.cfg.Progress(r.col.progress(now.Sub(start)))
			}
		}
	})
	return func() { close(done); wg.Wait() }
}
