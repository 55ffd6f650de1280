package proxy

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// tally is what one request did, as metrics and the access log count it. Both front
// ends (net/http's and the HTTP/1.1 fast path) fill one and account it the same way.
type tally struct {
	p     *Proxy
	lc    *listenerConfig
	start time.Time

	route *route
	tgt   *target
	up    *upstream
	ep    *endpoint // the endpoint of the last attempt

	code         int    // status sent downstream; 499 when the client left first
	outcome      int    // for metrics: code, or a gRPC status as its HTTP-like class
	flags        string // Envoy response flags
	attemptStart time.Time
	upstreamTime time.Duration
	bytesOut     int64
	retried      bool
}

// exchange is one downstream request on its way through the net/http front end: the
// routing decision, the upstream it went to, and what happened.
type exchange struct {
	tally
	l    *listenerRT
	w    http.ResponseWriter
	r    *http.Request
	req  request
	lim  *limiter // the pool slot held by the last attempt, if any
	body *replayBody
	// shadow is the copy of a request with a body that the route mirrors, sent once
	// the response is done (mirror.go).
	shadow *shadow

	wroteHead bool
}

// serveHTTP is the request path: route, pick, forward, account.
func (p *Proxy) serveHTTP(w http.ResponseWriter, r *http.Request, l *listenerRT, lc *listenerConfig) {
	x := &exchange{tally: tally{p: p, lc: lc, start: p.now()}, l: l, w: w, r: r}
	defer x.finish()
	if lim := l.limiter.Load(); lim.slots != nil {
		if err := lim.acquire(r.Context(), &lc.stats.pending); err != nil {
			x.w.Header().Set("X-Envoy-Overloaded", "true")
			x.localReply(http.StatusServiceUnavailable, "UO", resetBefore+"overflow")
			lc.stats.overflow.Add(1)
			return
		}
		defer lim.release()
	}
	if r.Header.Get("X-Request-Id") == "" {
		r.Header["X-Request-Id"] = []string{p.ids.next()}
	}
	x.route = x.selectRoute()
	if x.route == nil {
		x.localReply(http.StatusNotFound, "NR", "")
		return
	}
	x.tgt = x.route.targets.pick()
	if x.tgt == nil || x.tgt.up == nil {
		x.localReply(http.StatusServiceUnavailable, "NC", "no healthy upstream")
		return
	}
	x.up = x.tgt.up
	if isUpgrade(r) {
		x.tunnel()
		return
	}
	x.startMirror()
	x.forward()
}

// selectRoute finds the route: the local application for ingress, else by Host and
// route match; a gateway route hands the (rewritten) request to its virtual service.
func (x *exchange) selectRoute() *route {
	if x.lc.local != nil {
		return x.lc.local
	}
	if x.lc.hosts == nil {
		return nil
	}
	x.fillRequest()
	vh, rt := x.lc.hosts.selectRoute(&x.req)
	if vh == nil && x.lc.passthrough != nil {
		return x.lc.passthrough
	}
	if rt == nil || rt.handoff == nil {
		return rt
	}
	x.rewrite(rt)
	x.fillRequest()
	return rt.handoff.selectRoute(&x.req)
}

