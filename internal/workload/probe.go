package workload

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// probeTransport is shared by every probe; like a kubelet's, a probe opens a fresh
// connection each time, so a program that stopped accepting is seen at once.
var probeTransport = &http.Transport{DisableKeepAlives: true, Proxy: nil}

// probe runs the readiness probe until ctx ends, as a Kubernetes readiness probe does:
// SuccessThreshold passes in a row make the instance ready, FailureThreshold failures
// in a row make it unready. Until its first pass the instance is checked every
// StartupProbeInterval rather than every period, so a new instance takes traffic as
// soon as it answers; a rolling replace waits on exactly that.
func (in *instance) probe(ctx context.Context, p *v1alpha1.Probe) {
	port := in.port
	if p.HTTPGet.Port != 0 {
		port = int(p.HTTPGet.Port)
	}
	path := p.HTTPGet.Path
	if path == "" {
		path = "/"
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port) + path
	client := &http.Client{
		Transport: probeTransport,
		Timeout:   seconds(p.TimeoutSeconds, v1alpha1.DefaultProbeTimeoutSeconds),
		// A 3xx passes, as for a kubelet; the redirect is not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	period := seconds(p.PeriodSeconds, v1alpha1.DefaultProbePeriodSeconds)
	startup := min(in.opts.StartupProbeInterval, period)
	successes := int(max(p.SuccessThreshold, 1))
	failures := int(max(p.FailureThreshold, 1))

	if !sleepCtx(ctx, time.Duration(p.InitialDelaySeconds)*time.Second) {
		return
	}
	var passed, failed int
	ready, everReady := false, false
	for {
		err := check(ctx, client, url)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			passed, failed = passed+1, 0
		} else {
			passed, failed = 0, failed+1
		}
		switch {
		case !ready && passed >= successes:
			ready, everReady = true, true
			in.update(func(st *instanceState) { st.Ready = true })
		case ready && failed >= failures:
			ready = false
			in.update(func(st *instanceState) { st.Ready = false })
			in.sink.notice("instance %d: readiness probe failed %d times: %v", in.index, failed, err)
		}
		interval := period
		if !everReady {
			interval = startup
		}
		if !sleepCtx(ctx, interval) {
			return
		}
	}
}

func check(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "canarymesh-probe")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

func seconds(v, def int32) time.Duration {
	if v <= 0 {
		v = def
	}
	return time.Duration(v) * time.Second
}

// sleepCtx waits d unless ctx ends first; it reports whether the whole wait passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
