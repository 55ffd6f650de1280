package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// TCP listeners splice each connection to an endpoint of a weighted target of the
// listener's route (ingress: the local application). Connect failures are retried on
// another endpoint when the route's retry policy has connection-error.

func (l *listenerRT) serveTCP() {
	l.acceptLoop(func(c net.Conn) bool {
		if !l.track(c) {
			c.Close()
			return false
		}
		go func() {
			defer l.untrack(c)
			l.handleTCP(c)
		}()
		return true
	})
}

// acceptLoop accepts connections and hands each to serve until the listener closes or
// serve returns false. Temporary accept errors (out of file descriptors) back off, up to
// a second, instead of spinning.
func (l *listenerRT) acceptLoop(serve func(net.Conn) bool) {
	var delay time.Duration
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return
		}
		delay = 0
		if !serve(c) {
			return
		}
	}
}

// track registers a connection to be closed on shutdown; false once shut down.
func (l *listenerRT) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return false
	}
	l.conns[c] = struct{}{}
	l.wg.Add(1)
	return true
}

func (l *listenerRT) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	l.wg.Done()
}

// closeTCP waits up to grace for connections to end, then closes them.
func (l *listenerRT) closeTCP(grace time.Duration) {
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	done := make(chan struct{})
	go func() {
		l.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-time.After(grace):
	}
	l.mu.Lock()
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	<-done
}

func (l *listenerRT) handleTCP(c net.Conn) {
	defer c.Close()
	lc := l.cfg.Load()
	st := lc.stats
	st.cxTotal.Add(1)
	st.cxActive.Add(1)
	defer st.cxActive.Add(-1)
	rt := lc.local
	if rt == nil {
		rt = lc.tcp
	}
	if rt == nil {
		return
	}
	t := rt.targets.pick()
	if t == nil || t.up == nil {
		return
	}
	u := t.up
	lim := u.limiter.Load()
	if lim.acquire(context.Background(), &u.stats.rqPendingActive) != nil {
		u.stats.cxOverflow.Add(1)
		return
	}
	defer lim.release()
	backend, ep := l.dialTCP(rt, u)
	if backend == nil {
		return
	}
	defer backend.Close()
	splice(c, c, backend, rt.idle)
	u.observe(ep, 200)
}

// dialTCP connects to an endpoint, trying others on connect failure as the route's
// retry policy allows.
func (l *listenerRT) dialTCP(rt *route, u *upstream) (net.Conn, *endpoint) {
	var prev *endpoint
	for try := 0; ; try++ {
		ep := u.pick(prev)
		if ep == nil {
			u.stats.noneHealthy.Add(1)
			return nil, nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), orDefault(rt.retry.perTry, 5*time.Second))
		c, err := u.dial(ctx, "tcp", ep.addr)
		cancel()
		if err == nil {
			return c, ep
		}
		u.observe(ep, 503)
		if try >= rt.retry.max || rt.retry.on&(evConnectionError|evServerError|evGatewayError) == 0 {
			return nil, nil
		}
		u.stats.rqRetry.Add(1)
		prev = ep
	}
}

// splice copies both ways until both sides are done, half-closing each direction as it
// ends, and gives up on both after idle without traffic either way.
func splice(client net.Conn, clientReader io.Reader, backend io.ReadWriteCloser, idle time.Duration) {
	var timer *time.Timer
	if idle > 0 {
		timer = time.AfterFunc(idle, func() {
			client.Close()
			backend.Close()
		})
		defer timer.Stop()
	}
	var wg sync.WaitGroup
	wg.Add(2)
	pipe := func(dst io.Writer, src io.Reader, closeDst func()) {
		defer wg.Done()
		if err := copyIdle(dst, src, timer, idle); err != nil {
			client.Close() // a reset or a failed write ends both directions
			backend.Close()
			return
		}
		closeDst()
	}
	go pipe(backend, clientReader, func() { closeWrite(backend, client) })
	pipe(client, backend, func() { closeWrite(client, backend) })
	wg.Wait()
}

// closeWrite half-closes dst, or closes both connections when dst cannot half-close.
func closeWrite(dst io.Closer, other io.Closer) {
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		if cw.CloseWrite() == nil {
			return
		}
	}
	dst.Close()
	other.Close()
}

// copyIdle copies until src ends (nil at EOF), pushing the idle deadline at every read.
func copyIdle(dst io.Writer, src io.Reader, timer *time.Timer, idle time.Duration) error {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if timer != nil {
				timer.Reset(idle)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// bufPool holds the buffers bodies and tunnels are copied through.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 32<<10)
	return &b
}}
