package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The fast path's side of upstreams: HTTP/1.1 connections pooled per endpoint, one
// request at a time on each, and the client watched while a response is slow to come.

const (
	maxIdlePerEndpoint = 1024 // as the net/http transport's MaxIdleConnsPerHost here
	// probeAfter: a connection idle for longer is checked before use, as the upstream
	// may have closed it meanwhile (the net/http transport learns it from a goroutine
	// reading each idle connection; a peek costs one system call, and only then).
	probeAfter = 100 * time.Millisecond
	// While a response head is awaited, the connection's read deadline is left alone
	// when it falls between watchMin and watchMax from now (so a busy connection does
	// not reset a timer per request); when it passes first, the client is watched.
	watchMin = time.Millisecond
	watchMax = 100 * time.Millisecond
)

var aLongTimeAgo = time.Unix(1, 0)

// upConn is one HTTP/1.1 connection to an endpoint.
type upConn struct {
	c         net.Conn
	rb        rbuf
	rdl       time.Time // the read deadline set on c
	idleSince time.Time
	used      bool // it has carried a request: the upstream may have closed it while idle
}

func (uc *upConn) setReadDeadline(t time.Time) {
	uc.rdl = t
	uc.c.SetReadDeadline(t)
}

// connPool is an endpoint's idle connections, most recently used last.
type connPool struct {
	mu     sync.Mutex
	idle   []*upConn
	closed bool
	timer  *time.Timer // closes connections idle longer than maxAge
	armed  bool
	maxAge time.Duration
}

// get returns the most recently used idle connection, unless it has been idle maxAge
// or longer (then so have the others, and all are closed).
func (p *connPool) get(now time.Time, maxAge time.Duration) *upConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.idle)
	if n == 0 {
		return nil
	}
	uc := p.idle[n-1]
	if now.Sub(uc.idleSince) >= maxAge {
		for _, c := range p.idle {
			c.c.Close()
		}
		clear(p.idle)
		p.idle = p.idle[:0]
		return nil
	}
	p.idle[n-1] = nil
	p.idle = p.idle[:n-1]
	return uc
}

func (p *connPool) put(uc *upConn, now time.Time, maxAge time.Duration) {
	uc.idleSince, uc.used = now, true
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || len(p.idle) >= maxIdlePerEndpoint {
		uc.c.Close()
		return
	}
	p.idle = append(p.idle, uc)
	if !p.armed {
		p.armed, p.maxAge = true, maxAge
		if p.timer == nil {
			p.timer = time.AfterFunc(maxAge, p.sweep)
		} else {
			p.timer.Reset(maxAge)
		}
	}
}

// sweep closes the connections idle for maxAge, as the transport's IdleConnTimeout.
func (p *connPool) sweep() {
	now := time.Now()
	p.mu.Lock()
	defer p.mu.Unlock()
	i := 0
	for i < len(p.idle) && now.Sub(p.idle[i].idleSince) >= p.maxAge {
		p.idle[i].c.Close()
		i++
	}
	n := copy(p.idle, p.idle[i:])
	clear(p.idle[n:])
	p.idle = p.idle[:n]
	if n == 0 || p.closed {
		p.armed = false
		return
	}
	p.timer.Reset(p.maxAge - now.Sub(p.idle[0].idleSince))
}

// close closes the idle connections; those in use close when returned.
func (p *connPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, c := range p.idle {
		c.c.Close()
	}
	clear(p.idle)
	p.idle = p.idle[:0]
	if p.timer != nil {
		p.timer.Stop()
	}
}

