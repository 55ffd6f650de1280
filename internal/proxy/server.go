package proxy

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// maxHeaderBytes bounds a request's header block; larger ones get 431 (Envoy's limit is
// 60 KiB by default too).
const maxHeaderBytes = 60 << 10

// listenerRT is one bound socket and what serves it. Its configuration is swapped
// through cfg; the socket and its connections stay as long as the listener's name,
// address, protocol family and TLS setting do.
type listenerRT struct {
	p     *Proxy
	name  string
	bind  string
	isTCP bool
	isTLS bool
	// tlsMode is the listener's mesh TLS mode (snapshot.TLSStrict or TLSPermissive), ""
	// for none or Options.TLS's.
	tlsMode string
	tls     atomic.Pointer[tls.Config] // the current TLS settings, swapped with snapshots
	ln      net.Listener
	srv     *http.Server // HTTP listeners
	cfg     atomic.Pointer[listenerConfig]
	// limiter bounds the requests of a gateway or egress listener (its ConnectionPool);
	// an ingress listener's pool bounds its local cluster instead.
	limiter atomic.Pointer[limiter]

	// TCP listeners track their connections to close them on shutdown.
	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	stopped bool
	wg      sync.WaitGroup
	once    sync.Once

	// The HTTP/1.1 fast path (fast.go), on plain HTTP listeners: net/http serves the
	// connections it hands over through fast.
	fast     *handoffListener
	idle     time.Duration // between requests on a connection
	stopping atomic.Bool
	fconns   map[*fconn]struct{} // guarded by mu
	fwg      sync.WaitGroup
}

func (l *listenerRT) compatible(spec snapshot.Listener, addr string, tlsConf *tls.Config, mode string) bool {
	return l.bind == addr && l.isTCP == (spec.Protocol == "tcp") && l.isTLS == (tlsConf != nil) && l.tlsMode == mode
}

// setLimiter applies the listener's connection pool, keeping the current limiter (and
// the slots requests in flight hold) when the limits are unchanged.
func (l *listenerRT) setLimiter(spec snapshot.Listener) {
	pool := spec.ConnectionPool
	if spec.Kind == snapshot.Ingress {
		pool = nil
	}
	if cur := l.limiter.Load(); cur == nil || !cur.sameAs(pool) {
		l.limiter.Store(newLimiter(spec.Protocol, pool))
	}
}

// setTLS makes conf the TLS settings of new connections (existing ones keep theirs).
func (l *listenerRT) setTLS(conf *tls.Config) {
	if conf == nil {
		return
	}
	c := conf.Clone()
	if len(c.NextProtos) == 0 && !l.isTCP {
		c.NextProtos = []string{"h2", "http/1.1"}
	}
	l.tls.Store(c)
}

// listen binds a listener's socket without serving yet.
// A listener with mesh TLS (mode set) terminates it in its net.Listener, for HTTP and
// TCP alike, and never takes the fast path.
func (p *Proxy) listen(spec snapshot.Listener, addr string, tlsConf *tls.Config, mode string) (*listenerRT, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	l := &listenerRT{p: p, name: spec.Name, bind: addr, isTCP: spec.Protocol == "tcp", isTLS: tlsConf != nil, ln: ln,
		tlsMode: mode, conns: map[net.Conn]struct{}{}}
	l.setTLS(tlsConf)
	if mode != "" {
		l.ln = newMeshTLSListener(ln, mode, l.tls.Load)
	}
	if !l.isTCP {
		l.srv = p.newServer(l, spec, tlsConf)
		l.idle = l.srv.IdleTimeout
		if !l.isTLS && !p.noFast {
			l.fast = newHandoffListener(ln.Addr())
		}
	}
	return l, nil
}

func (p *Proxy) newServer(l *listenerRT, spec snapshot.Listener, tlsConf *tls.Config) *http.Server {
	idle := 5 * time.Minute
	if spec.Timeout != nil && spec.Timeout.Idle > 0 {
		idle = spec.Timeout.Idle
	}
	var ps http.Protocols
	ps.SetHTTP1(true)
	ps.SetUnencryptedHTTP2(true) // h2c with prior knowledge, as gRPC clients speak it
	srv := &http.Server{
		Handler:           l,
		MaxHeaderBytes:    maxHeaderBytes,
		ReadHeaderTimeout: time.Minute,
		IdleTimeout:       idle,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
		Protocols:         &ps,
		ConnState:         l.connState,
	}
	if tlsConf != nil {
		ps.SetHTTP2(true)
		srv.TLSConfig = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return l.tls.Load(), nil
		}}
	}
	return srv
}

func (l *listenerRT) connState(c net.Conn, s http.ConnState) {
	if _, ok := c.(*handedConn); ok {
		return // counted by the fast path, which accepted it
	}
	st := l.cfg.Load().stats
	switch s {
	case http.StateNew:
		st.cxTotal.Add(1)
		st.cxActive.Add(1)
	case http.StateClosed, http.StateHijacked:
		st.cxActive.Add(-1)
	}
}

// ServeHTTP serves one request on the configuration current when it arrived.
func (l *listenerRT) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.p.serveHTTP(w, r, l, l.cfg.Load())
}

func (l *listenerRT) serve() {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		switch {
		case l.isTCP:
			l.serveTCP()
		case l.tlsMode != "":
			l.srv.Serve(l.ln) // l.ln terminates the TLS
		case l.isTLS:
			l.srv.ServeTLS(l.ln, "", "")
		case l.fast != nil:
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				l.srv.Serve(l.fast)
			}()
			l.acceptFast()
		default:
			l.srv.Serve(l.ln)
		}
	}()
}

// shutdown stops accepting at once and lets requests in flight finish in the background.
func (l *listenerRT) shutdown() {
	go l.close(30 * time.Second)
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// close stops accepting, waits up to grace for requests in flight, then closes what is
// left.
func (l *listenerRT) close(grace time.Duration) {
	l.once.Do(func() {
		if l.srv == nil {
			l.ln.Close()
			l.closeTCP(grace)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if l.fast != nil {
			l.ln.Close()
			l.stopFast()
		}
		if err := l.srv.Shutdown(ctx); err != nil {
			l.srv.Close()
		}
		l.ln.Close() // Shutdown closes it too, unless serving never started
		if l.fast != nil {
			l.waitFast(time.Until(deadline(ctx)))
		}
		l.closeTCP(time.Until(deadline(ctx))) // upgraded connections, which Shutdown does not track
	})
}
