package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

var errNoHealthy = errors.New("no healthy upstream")

// attemptError is the final failure of the last attempt.
type attemptError struct{ a attempt }

func (e *attemptError) Error() string { return e.a.reason }

// forward sends the request upstream, with retries, and streams the response back.
func (x *exchange) forward() {
	r, rt := x.r, x.route
	removeHopHeaders(r.Header)
	if r.Header["X-Forwarded-Proto"] == nil {
		if r.TLS != nil {
			r.Header["X-Forwarded-Proto"] = protoHTTPS
		} else {
			r.Header["X-Forwarded-Proto"] = protoHTTP
		}
	}
	if hasBody(r) {
		if r.ProtoMajor == 1 {
			// Let a response stream back while the request body still streams in, as
			// HTTP/2 always allows.
			http.NewResponseController(x.w).EnableFullDuplex()
		}
		if rt.retry.max > 0 {
			x.body = newReplayBody(r.Body)
		}
	}
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	timer := time.AfterFunc(rt.timeout, func() { cancel(errRouteTimeout) })
	res, tryCancel, err := x.attempts(ctx)
	if !timer.Stop() && err == nil { // the deadline passed as the head arrived
		res.Body.Close()
		tryCancel(nil)
		err = errRouteTimeout
	}
	if err != nil {
		x.fail(err)
		return
	}
	defer tryCancel(nil)
	x.respond(ctx, res, cancel)
}

func hasBody(r *http.Request) bool {
	return r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
}

// attempts tries endpoints until one answers with something the retry policy accepts,
// or retries run out. The response's try context stays open for its body (tryCancel).
func (x *exchange) attempts(ctx context.Context) (*http.Response, context.CancelCauseFunc, error) {
	pol := &x.route.retry
	var prev *endpoint
	for try := 0; ; try++ {
		ep := x.pickEndpoint(prev)
		if ep == nil {
			x.up.stats.noneHealthy.Add(1)
			return nil, nil, errNoHealthy
		}
		lim := x.up.limiter.Load()
		if err := lim.acquire(ctx, &x.up.stats.rqPendingActive); err != nil {
			return nil, nil, err // not the endpoint's fault: outlier detection is not told
		}
		x.ep, x.lim = ep, lim
		x.up.stats.rqActive.Add(1)
		tryCtx, tryCancel := context.WithCancelCause(ctx)
		var perTry *time.Timer
		if pol.perTry > 0 {
			perTry = time.AfterFunc(pol.perTry, func() { tryCancel(errPerTryTimeout) })
		}
		x.attemptStart = x.p.now()
		res, err := x.up.transport.RoundTrip(x.outbound(tryCtx, ep))
		if perTry != nil && !perTry.Stop() && err == nil {
			res.Body.Close()
			res, err = nil, errPerTryTimeout
		}
		if ctx.Err() != nil { // the route timed out or the client left: no more tries
			if res != nil {
				res.Body.Close()
			}
			tryCancel(nil)
			return nil, nil, context.Cause(ctx)
		}
		a := classify(res, err, tryCtx)
		if !pol.retriable(a) || try >= pol.max || !x.replayable() {
			if err == nil {
				return res, tryCancel, nil
			}
			tryCancel(nil)
			return nil, nil, &attemptError{a: a}
		}
		x.up.observe(ep, a.code)
		if res != nil {
			io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
			res.Body.Close()
		}
		tryCancel(nil)
		x.releaseSlot()
		x.up.stats.rqRetry.Add(1)
		if a.flag == "UT" {
			x.up.stats.rqPerTryTimeout.Add(1)
		}
		x.retried = true
		if !backoff(ctx, try) {
			return nil, nil, context.Cause(ctx)
		}
		prev = ep
	}
}

// pickEndpoint picks from the upstream, or, for a passthrough upstream, makes an
// endpoint of the request's own Host (port 80 when it names none).
func (x *exchange) pickEndpoint(prev *endpoint) *endpoint {
	if !x.up.passthrough {
		return x.up.pick(prev)
	}
	host, port := splitHostPort(x.r.Host)
	if host == "" {
		return nil
	}
	if port == 0 {
		port = 80
	}
	return &endpoint{addr: net.JoinHostPort(host, strconv.Itoa(port)), up: x.up}
}

func (x *exchange) replayable() bool {
	return x.body == nil && !hasBody(x.r) || x.body != nil && x.body.replayable()
}