// conn returns a pooled connection to ep or dials one (fresh: always dial).
func (x *fastExchange) conn(ep *endpoint, deadline time.Time, fresh bool) (*upConn, error) {
	now := x.tTry
	for !fresh {
		uc := ep.pool.get(now, x.up.idle)
		if uc == nil {
			break
		}
		if now.Sub(uc.idleSince) < probeAfter || alive(uc.c) {
			return uc, nil
		}
		uc.c.Close()
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	c, err := x.up.dial(ctx, "tcp", ep.addr)
	if err != nil {
		return nil, err
	}
	return &upConn{c: c, rb: rbuf{conn: c, buf: make([]byte, upBufSize)}}, nil
}

func (x *fastExchange) closeConn() {
	if x.uc != nil {
		x.uc.c.Close()
		x.uc = nil
	}
}

func (x *fastExchange) putConn() {
	x.ep.pool.put(x.uc, x.tEnd, x.up.idle)
	x.uc = nil
}

// try sends the request to ep and reads the response head into fc.res. A pooled
// connection found closed before any answer is replaced by a new one once, when the
// request can be sent again (as the net/http transport does).
func (x *fastExchange) try(ep *endpoint, deadline time.Time) (attempt, bool) {
	for fresh := false; ; fresh = true {
		uc, err := x.conn(ep, deadline, fresh)
		if err != nil {
			if !time.Now().Before(deadline) {
				return timeoutAttempt, false
			}
			var de *dialError
			if errors.As(err, &de) {
				err = de.err
			}
			return attempt{code: 503, events: evServerError | evGatewayError | evConnectionError, flag: "UF",
				reason: resetBefore + "connection failure, transport failure reason: " + err.Error()}, false
		}
		x.uc = uc
		got, err := x.roundTrip(uc, deadline)
		if err == nil {
			return attempt{}, true
		}
		x.closeConn()
		if x.gone {
			return attempt{}, false
		}
		if errors.Is(err, errBadBody) {
			return badBodyAttempt, false
		}
		if uc.used && !got && !fresh && x.replayable() && idempotent(x.fc.req.method) {
			continue
		}
		return failure(err), false
	}
}

// badBodyAttempt is a request whose chunked body turned out malformed: the client's
// fault (Envoy's downstream protocol error), answered 400 and never retried.
var badBodyAttempt = attempt{code: 400, flag: "DPE", reason: "malformed request body"}

var timeoutAttempt = attempt{code: 504, events: evServerError | evGatewayError, flag: "UT", reason: "upstream request timeout"}

// failure classifies an attempt that got no response head, as classify does.
func failure(err error) attempt {
	const all5xx = evServerError | evGatewayError
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return timeoutAttempt
	case errors.Is(err, errMalformed), errors.Is(err, errHeadTooLarge):
		return attempt{code: 502, events: all5xx, flag: "UPE", reason: resetBefore + "protocol error"}
	case isReset(err):
		return attempt{code: 503, events: all5xx | evConnectionError, flag: "UC", reason: resetBefore + "connection termination"}
	}
	return attempt{code: 502, events: all5xx, flag: "UPE", reason: resetBefore + "protocol error"}
}

// roundTrip writes the request (head, then the body) and reads the response head.
// got reports whether any of the response arrived.
func (x *fastExchange) roundTrip(uc *upConn, deadline time.Time) (got bool, err error) {
	fc := x.fc
	fc.ow.w, fc.ow.err = uc.c, nil
	fc.ow.buf = append(fc.ow.buf[:0], fc.head...)
	r := &fc.req
	switch {
	case x.buffered:
		err = fc.ow.write(fc.rb.buf[fc.rb.r : fc.rb.r+int(r.length)])
		if err == nil {
			err = fc.ow.flush()
		}
	case r.hasBody():
		err = x.sendBody(uc, deadline)
		switch {
		case errors.Is(err, errClientGone):
			x.gone = true
			return false, err
		case errors.Is(err, errBadBody), errors.Is(err, os.ErrDeadlineExceeded):
			return false, err // not the upstream's doing: no response is awaited
		}
	default:
		err = fc.ow.flush()
	}
	// The answer cannot be there yet: let the other connections run first, so that the
	// read below usually finds it instead of costing a read that fails, a trip through
	// the poller and a second read. Idle, this is one pass through the scheduler.
	runtime.Gosched()
	// Even when the upstream stopped taking the body, it may have answered (a 413).
	got, rerr := x.readHead(uc, deadline)
	x.stopWatch()
	switch {
	case x.gone:
		return got, errClientGone
	case rerr == nil && fc.res.status == 101:
		return true, errMalformed // switching protocols without being asked to
	case rerr != nil && err != nil && !got:
		return false, err
	}
	return got, rerr
}

