package proxy

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"time"
)

// fastExchange is one request on the fast path: the engine's tally plus the state of
// its attempts. It lives in its connection's fconn and is reset per request.
type fastExchange struct {
	tally
	fc   *fconn
	req  request  // what routing looks at
	uc   *upConn  // the upstream connection of the current attempt
	lim  *limiter // the upstream pool slot of the current attempt
	llim *limiter // the listener's pool slot

	t0       time.Time     // when the request was taken up (wall clock)
	tTry     time.Time     // when the current attempt started (wall clock)
	tEnd     time.Time     // when the response ended (wall clock)
	svc      time.Duration // the attempt's service time, once measured
	waited   bool          // the attempt has waited for its upstream
	deadline time.Time     // the route's timeout, for the response head
	host     string        // the Host sent upstream
	rewrote  bool          // a gateway route rewrote the path
	buffered bool          // the whole request body is in the read buffer
	bodyRead bool          // the request body was read to its end (or there is none)
	watching bool          // the response head is awaited with the real deadline
	watchOn  bool          // a goroutine watches the client
	gone     bool          // the client hung up before its answer
	local    localInfo     // a local reply's fields, for the access log
	genID    bool          // fc.id holds the X-Request-Id generated for this request
	consumed bool          // the read buffer is past the request head
	captured bool
	logVals  []string
}

type localInfo struct {
	set        bool
	body       string
	overloaded bool
}

var (
	errClientGone = errors.New("client closed the connection")
	errBadBody    = errors.New("malformed chunked request body")
)

// serve serves the parsed request, or decides that net/http should.
func (fc *fconn) serve() next {
	p := fc.l.p
	x := &fc.x
	t0 := time.Now()
	*x = fastExchange{tally: tally{p: p, lc: fc.l.cfg.Load()}, fc: fc, t0: t0}
	x.start = x.at(t0)
	rt, ok := x.selectRoute()
	if !ok || !x.eligible(rt) {
		return nextHandoff
	}
	x.route = rt
	n := x.run()
	x.finish()
	return n
}

// selectRoute is exchange.selectRoute on the parsed head. false: net/http's business
// (passthrough to hosts outside the mesh, a rewrite of an escaped path).
func (x *fastExchange) selectRoute() (*route, bool) {
	lc, r := x.lc, &x.fc.req
	x.host = str(r.host)
	if lc.local != nil {
		return lc.local, true
	}
	if lc.hosts == nil {
		return nil, true
	}
	x.fillRequest(str(r.path))
	vh, rt := lc.hosts.selectRoute(&x.req)
	if vh == nil && lc.passthrough != nil {
		return nil, false
	}
	if rt == nil || rt.handoff == nil {
		return rt, true
	}
	path, ok := x.rewrite(rt)
	if !ok {
		return nil, false
	}
	x.fillRequest(path)
	return rt.handoff.selectRoute(&x.req), true
}

func (x *fastExchange) fillRequest(path string) {
	r := &x.fc.req
	host, port := splitHostPort(x.host)
	if port == 0 {
		port = x.lc.spec.Port
	}
	x.req = request{method: r.method, scheme: "http", host: host, port: port, path: path,
		query: str(r.query), header: r}
}

// rewrite is exchange.rewrite on the raw path, into the connection's path buffer.
func (x *fastExchange) rewrite(rt *route) (string, bool) {
	fc, rw := x.fc, rt.rewrite
	path := fc.req.path
	if bytes.IndexByte(path, '%') >= 0 {
		return "", false // the decoded path would differ: net/http rewrites it
	}
	switch {
	case rw != nil && rw.Path != "":
		fc.path = append(fc.path[:0], rw.Path...)
	case rt.prefix != "" && bytes.HasPrefix(path, []byte(rt.prefix)):
		repl := "/"
		if rw != nil && rw.Prefix != "" {
			repl = rw.Prefix
		} else if rw != nil && strings.EqualFold(rw.DefaultPrefix, "DISABLED") {
			repl = rt.prefix
		}
		rest := path[len(rt.prefix):]
		if strings.HasSuffix(repl, "/") && len(rest) > 0 && rest[0] == '/' {
			rest = rest[1:]
		}
		fc.path = append(append(fc.path[:0], repl...), rest...)
	default:
		fc.path = append(fc.path[:0], path...)
	}
	x.rewrote = !bytes.Equal(fc.path, path)
	if rw == nil || !strings.EqualFold(rw.Hostname, "DISABLED") {
		switch {
		case rw != nil && rw.TargetHostname != "":
			x.host = rw.TargetHostname
		case len(rt.handoff.domains) > 0 && !strings.Contains(rt.handoff.domains[0], "*"):
			x.host = rt.handoff.domains[0]
		}
	}
	return str(fc.path), true
}