// outbound builds one attempt's request: the downstream request with the endpoint as
// its destination. Headers are shared, as they are not changed between attempts.
func (x *exchange) outbound(ctx context.Context, ep *endpoint) *http.Request {
	r := x.r
	out := r.WithContext(ctx)
	u := new(url.URL)
	*u = *r.URL
	u.Scheme, u.Host = "http", ep.addr
	out.URL = u
	out.RequestURI = ""
	out.Close = false
	if x.body != nil {
		out.Body = x.body.attempt()
	} else if !hasBody(r) {
		out.Body = http.NoBody
	}
	return out
}

// fail answers a request that got no usable response.
func (x *exchange) fail(err error) {
	var ae *attemptError
	switch {
	case x.r.Context().Err() != nil:
		x.code, x.outcome, x.flags = 499, 499, "DC"
	case errors.Is(err, errRouteTimeout):
		x.up.stats.rqTimeout.Add(1)
		x.localReply(http.StatusGatewayTimeout, "UT", "upstream request timeout")
	case errors.Is(err, errOverflow):
		x.up.stats.pendingOverflow.Add(1)
		x.w.Header().Set("X-Envoy-Overloaded", "true")
		x.localReply(http.StatusServiceUnavailable, "UO", resetBefore+"overflow")
	case errors.Is(err, errNoHealthy):
		x.localReply(http.StatusServiceUnavailable, "UH", "no healthy upstream")
	case errors.As(err, &ae):
		flag := ae.a.flag
		if x.retried {
			flag += ",URX"
		}
		x.localReply(ae.a.code, flag, ae.a.reason)
	default:
		x.localReply(http.StatusServiceUnavailable, "UF", resetBefore+err.Error())
	}
}

// respond streams the upstream response back: the head at once, the body as it
// arrives (flushed per read when its length is unknown), then the trailers. An upstream
// failure mid-body aborts the downstream stream so the client sees it.
func (x *exchange) respond(ctx context.Context, res *http.Response, cancel context.CancelCauseFunc) {
	defer res.Body.Close()
	h := x.w.Header()
	for k, vs := range res.Header {
		h[k] = vs
	}
	removeHopHeaders(h)
	if cs := x.tgt.setCookies; len(cs) > 0 {
		old := h["Set-Cookie"]
		h["Set-Cookie"] = append(old[:len(old):len(old)], cs...)
	}
	if len(res.Trailer) > 0 {
		keys := make([]string, 0, len(res.Trailer))
		for k := range res.Trailer {
			keys = append(keys, k)
		}
		h["Trailer"] = keys
	}
	svc := x.p.now().Sub(x.attemptStart)
	h["X-Envoy-Upstream-Service-Time"] = []string{strconv.FormatInt(svc.Milliseconds(), 10)}
	grpc := isGRPC(res.Header)
	streaming := res.ContentLength < 0
	x.code, x.wroteHead = res.StatusCode, true
	x.w.WriteHeader(res.StatusCode)
	if streaming && !grpc {
		http.NewResponseController(x.w).Flush()
	}
	readErr, writeErr := x.copyBody(ctx, res.Body, streaming, cancel)
	x.upstreamTime = x.p.now().Sub(x.attemptStart)
	for k, vs := range res.Trailer {
		h[http.TrailerPrefix+k] = vs
	}
	x.outcome = classifyResponse(res).code
	if g, ok := grpcStatus(res.Trailer); ok && grpc {
		x.outcome = grpcHTTPCode(g)
	}
	switch {
	case writeErr != nil || x.r.Context().Err() != nil:
		x.flags = "DC"
	case readErr != nil:
		x.flags = "UR"
		if errors.Is(readErr, errIdleTimeout) {
			x.flags = "SI"
		}
		// Resetting the downstream stream is the only way to tell the client that the
		// response it started receiving is incomplete; finish still runs (deferred).
		panic(http.ErrAbortHandler)
	}
}

// copyBody copies an upstream body downstream, pushing the idle timeout at every read.
func (x *exchange) copyBody(ctx context.Context, src io.Reader, flush bool, cancel context.CancelCauseFunc) (readErr, writeErr error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	idle := x.route.idle
	timer := time.AfterFunc(idle, func() { cancel(errIdleTimeout) })
	defer timer.Stop()
	rc := http.NewResponseController(x.w)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			timer.Reset(idle)
			m, werr := x.w.Write(buf[:n])
			x.bytesOut += int64(m)
			if werr != nil {
				return nil, werr
			}
			if flush {
				if ferr := rc.Flush(); ferr != nil {
					return nil, ferr
				}
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			if cerr := x.r.Context().Err(); cerr != nil {
				return nil, cerr // the client left
			}
			if errors.Is(context.Cause(ctx), errIdleTimeout) {
				return errIdleTimeout, nil
			}
			return err, nil
		}
	}
}
