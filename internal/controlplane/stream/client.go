package stream

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// Backoff paces reconnection: the n-th consecutive failure waits Min·2ⁿ, at most Max,
// spread by ±Jitter (a fraction) so that many proxies do not reconnect in step.
type Backoff struct {
	Min    time.Duration
	Max    time.Duration
	Jitter float64
}

// Backoff defaults.
const (
	DefaultBackoffMin    = 100 * time.Millisecond
	DefaultBackoffMax    = 10 * time.Second
	DefaultBackoffJitter = 0.2
)

// stableAfter is how long a stream must have stayed up for the next reconnection to
// start again from Backoff.Min; a control plane that accepts and then fails at once is
// retried ever more slowly.
const stableAfter = 5 * time.Second

func (b Backoff) withDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = DefaultBackoffMin
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	if b.Max < b.Min {
		b.Max = b.Min
	}
	if b.Jitter <= 0 || b.Jitter > 1 {
		b.Jitter = DefaultBackoffJitter
	}
	return b
}

// delay is the wait after failures consecutive failures (0: the first).
func (b Backoff) delay(failures int) time.Duration {
	d := b.Min
	for i := 0; i < failures && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	spread := 1 + b.Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * spread)
}

// ClientOptions configure a proxy's end of the stream.
type ClientOptions struct {
	// Node is the snapshot node the proxy serves, e.g. "VirtualNode/NS/NAME". Required.
	Node string
	// Token is sent as "authorization: Bearer Token".
	Token string
	// ProxyVersion is the proxy's build version, shown in the control plane's status.
	ProxyVersion string
	// Logger receives connection changes and rejected snapshots; nil discards them.
	Logger *slog.Logger
	// TLS secures the connection; nil connects in plain text.
	TLS *tls.Config
	// Backoff paces reconnection; zero fields take the defaults (100 ms, 10 s, 0.2).
	Backoff Backoff
}

// Client is the proxy half of the push stream. Run keeps one stream open and applies
// every snapshot pushed on it.
type Client struct {
	conn *grpc.ClientConn
	opts ClientOptions
	log  *slog.Logger

	connected atomic.Bool
	running   atomic.Uint64 // the version the proxy last applied

	mu      sync.Mutex
	lastErr error
}

// Dial prepares a client for the control plane at target (host:port). It does not wait
// for the control plane: Run connects, and keeps trying while it is unreachable.
func Dial(ctx context.Context, target string, opts ClientOptions) (*Client, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if opts.Node == "" {
		return nil, errors.New("stream client: a node is required")
	}
	opts.Backoff = opts.Backoff.withDefaults()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	creds := insecure.NewCredentials()
	if opts.TLS != nil {
		creds = credentials.NewTLS(opts.TLS)
	}
	conn, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: clientPingEvery, Timeout: pingTimeout, PermitWithoutStream: true,
		}),
		// gRPC's own reconnection pacing must not be slower than ours, or a stream
		// attempt would find the connection still waiting long after the server is back.
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{
			BaseDelay:  opts.Backoff.Min,
			Multiplier: 2,
			Jitter:     opts.Backoff.Jitter,
			MaxDelay:   opts.Backoff.Max,
		}}),
		grpc.WithDefaultCallOptions(grpc.CallContentSubtype(codecName), grpc.MaxCallRecvMsgSize(maxSnapshotBytes)),
	)
	if err != nil {
		return nil, fmt.Errorf("stream client for %s: %w", target, err)
	}
	return &Client{conn: conn, opts: opts, log: log.With("node", opts.Node, "controlPlane", target)}, nil
}

// Close releases the connection. Run must have returned.
func (c *Client) Close() error { return c.conn.Close() }

// Connected reports whether a stream to the control plane is open now.
func (c *Client) Connected() bool { return c.connected.Load() }

// LastError is why the last stream ended or could not be opened; nil while connected.
func (c *Client) LastError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// Version is the snapshot version the proxy last applied (0: none).
func (c *Client) Version() uint64 { return c.running.Load() }

func (c *Client) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