// readHead reads the response head into fc.res, skipping 1xx informational responses.
func (x *fastExchange) readHead(uc *upConn, deadline time.Time) (bool, error) {
	fc := x.fc
	got := uc.rb.buffered() > 0
	from := 0
	for {
		if b := uc.rb.buf[uc.rb.r:uc.rb.w]; len(b) > 0 {
			if n := headEnd(b, from); n > 0 {
				if !parseResponse(b[:n], &fc.res, fc.rhs) {
					return true, errMalformed
				}
				fc.rhs = fc.res.hdrs
				if fc.res.status < 200 && fc.res.status != 101 {
					uc.rb.r += n
					from = 0
					continue
				}
				return true, nil
			}
			from = len(b) - 3
			if len(b) == len(uc.rb.buf) && !uc.rb.grow(maxUpstreamHead) {
				return true, errHeadTooLarge
			}
		}
		if err := x.waitUpstream(uc, deadline); err != nil {
			if got && err == io.EOF {
				err = errMalformed // a head cut short, as the transport sees it
			}
			return got, err
		}
		got = true
	}
}

// waitUpstream reads once from the upstream before deadline. Short of it, the read
// deadline is left where it is when that is close enough; when it passes, the client
// is watched from then on and the real deadline set.
func (x *fastExchange) waitUpstream(uc *upConn, deadline time.Time) error {
	for {
		now := x.tTry // the attempt's first wait: the clock was just read
		if x.waited {
			now = time.Now()
		}
		x.waited = true
		if !now.Before(deadline) {
			return os.ErrDeadlineExceeded
		}
		if x.watching {
			if !uc.rdl.Equal(deadline) {
				uc.setReadDeadline(deadline)
			}
			if x.fc.watch.gone.Load() { // after setting: the watcher's deadline wins
				return errClientGone
			}
		} else if uc.rdl.Before(now.Add(watchMin)) || uc.rdl.After(deadline) || uc.rdl.After(now.Add(watchMax)) {
			uc.setReadDeadline(minTime(deadline, now.Add(watchMax)))
		}
		err := uc.rb.fill()
		if err == nil {
			return nil
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if x.fc.watch.gone.Load() && x.watchOn {
			return errClientGone
		}
		if !x.watching {
			x.startWatch(uc)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// clientWatch notices a client hanging up while its response is awaited, as net/http's
// background read does: a read on the client's connection that ends with EOF or an
// error (bytes are kept: a pipelined request).
type clientWatch struct {
	done chan struct{}
	gone atomic.Bool
	n    int
}

// startWatch starts watching the client, when the read buffer has room for what it
// might send next.
func (x *fastExchange) startWatch(uc *upConn) {
	x.watching = true
	fc := x.fc
	if !x.bodySent() || fc.rb.w == len(fc.rb.buf) {
		return // still reading the client's body, or no room for what it sends next
	}
	w := &fc.watch
	w.done = make(chan struct{})
	w.gone.Store(false)
	w.n = 0
	x.watchOn = true
	c, buf := fc.c, fc.rb.buf[fc.rb.w:]
	go func() {
		n, err := c.Read(buf)
		w.n = n
		if n == 0 && err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			w.gone.Store(true)
			uc.c.SetReadDeadline(aLongTimeAgo) // wake the exchange
		}
		close(w.done)
	}()
}

func (x *fastExchange) stopWatch() {
	if !x.watchOn {
		return
	}
	x.watchOn = false
	fc := x.fc
	fc.c.SetReadDeadline(aLongTimeAgo)
	<-fc.watch.done
	fc.rb.w += fc.watch.n
	fc.c.SetReadDeadline(fc.rdl)
	if fc.watch.gone.Load() {
		x.gone = true
	}
}

// discardResponse reads a response that is retried past, keeping the connection when
// its body is small, as exchange.attempts drains up to 64 KiB.
func (x *fastExchange) discardResponse() {
	uc, res := x.uc, &x.fc.res
	uc.rb.r += res.head
	sink := wbuf{w: io.Discard, buf: make([]byte, 0, 64)}
	p := pipe{src: &uc.rb, dst: &sink, idle: x.route.idle, rdl: &uc.rdl, limit: maxReplay}
	ok := true
	switch x.bodyMode() {
	case modeLength:
		ok = p.length(res.length)
	case modeChunked:
		ok = p.chunked()
	case modeClose:
		ok = false
	}
	if ok && !res.close && uc.rb.buffered() == 0 {
		x.putConn()
		return
	}
	x.closeConn()
}
