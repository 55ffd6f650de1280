package proxy

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// Active health checks, as App Mesh's listener healthCheck: every Interval each endpoint
// is checked with Timeout; HealthyThreshold consecutive successes make it healthy,
// UnhealthyThreshold consecutive failures unhealthy, and unhealthy endpoints get no
// traffic. A new endpoint counts as healthy until its first checks say otherwise (the
// first check runs at once), so adding endpoints never blackholes a cluster.
//
//   - http, http2: GET Path (default "/"); 2xx and 3xx are healthy.
//   - grpc: the grpc.health.v1.Health/Check unary call for the whole server (service ""),
//     framed by hand over h2c; healthy when it answers SERVING with grpc-status 0.
//   - tcp: a connection can be opened.

// startHealthLocked starts checking ep if the upstream has a health check.
func (u *upstream) startHealthLocked(ep *endpoint) {
	hc := u.health
	if hc == nil || u.ctx.Err() != nil {
		return
	}
	if u.checker == nil && hc.Protocol != "tcp" {
		u.checker = &http.Client{
			Transport: newTransport(u.checkDialer(hc.Protocol), hc.Protocol, time.Minute),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	ctx, cancel := context.WithCancel(u.ctx)
	ep.hcStop = cancel
	go u.healthLoop(ctx, ep, *hc, u.checker)
}

func (u *upstream) stopHealthLocked(ep *endpoint) {
	if ep.hcStop != nil {
		ep.hcStop()
		ep.hcStop = nil
	}
}

func (u *upstream) healthLoop(ctx context.Context, ep *endpoint, hc snapshot.HealthCheck, client *http.Client) {
	interval := orDefault(hc.Interval, 5*time.Second)
	timeout := orDefault(hc.Timeout, 2*time.Second)
	healthyAfter, unhealthyAfter := max(hc.HealthyThreshold, 1), max(hc.UnhealthyThreshold, 1)
	addr := ep.addr
	if hc.Port != 0 {
		if host, _, err := net.SplitHostPort(addr); err == nil {
			addr = net.JoinHostPort(host, strconv.Itoa(hc.Port))
		}
	}
	t := time.NewTimer(0)
	defer t.Stop()
	successes, failures := 0, 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		u.stats.hcAttempt.Add(1)
		cctx, cancel := context.WithTimeout(ctx, timeout)
		ok := check(cctx, client, &hc, addr)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if ok {
			u.stats.hcSuccess.Add(1)
			successes, failures = successes+1, 0
			if successes >= healthyAfter {
				u.setHealthy(ep, true)
			}
		} else {
			u.stats.hcFailure.Add(1)
			successes, failures = 0, failures+1
			if failures >= unhealthyAfter {
				u.setHealthy(ep, false)
			}
		}
		t.Reset(interval)
	}
}

func (u *upstream) setHealthy(ep *endpoint, healthy bool) {
	if ep.healthy.Load() == healthy {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.endpoints[ep.addr] != ep || ep.healthy.Load() == healthy {
		return
	}
	ep.healthy.Store(healthy)
	u.p.log.Info("endpoint health changed", "cluster", u.stats.name, "endpoint", ep.addr, "healthy", healthy)
	u.rebuildLocked()
}

func check(ctx context.Context, client *http.Client, hc *snapshot.HealthCheck, addr string) bool {
	switch hc.Protocol {
	case "tcp":
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	case "grpc":
		return checkGRPC(ctx, client, addr)
	}
	path := hc.Path
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return false
	}
	req.Header.Set("User-Agent", "canarymesh-health-check")
	res, err := client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	return res.StatusCode >= 200 && res.StatusCode < 400
}

// checkGRPC calls grpc.health.v1.Health/Check with an empty HealthCheckRequest.
func checkGRPC(ctx context.Context, client *http.Client, addr string) bool {
	body := []byte{0, 0, 0, 0, 0} // uncompressed, zero-length message
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/grpc.health.v1.Health/Check",
		bytes.NewReader(body))
	if err != nil {
		return false
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	res, err := client.Do(req)
	if err != nil {
		return false
	}
	defer res.Body.Close()
	msg, err := io.ReadAll(io.LimitReader(res.Body, 4<<10))
	if err != nil || res.StatusCode != 200 {
		return false
	}
	st, ok := grpcStatus(res.Trailer)
	if !ok {
		st, ok = grpcStatus(res.Header)
	}
	return ok && st == 0 && servingStatus(msg) == 1
}

// servingStatus reads HealthCheckResponse.status (field 1, varint) from one gRPC frame.
func servingStatus(frame []byte) int {
	if len(frame) < 5 || frame[0] != 0 {
		return -1
	}
	msg := frame[5:]
	switch {
	case len(msg) == 0:
		return 0 // an empty message is status 0, UNKNOWN
	case len(msg) >= 2 && msg[0] == 0x08 && msg[1] < 0x80:
		return int(msg[1])
	}
	return -1
}

// checkDialer connects health checks of protocol, in the upstream's TLS when it speaks
// TLS.
func (u *upstream) checkDialer(protocol string) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil || u.tls == nil {
			return c, err
		}
		return u.tls.handshake(ctx, c, addr, protocol)
	}
}
