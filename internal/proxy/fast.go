package proxy

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// The HTTP/1.1 fast path serves plain (not TLS) HTTP listeners: its own accept loop and
// connection loop, a request parser writing straight into routing's request, upstream
// connections pooled per endpoint, and bodies streamed through reused buffers. A
// request costs no allocation. Everything else goes to net/http, by connection:
//
//	accept ─▶ fconn loop ─▶ head in buffer? ─▶ parse ─▶ plain HTTP/1.1 GET/POST/...?
//	               ▲                              │ no: h2c preface, Upgrade, Expect,
//	               │                              │     trailers, gRPC, odd framing,
//	               │                              │     oversized or malformed head
//	               │                              ▼
//	               │                       handoffListener ─▶ net/http server (as before)
//	               │                       (the bytes read so far are replayed)
//	               └── serve: route, pick, pooled upstream conn, stream, account
//
// The request path, metrics, outlier detection, retries, timeouts, pool limits and the
// access log are the engine's, shared with net/http's front end (exchange.go).
// Where the two differ, on purpose:
//   - Responses pass through as the upstream wrote them: no Date or sniffed
//     Content-Type is added, field names keep their case, the reason phrase is the
//     upstream's. Requests get no default User-Agent.
//   - A client hanging up while its response is awaited is noticed within watchMax
//     (fastup.go), not at once: net/http keeps a read pending on every connection
//     for that; here a goroutine watches only a response that is late.
//   - A request that may be retried with a body is served here when the body fits
//     the 8 KiB read buffer; larger ones (up to 64 KiB replayed) go to net/http.
//   - While a request waits for the listener's connection pool, a client that
//     leaves is noticed when the wait ends.
//   - Two Gosched calls (before reads that would find nothing yet) trade a pass
//     through the scheduler for a failed read and a trip through the poller.

const (
	// readHeaderTimeout bounds how long a started request head may take to arrive, as
	// the net/http server's ReadHeaderTimeout does.
	readHeaderTimeout = time.Minute
	// Idle read deadlines are re-armed only when they have moved by more than this, so a
	// busy connection does not reset a timer per request.
	deadlineSlack = time.Second
)