// eligible reports whether the fast path can serve a route: every target an HTTP/1.1
// cluster, and a body that may have to be sent again small enough to keep.
func (x *fastExchange) eligible(rt *route) bool {
	x.bodyRead = !x.fc.req.hasBody()
	if rt == nil {
		return true
	}
	if rt.mirror != nil {
		return false // mirroring copies the request: net/http's front end does it
	}
	for _, t := range rt.targets.targets {
		if t.up != nil && (t.up.protocol != "http" || t.up.passthrough || t.up.tls != nil) {
			return false
		}
	}
	r, rb := &x.fc.req, &x.fc.rb
	fits := !r.chunked && r.length >= 0 && int64(rb.r+r.head)+r.length <= int64(len(rb.buf))
	if r.hasBody() && rt.retry.max > 0 && !fits {
		return false // net/http keeps up to 64 KiB for a retry
	}
	x.buffered = r.hasBody() && fits
	return true
}

// run answers the request: limits, pick, attempts, response.
func (x *fastExchange) run() next {
	fc := x.fc
	if lim := fc.l.limiter.Load(); lim.slots != nil {
		if err := lim.acquire(context.Background(), &x.lc.stats.pending); err != nil {
			x.lc.stats.overflow.Add(1)
			return x.localReply(http.StatusServiceUnavailable, "UO", resetBefore+"overflow", true)
		}
		x.llim = lim
	}
	if x.route == nil {
		return x.localReply(http.StatusNotFound, "NR", "", false)
	}
	x.tgt = x.route.targets.pick()
	if x.tgt == nil || x.tgt.up == nil {
		return x.localReply(http.StatusServiceUnavailable, "NC", "no healthy upstream", false)
	}
	x.up = x.tgt.up
	if x.buffered && !x.readBody() {
		return x.fail(errClientGone)
	}
	x.buildHead()
	if x.lc.logSink != nil {
		x.captureRequest()
	}
	fc.rb.r += fc.req.head // the head's views are dead from here
	x.consumed = true
	x.deadline = x.t0.Add(x.route.timeout)
	if err := x.attempts(); err != nil {
		return x.fail(err)
	}
	return x.respond()
}

// readBody reads a body that fits the buffer to its end, for requests that may be
// sent again.
func (x *fastExchange) readBody() bool {
	fc := x.fc
	need := fc.rb.r + fc.req.head + int(fc.req.length)
	if fc.rb.w < need {
		fc.setReadDeadline(time.Now().Add(x.route.timeout))
	}
	for fc.rb.w < need {
		n, err := fc.c.Read(fc.rb.buf[fc.rb.w:need])
		fc.rb.w += n
		if err != nil && fc.rb.w < need {
			return false
		}
	}
	return true
}

// attempts is exchange.attempts: endpoints are tried until one answers with something
// the retry policy accepts, or retries run out.
func (x *fastExchange) attempts() error {
	pol := &x.route.retry
	var prev *endpoint
	for try := 0; ; try++ {
		ep := x.up.pick(prev)
		if ep == nil {
			x.up.stats.noneHealthy.Add(1)
			return errNoHealthy
		}
		lim := x.up.limiter.Load()
		if err := x.acquire(lim); err != nil {
			return err // not the endpoint's fault: outlier detection is not told
		}
		x.ep, x.lim = ep, lim
		x.up.stats.rqActive.Add(1)
		x.tTry = x.t0
		if try > 0 {
			x.tTry = time.Now()
		}
		x.attemptStart, x.waited, x.svc = x.at(x.tTry), false, 0
		tryDeadline := x.deadline
		if pol.perTry > 0 {
			if d := x.tTry.Add(pol.perTry); d.Before(tryDeadline) {
				tryDeadline = d
			}
		}
		a, ok := x.try(ep, tryDeadline)
		switch {
		case x.gone:
			return errClientGone
		case !ok && a.flag == "UT" && !time.Now().Before(x.deadline):
			return errRouteTimeout
		case ok:
			res := &x.fc.res
			a = classifyStatus(res.status, res.grpcStatus, res.grpc && res.hasGrpc)
		}
		if !pol.retriable(a) || try >= pol.max || !x.replayable() {
			if ok {
				return nil
			}
			return &attemptError{a: a}
		}
		x.up.observe(ep, a.code)
		if ok {
			x.discardResponse()
		}
		x.releaseSlot()
		x.up.stats.rqRetry.Add(1)
		if a.flag == "UT" {
			x.up.stats.rqPerTryTimeout.Add(1)
		}
		x.retried = true
		if !x.backoff(try) {
			return errRouteTimeout
		}
		prev = ep
	}
}

// acquire takes an upstream pool slot, waiting (until the route's deadline) only when
// the pool is full.
func (x *fastExchange) acquire(lim *limiter) error {
	if lim.slots == nil {
		return nil
	}
	select {
	case lim.slots <- struct{}{}:
		return nil
	default:
	}
	ctx, cancel := context.WithDeadlineCause(context.Background(), x.deadline, errRouteTimeout)
	defer cancel()
	return lim.acquire(ctx, &x.up.stats.rqPendingActive)
}

