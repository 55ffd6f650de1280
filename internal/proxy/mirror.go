package proxy

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Traffic mirroring (a Canarymesh extension of App Mesh routes): a route with a mirror
// copies a share of its requests to another cluster and discards the answers. The copy
// never delays or fails the request it copies:
//
//	request ─▶ pick target ─▶ take()? ─▶ shadow head cloned (Host gets "-shadow", as Envoy)
//	                                  └▶ body teed into a buffer while the primary reads it
//	response sent ─▶ body complete and ≤ maxMirrorBody? ─▶ free slot? ─▶ goroutine sends it
//	                                                       └ no: counted as dropped
//
// At most maxMirrorInFlight copies are in flight per proxy; one more is dropped, not
// queued. A copy is counted on its cluster like any request (codes, latency, the node's
// window, outlier detection), so a canary reached only through a mirror is judged by
// its built-in metrics on the mirrored traffic. Routes with a mirror are served by the
// net/http front end; the fast path takes routes without one only (see eligible).

const (
	// maxMirrorInFlight bounds the copies being sent at once by one proxy.
	maxMirrorInFlight = 256
	// maxMirrorBody is the largest request body copied; a request with a larger body is
	// not mirrored (counted as dropped).
	maxMirrorBody = 64 << 10
)

// mirrorTarget is a compiled snapshot.Mirror.
type mirrorTarget struct {
	t       *target // the cluster; its upstream is linked when the snapshot is applied
	percent uint64
	n       atomic.Uint64
}

// take reports whether the next request is copied: exactly percent of every 100
// requests, spread evenly (the k-th request is taken when k·percent/100 steps up), so
// the share is deterministic rather than sampled.
func (m *mirrorTarget) take() bool {
	if m.percent >= 100 {
		return true
	}
	n := m.n.Add(1)
	return n*m.percent/100 != (n-1)*m.percent/100
}

// shadow is one request being copied.
type shadow struct {
	p       *Proxy
	up      *upstream
	req     *http.Request // method, URL, headers; no body, no context yet
	timeout time.Duration
	tee     *teeBody // nil without a body
}

// startMirror copies x's request when its route mirrors it: a request without a body
// is sent at once, one with a body once the primary has read it (sendMirror).
func (x *exchange) startMirror() {
	m := x.route.mirror
	if m == nil || m.t.up == nil || !m.take() {
		return
	}
	up := m.t.up
	r := x.r
	if r.ContentLength > maxMirrorBody {
		up.stats.mirrorDropped.Add(1)
		return
	}
	h := r.Header.Clone()
	removeHopHeaders(h)
	u := new(url.URL)
	*u = *r.URL
	host := r.Host + "-shadow" // as Envoy names a shadow's authority
	if name, port := splitHostPort(r.Host); port != 0 {
		host = name + "-shadow:" + itoa(port)
	}
	sr := &http.Request{Method: r.Method, URL: u, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Host: host, ContentLength: r.ContentLength}
	s := &shadow{p: x.p, up: up, req: sr, timeout: x.route.timeout}
	if !hasBody(r) {
		s.dispatch(nil)
		return
	}
	s.tee = &teeBody{src: r.Body, want: r.ContentLength}
	r.Body = s.tee
	x.shadow = s // sent by finish, once the primary has read the body
}

// sendMirror sends the prepared copy, once the request's body (if any) was read whole by
// the primary. It returns at once: the copy goes out on its own goroutine.
func (x *exchange) sendMirror() {
	s := x.shadow
	if s == nil {
		return
	}
	x.shadow = nil
	var body []byte
	if s.tee != nil {
		if !s.tee.complete() {
			s.up.stats.mirrorDropped.Add(1) // too large, or never read to its end
			return
		}
		body = s.tee.bytes()
	}
	s.dispatch(body)
}

// dispatch takes an in-flight slot and sends the copy on a goroutine, or drops it.
func (s *shadow) dispatch(body []byte) {
	select {
	case s.p.mirrorSlots <- struct{}{}:
	default:
		s.up.stats.mirrorDropped.Add(1)
		return
	}
	go func() {
		defer func() { <-s.p.mirrorSlots }()
		s.send(body)
	}()
}

// send sends the copy to one endpoint of the mirror cluster, discards the answer and
// accounts it on the cluster.
func (s *shadow) send(body []byte) {
	up := s.up
	start := s.p.now()
	ep := up.pick(nil)
	if ep == nil {
		// Nowhere to send it (the canary's instances are not known yet, or none is
		// healthy): dropped, not held against the cluster as a failed request.
		up.stats.noneHealthy.Add(1)
		up.stats.mirrorDropped.Add(1)
		return
	}
	lim := up.limiter.Load()
	if lim.slots != nil {
		select {
		case lim.slots <- struct{}{}:
			defer lim.release()
		default: // the pool is full: a copy never waits for a slot
			up.stats.pendingOverflow.Add(1)
			up.stats.mirrorDropped.Add(1)
			return
		}
	}
	up.stats.rqActive.Add(1)
	defer up.stats.rqActive.Add(-1)
	ctx, cancel := context.WithTimeout(up.ctx, s.timeout)
	defer cancel()
	req := s.req.WithContext(ctx)
	u := new(url.URL)
	*u = *s.req.URL
	u.Scheme, u.Host = "http", ep.addr
	req.URL = u
	req.Body = http.NoBody
	if len(body) > 0 {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	up.stats.mirrorSent.Add(1)
	res, err := up.transport.RoundTrip(req)
	a := classify(res, err, ctx)
	if err == nil {
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
	s.account(ep, start, a.code)
}

// account counts a finished copy on its cluster, as tally.account counts a request.
func (s *shadow) account(ep *endpoint, start time.Time, code int) {
	end := s.p.now()
	st := s.up.stats
	st.rq.add(code)
	st.rqTotal.Add(1)
	st.rqTime.observe(end.Sub(start))
	s.up.window.record(end, code, end.Sub(start))
	s.up.observe(ep, code)
}

// teeBody keeps a copy of a request body, up to maxMirrorBody, as the primary reads it.
type teeBody struct {
	mu   sync.Mutex // the transport may still be writing the body when finish reads it
	src  io.ReadCloser
	buf  bytes.Buffer
	want int64 // the declared length, -1 when unknown
	over bool
	eof  bool
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.src.Read(p)
	t.mu.Lock()
	defer t.mu.Unlock()
	if n > 0 && !t.over {
		if t.buf.Len()+n > maxMirrorBody {
			t.over = true
			t.buf = bytes.Buffer{}
		} else {
			t.buf.Write(p[:n])
		}
	}
	if err == io.EOF {
		t.eof = true
	}
	return n, err
}

func (t *teeBody) Close() error { return t.src.Close() }

// complete reports whether the whole body was read and kept.
func (t *teeBody) complete() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.over {
		return false
	}
	return t.eof || (t.want > 0 && int64(t.buf.Len()) == t.want)
}

// bytes is the kept copy; call it once complete.
func (t *teeBody) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return bytes.Clone(t.buf.Bytes())
}

func itoa(n int) string {
	return string(appendInt(nil, int64(n)))
}
