package demoapp

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// DefaultShutdownTimeout bounds the wait for requests in flight when Run stops; it is
// below the supervisor's grace period, so a stopped instance exits before it is killed.
const DefaultShutdownTimeout = 3 * time.Second

// Run serves the app on addr until ctx ends, then shuts down gracefully: /readyz turns
// 503 at once, new connections are refused, and requests in flight get
// DefaultShutdownTimeout to finish.
func Run(ctx context.Context, addr string, opts Options) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return Serve(ctx, ln, opts)
}

// Serve is Run on a listener the caller opened; it closes ln.
func Serve(ctx context.Context, ln net.Listener, opts Options) error {
	a := newApp(opts)
	srv := &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	a.opts.Log.Info("demo app listening", "addr", ln.Addr().String(), "version", a.opts.Version)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.ready.Store(false)
	a.opts.Log.Info("demo app shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