// at converts a wall-clock reading to the proxy's clock (the same unless Options.Now
// replaced it), so that a request reads the clock three times, not ten.
func (x *fastExchange) at(t time.Time) time.Time {
	if x.p.realClock {
		return t
	}
	return x.p.now()
}

// replayable reports whether the request can be sent again: no body, or all of it in
// the read buffer.
func (x *fastExchange) replayable() bool { return !x.fc.req.hasBody() || x.buffered }

// bodySent reports whether the client's body is no longer being read from it.
func (x *fastExchange) bodySent() bool { return x.buffered || x.bodyRead }

// backoff sleeps as Envoy's retry back-off does; false when the route's deadline
// comes first.
func (x *fastExchange) backoff(n int) bool {
	ctx, cancel := context.WithDeadline(context.Background(), x.deadline)
	defer cancel()
	return backoff(ctx, n)
}

func (x *fastExchange) releaseSlot() {
	if x.lim != nil {
		x.lim.release()
		x.up.stats.rqActive.Add(-1)
		x.lim = nil
	}
}

// fail answers a request that got no usable response, as exchange.fail does.
func (x *fastExchange) fail(err error) next {
	var ae *attemptError
	switch {
	case errors.Is(err, errClientGone):
		x.code, x.outcome, x.flags = 499, 499, "DC"
		return nextClose
	case errors.Is(err, errRouteTimeout):
		x.up.stats.rqTimeout.Add(1)
		return x.localReply(http.StatusGatewayTimeout, "UT", "upstream request timeout", false)
	case errors.Is(err, errOverflow):
		x.up.stats.pendingOverflow.Add(1)
		return x.localReply(http.StatusServiceUnavailable, "UO", resetBefore+"overflow", true)
	case errors.Is(err, errNoHealthy):
		return x.localReply(http.StatusServiceUnavailable, "UH", "no healthy upstream", false)
	case errors.As(err, &ae):
		flag := ae.a.flag
		if x.retried {
			flag += ",URX"
		}
		return x.localReply(ae.a.code, flag, ae.a.reason, false)
	}
	return x.localReply(http.StatusServiceUnavailable, "UF", resetBefore+err.Error(), false)
}

// keepAlive reports whether the connection serves another request after this one.
func (x *fastExchange) keepAlive() bool {
	return !x.fc.req.close && !x.fc.l.stopping.Load() && x.skipBody()
}

// skipBody makes sure the request body is not taken for the next request: read
// already, or still whole in the buffer. false when the connection must close instead.
func (x *fastExchange) skipBody() bool {
	fc, r := x.fc, &x.fc.req
	if !x.consumed {
		fc.rb.r += r.head
		x.consumed = true
	}
	if x.bodyRead {
		return true
	}
	if r.chunked || int64(fc.rb.buffered()) < r.length {
		return false
	}
	fc.rb.r += int(r.length)
	x.bodyRead = true
	return true
}

// localReply answers without an upstream response, as Envoy would.
func (x *fastExchange) localReply(code int, flag, body string, overloaded bool) next {
	x.code, x.outcome, x.flags = code, code, flag
	x.local = localInfo{set: true, body: body, overloaded: overloaded}
	fc := x.fc
	if x.lc.logSink != nil && !x.captured {
		x.captureRequest()
	}
	keep := x.keepAlive()
	if len(fc.wb.buf) > cap(fc.wb.buf)/2 {
		fc.wb.flush()
	}
	b := append(fc.wb.buf, "HTTP/1.1 "...)
	b = appendInt(b, int64(code))
	b = append(b, ' ')
	b = append(b, http.StatusText(code)...)
	b = append(b, "\r\n"...)
	if body != "" {
		b = append(b, "Content-Type: text/plain\r\n"...)
	}
	b = append(b, "Content-Length: "...)
	b = appendInt(b, int64(len(body)))
	b = append(b, "\r\n"...)
	if overloaded {
		b = append(b, "X-Envoy-Overloaded: true\r\n"...)
	}
	if !keep {
		b = append(b, "Connection: close\r\n"...)
	}
	b = append(b, "\r\n"...)
	if fc.req.method != "HEAD" {
		b = append(b, body...)
		x.bytesOut += int64(len(body))
	}
	fc.wb.buf = b
	if x.lc.logSink != nil {
		x.captureResponse()
	}
	if !keep {
		return nextClose
	}
	return nextServe
}

// finish releases what the request holds and accounts it, as exchange.finish does.
func (x *fastExchange) finish() {
	x.closeConn()
	x.releaseSlot()
	if x.llim != nil {
		x.llim.release()
		x.llim = nil
	}
	if x.tEnd.IsZero() {
		x.tEnd = time.Now()
	}
	x.fc.lastNow = x.tEnd
	end := x.at(x.tEnd)
	x.account(end)
	if x.lc.logSink != nil {
		x.lc.logSink.send(x.logEntry(end))
	}
}