func (x *exchange) fillRequest() {
	r := x.r
	host, port := splitHostPort(r.Host)
	if port == 0 {
		port = x.lc.spec.Port
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	x.req = request{method: r.Method, scheme: scheme, host: host, port: port,
		path: r.URL.EscapedPath(), query: r.URL.RawQuery, header: stdHeader(r.Header)}
}

// rewrite applies a gateway route's rewrite as App Mesh does: the matched prefix becomes
// "/" unless defaultPrefix is DISABLED or a prefix value is given; a path value replaces
// the whole path; the Host becomes the virtual service's name unless hostname is
// DISABLED. The original path is kept in x-envoy-original-path.
func (x *exchange) rewrite(rt *route) {
	r, rw := x.r, rt.rewrite
	path := r.URL.Path
	switch {
	case rw != nil && rw.Path != "":
		path = rw.Path
	case rt.prefix != "" && strings.HasPrefix(path, rt.prefix):
		repl := "/"
		if rw != nil && rw.Prefix != "" {
			repl = rw.Prefix
		} else if rw != nil && strings.EqualFold(rw.DefaultPrefix, "DISABLED") {
			repl = rt.prefix
		}
		rest := path[len(rt.prefix):]
		if strings.HasSuffix(repl, "/") && strings.HasPrefix(rest, "/") {
			rest = rest[1:]
		}
		path = repl + rest
	}
	if path != r.URL.Path {
		r.Header["X-Envoy-Original-Path"] = []string{r.URL.RequestURI()}
		r.URL.Path, r.URL.RawPath = path, ""
	}
	if rw == nil || !strings.EqualFold(rw.Hostname, "DISABLED") {
		switch {
		case rw != nil && rw.TargetHostname != "":
			r.Host = rw.TargetHostname
		case len(rt.handoff.domains) > 0 && !strings.Contains(rt.handoff.domains[0], "*"):
			r.Host = rt.handoff.domains[0]
		}
	}
}

// localReply answers without an upstream response, as Envoy would: a gRPC request gets
// a trailers-only response carrying the matching grpc-status.
func (x *exchange) localReply(code int, flag, body string) {
	x.code, x.outcome, x.flags = code, code, flag
	if x.wroteHead {
		return
	}
	x.wroteHead = true
	h := x.w.Header()
	if isGRPC(x.r.Header) {
		h.Set("Content-Type", "application/grpc")
		h.Set("Grpc-Status", strconv.Itoa(grpcStatusFor(code)))
		if body != "" {
			h.Set("Grpc-Message", body)
		}
		x.w.WriteHeader(http.StatusOK)
		x.code = http.StatusOK
		return
	}
	if body != "" {
		h.Set("Content-Type", "text/plain")
		h.Set("Content-Length", strconv.Itoa(len(body)))
	}
	x.w.WriteHeader(code)
	if body != "" {
		n, _ := x.w.Write([]byte(body))
		x.bytesOut += int64(n)
	}
}

// finish accounts for the exchange and hands its access log line to the writer.
func (x *exchange) finish() {
	x.sendMirror()
	x.releaseSlot()
	if x.body != nil {
		x.body.release()
	}
	end := x.p.now()
	x.account(end)
	if x.lc.logSink != nil {
		x.lc.logSink.send(x.logEntry(end))
	}
}

// account counts a finished request: cluster, route and listener series, the virtual
// node's window and outlier detection. It does not allocate.
func (t *tally) account(end time.Time) {
	outcome := t.outcome
	if outcome == 0 {
		outcome = t.code
	}
	if t.up != nil && outcome != 499 {
		st := t.up.stats
		st.rq.add(outcome)
		st.rqTotal.Add(1)
		latency := end.Sub(t.start)
		if t.upstreamTime > 0 {
			st.rqTime.observe(t.upstreamTime)
			latency = t.upstreamTime
		}
		t.up.window.record(end, outcome, latency)
		if t.retried && outcome < 500 {
			st.rqRetrySuccess.Add(1)
		}
		t.up.observe(t.ep, outcome)
	}
	if t.tgt != nil && t.tgt.stats != nil {
		t.tgt.stats.codes.add(outcome)
		t.tgt.stats.duration.observe(end.Sub(t.start))
	}
	t.lc.stats.response(t.code)
	if outcome == 499 {
		t.lc.stats.clientClosed.Add(1)
	}
}

func (x *exchange) releaseSlot() {
	if x.lim != nil {
		x.lim.release()
		x.up.stats.rqActive.Add(-1)
		x.lim = nil
	}
}

func isUpgrade(r *http.Request) bool {
	return r.ProtoMajor == 1 && r.Header.Get("Upgrade") != "" && headerHasToken(r.Header["Connection"], "upgrade")
}

// headerHasToken reports whether a comma-separated header has token (case-insensitive).
func headerHasToken(values []string, token string) bool {
	for _, v := range values {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// hopHeaders are removed before forwarding (RFC 9110 section 7.6.1); Te survives when it
// is "trailers", which gRPC needs.
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for v != "" {
			var t string
			t, v, _ = strings.Cut(v, ",")
			if t = strings.TrimSpace(t); t != "" && !strings.EqualFold(t, "keep-alive") && !strings.EqualFold(t, "close") {
				h.Del(t)
			}
		}
	}
	te := h["Te"]
	for _, k := range hopHeaders {
		delete(h, k)
	}
	if headerHasToken(te, "trailers") {
		h["Te"] = teTrailers
	}
}

var (
	teTrailers = []string{"trailers"}
	protoHTTP  = []string{"http"}
	protoHTTPS = []string{"https"}
)