// handoffListener feeds the connections the fast path does not serve to the
// listener's net/http server.
type handoffListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newHandoffListener(addr net.Addr) *handoffListener {
	return &handoffListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (h *handoffListener) Accept() (net.Conn, error) {
	select {
	case c := <-h.ch:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoffListener) Close() error {
	h.once.Do(func() { close(h.done) })
	return nil
}

func (h *handoffListener) Addr() net.Addr { return h.addr }

// give hands a connection over; false once the server is closed.
func (h *handoffListener) give(c net.Conn) bool {
	select {
	case h.ch <- c:
		return true
	case <-h.done:
		return false
	}
}

// handedConn is a connection given to net/http, with the bytes the fast path had read.
// The fast path counted it as an active downstream connection; it stops counting when
// closed.
type handedConn struct {
	net.Conn
	pre    []byte
	active *atomic.Int64
	closed atomic.Bool
}

func (c *handedConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

func (c *handedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.active.Add(-1)
	}
	return c.Conn.Close()
}

// wbuf is a connection's write buffer.
type wbuf struct {
	w   io.Writer
	buf []byte
	err error
}

func (b *wbuf) write(p []byte) error {
	if len(b.buf)+len(p) <= cap(b.buf) {
		b.buf = append(b.buf, p...)
		return nil
	}
	if err := b.flush(); err != nil {
		return err
	}
	if len(p) >= cap(b.buf)/2 {
		if b.err == nil {
			_, b.err = b.w.Write(p)
		}
		return b.err
	}
	b.buf = append(b.buf, p...)
	return nil
}

func (b *wbuf) flush() error {
	if len(b.buf) > 0 && b.err == nil {
		_, b.err = b.w.Write(b.buf)
	}
	b.buf = b.buf[:0]
	return b.err
}

// Connection states, for shutdown: idle connections are closed at once, active ones
// after their response.
const (
	stActive int32 = iota
	stIdle
	stClosed
)

// next is what a connection does after a step.
type next uint8

const (
	nextServe next = iota // a request head is parsed
	nextClose
	nextHandoff
)

// fconn is one downstream connection on the fast path. Its buffers are pooled.
type fconn struct {
	l       *listenerRT
	c       net.Conn
	stats   *listenerStats
	state   atomic.Int32
	rb      rbuf
	wb      wbuf // to the client
	ow      wbuf // to the upstream of the current attempt
	head    []byte
	req     fastReq
	hs      []hdr // the request's fields
	res     fastRes
	rhs     []hdr     // the response's fields
	path    []byte    // a gateway route's rewritten path
	id      []byte    // a generated x-request-id
	rdl     time.Time // the read deadline set on c
	lastNow time.Time // the clock when the last request ended
	remote  string    // for access logs, once per connection
	x       fastExchange
	watch   clientWatch
}

var fconnPool = sync.Pool{New: func() any {
	return &fconn{
		rb:   rbuf{buf: make([]byte, downBufSize)},
		wb:   wbuf{buf: make([]byte, 0, downBufSize)},
		ow:   wbuf{buf: make([]byte, 0, downBufSize)},
		head: make([]byte, 0, 1024),
		hs:   make([]hdr, 0, 32),
		rhs:  make([]hdr, 0, 32),
	}
}}

func (l *listenerRT) newFconn(c net.Conn, st *listenerStats) *fconn {
	fc := fconnPool.Get().(*fconn)
	fc.l, fc.c, fc.stats = l, c, st
	fc.rb.conn, fc.rb.r, fc.rb.w = c, 0, 0
	fc.wb.w, fc.wb.err = c, nil
	fc.state.Store(stActive)
	return fc
}

func (fc *fconn) release() {
	fc.l, fc.c, fc.stats, fc.rb.conn, fc.wb.w, fc.ow.w = nil, nil, nil, nil, nil, nil
	fc.wb.buf, fc.ow.buf, fc.head = fc.wb.buf[:0], fc.ow.buf[:0], fc.head[:0]
	fc.req, fc.res, fc.x = fastReq{vals: fc.req.vals[:0]}, fastRes{}, fastExchange{}
	fc.rdl, fc.remote = time.Time{}, ""
	clear(fc.hs[:cap(fc.hs)])
	clear(fc.rhs[:cap(fc.rhs)])
	fconnPool.Put(fc)
}

// acceptFast is the accept loop of a plain HTTP listener.
func (l *listenerRT) acceptFast() {
	l.acceptLoop(func(c net.Conn) bool {
		st := l.cfg.Load().stats
		st.cxTotal.Add(1)
		st.cxActive.Add(1)
		fc := l.newFconn(c, st)
		if !l.trackFast(fc) {
			c.Close()
			st.cxActive.Add(-1)
			fc.release()
			return false
		}
		go l.serveFast(fc)
		return true
	})
}

// serveFast runs one connection until it closes or goes to net/http.
func (l *listenerRT) serveFast(fc *fconn) {
	for {
		n := fc.nextRequest()
		if n == nextServe {
			n = fc.serve()
		}
		if n == nextServe {
			continue
		}
		l.untrackFast(fc) // before release: shutdown must not see a recycled fconn
		if n == nextHandoff {
			l.handoff(fc)
			return
		}
		fc.wb.flush()
		fc.c.Close()
		fc.stats.cxActive.Add(-1)
		fc.release()
		return
	}
}

// handoff gives the connection, with what was read of it, to net/http.
func (l *listenerRT) handoff(fc *fconn) {
	fc.stats.handedOver.Add(1)
	hc := &handedConn{Conn: fc.c, pre: bytes.Clone(fc.rb.buf[fc.rb.r:fc.rb.w]), active: &fc.stats.cxActive}
	err := fc.wb.flush() // responses to earlier pipelined requests go first
	fc.release()
	hc.SetDeadline(time.Time{}) // net/http sets its own
	if err != nil || !l.fast.give(hc) {
		hc.Close()
	}
}

// nextRequest reads until a whole request head is buffered and parses it.
func (fc *fconn) nextRequest() next {
	from := 0
	for {
		if b := fc.rb.buf[fc.rb.r:fc.rb.w]; len(b) > 0 {
			if charClass[b[0]]&cToken == 0 {
				return nextHandoff // not a request line: TLS, garbage; net/http answers
			}
			if n := headEnd(b, from); n > 0 {
				if !parseRequest(b[:n], &fc.req, fc.hs) {
					return nextHandoff
				}
				fc.hs = fc.req.hdrs
				return nextServe
			}
			from = len(b) - 3
		}
		if err := fc.wb.flush(); err != nil {
			return nextClose
		}
		if fc.rb.buffered() == 0 {
			runtime.Gosched() // as before reading a response head (roundTrip)
		}
		if !fc.waitForBytes() {
			return nextClose
		}
		switch err := fc.rb.fill(); {
		case err == errHeadTooLarge:
			return nextHandoff // net/http answers 431 or serves it
		case err != nil:
			return nextClose
		}
		if !fc.state.CompareAndSwap(stIdle, stActive) && fc.state.Load() != stActive {
			return nextClose // shut down while it was idle
		}
	}
}

// waitForBytes sets the read deadline for the next read: the listener's idle timeout
// between requests, the header timeout within one. false when shutting down.
func (fc *fconn) waitForBytes() bool {
	now := fc.lastNow
	if now.IsZero() || fc.rb.buffered() > 0 {
		now = time.Now()
	}
	fc.lastNow = time.Time{}
	if fc.rb.buffered() > 0 {
		fc.setReadDeadline(now.Add(readHeaderTimeout))
		return true
	}
	fc.state.Store(stIdle)
	if fc.l.stopping.Load() {
		return false
	}
	d := now.Add(fc.l.idle)
	if fc.rdl.Before(d.Add(-deadlineSlack)) || fc.rdl.After(d) {
		fc.setReadDeadline(d)
	}
	return true
}

func (fc *fconn) setReadDeadline(t time.Time) {
	fc.rdl = t
	fc.c.SetReadDeadline(t)
}

// trackFast registers a connection for shutdown; false once shut down.
func (l *listenerRT) trackFast(fc *fconn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped || l.stopping.Load() {
		return false
	}
	if l.fconns == nil {
		l.fconns = map[*fconn]struct{}{}
	}
	l.fconns[fc] = struct{}{}
	l.fwg.Add(1)
	return true
}

func (l *listenerRT) untrackFast(fc *fconn) {
	l.mu.Lock()
	delete(l.fconns, fc)
	l.mu.Unlock()
	l.fwg.Done()
}

// stopFast stops the fast path's connections: idle ones now, the others after their
// response (they answer it with Connection: close).
func (l *listenerRT) stopFast() {
	l.stopping.Store(true)
	l.mu.Lock()
	defer l.mu.Unlock()
	for fc := range l.fconns {
		if fc.state.CompareAndSwap(stIdle, stClosed) {
			fc.c.Close()
		}
	}
}

// waitFast waits up to grace for the fast path's connections to end, then closes them.
func (l *listenerRT) waitFast(grace time.Duration) {
	done := make(chan struct{})
	go func() {
		l.fwg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(max(grace, 0)):
	}
	l.mu.Lock()
	for fc := range l.fconns {
		fc.c.Close()
	}
	l.mu.Unlock()
	<-done
}