// startupQuietFailures is how many failed first connections of a proxy that has no
// snapshot yet are logged as information rather than warnings.
const startupQuietFailures = 5

// Run keeps a stream to the control plane open until ctx ends, and returns ctx's error.
// apply is called, one call at a time, with each snapshot pushed; a nil result is
// acknowledged, an error rejects the snapshot with err.Error() as the reason, and the
// proxy is expected to keep what it ran. When the stream breaks, Run reconnects with
// backoff and tells the control plane the version last applied; meanwhile apply is not
// called, so the proxy goes on serving its current snapshot. Call Run once at a time.
func (c *Client) Run(ctx context.Context, apply func(*snapshot.Snapshot) error) error {
	failures := 0
	for {
		started := time.Now()
		established, err := c.session(ctx, apply)
		c.connected.Store(false)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.setErr(err)
		if established && time.Since(started) >= stableAfter {
			failures = 0
		}
		wait := c.opts.Backoff.delay(failures)
		failures++
		if !established && c.running.Load() == 0 && failures <= startupQuietFailures {
			// Starting together with the control plane (canarymesh up): not yet a problem.
			c.log.InfoContext(ctx, "waiting for the control plane",
				"err", err, "retryIn", wait.Round(time.Millisecond))
		} else {
			c.log.WarnContext(ctx, "control plane stream ended; keeping the current snapshot",
				"err", err, "retryIn", wait.Round(time.Millisecond), "version", c.running.Load())
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// session runs one stream until it fails. established reports whether the control
// plane accepted it.
func (c *Client) session(ctx context.Context, apply func(*snapshot.Snapshot) error) (established bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.opts.Token)
	st, err := c.conn.NewStream(ctx, &serviceDesc.Streams[0], StreamMethod)
	if err != nil {
		return false, err
	}
	hello := &Hello{Node: c.opts.Node, ProxyVersion: c.opts.ProxyVersion, LastVersion: c.running.Load()}
	if err := st.SendMsg(&ProxyMessage{Hello: hello}); err != nil {
		return false, streamErr(st, err)
	}
	md, err := st.Header()
	if err != nil {
		return false, err
	}
	if md == nil { // ended before accepting us; the status says why
		return false, streamErr(st, io.EOF)
	}
	c.connected.Store(true)
	c.setErr(nil)
	c.log.InfoContext(ctx, "connected to the control plane", "lastVersion", hello.LastVersion)
	for {
		var p Push
		if err := st.RecvMsg(&p); err != nil {
			if errors.Is(err, io.EOF) {
				err = errClosedByServer
			}
			return true, err
		}
		if err := st.SendMsg(c.applyPush(ctx, apply, p.Snapshot)); err != nil {
			return true, streamErr(st, err)
		}
	}
}

// applyPush applies snap and returns the answer to send.
func (c *Client) applyPush(ctx context.Context, apply func(*snapshot.Snapshot) error, snap *snapshot.Snapshot) *ProxyMessage {
	if snap == nil {
		return &ProxyMessage{Nack: &Nack{Reason: "the push carried no snapshot"}}
	}
	v := snap.Version
	var err error
	if snap.Node != "" && snap.Node != c.opts.Node {
		err = fmt.Errorf("the snapshot is for node %q, this proxy serves %q", snap.Node, c.opts.Node)
	} else {
		err = apply(snap)
	}
	if err != nil {
		c.log.WarnContext(ctx, "snapshot rejected", "version", v, "err", err)
		return &ProxyMessage{Nack: &Nack{Version: v, Reason: err.Error()}}
	}
	c.running.Store(v)
	return &ProxyMessage{Ack: &Ack{Version: v}}
}

// streamErr turns the io.EOF a send returns on a finished stream into the stream's status.
func streamErr(st grpc.ClientStream, err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	if rerr := st.RecvMsg(&Push{}); rerr != nil && !errors.Is(rerr, io.EOF) {
		return rerr
	}
	return errClosedByServer
}

var errClosedByServer = errors.New("the control plane closed the stream")
