package stream

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// helloTimeout bounds how long an authenticated stream may stay silent before its Hello.
const helloTimeout = 10 * time.Second

// serveStream runs one proxy's stream: authenticate, read the Hello, then push the node's
// newest snapshot whenever the proxy has answered the previous push.
func (s *Server) serveStream(ss grpc.ServerStream) error {
	ctx := ss.Context()
	if !s.auth(bearerToken(ctx)) {
		return status.Error(codes.Unauthenticated, "a valid bearer token is required in the authorization metadata")
	}
	hello, err := recvHello(ctx, ss)
	if err != nil {
		return err
	}
	c, ok := s.attach(hello, peerAddr(ctx))
	if !ok {
		return errShuttingDown
	}
	defer s.detach(c)
	s.log.InfoContext(ctx, "proxy connected", "id", c.id, "node", c.node,
		"address", peerAddr(ctx), "lastVersion", hello.LastVersion)
	defer s.log.InfoContext(ctx, "proxy disconnected", "id", c.id, "node", c.node)
	// Headers tell the client it is connected before any snapshot exists for its node.
	if err := ss.SendHeader(metadata.MD{}); err != nil {
		return err
	}
	replies := make(chan uint64)
	recvErr := make(chan error, 1)
	go s.receive(ctx, ss, c, replies, recvErr)
	return s.pushLoop(ctx, ss, c, hello.LastVersion, replies, recvErr)
}

var errShuttingDown = status.Error(codes.Unavailable, "the control plane is shutting down")

// pushLoop sends snapshots from c's mailbox, one at a time: while a push is unanswered
// the mailbox is left alone, so newer snapshots replace each other there and the proxy
// gets only the newest once it answers.
func (s *Server) pushLoop(ctx context.Context, ss grpc.ServerStream, c *conn, running uint64,
	replies <-chan uint64, recvErr <-chan error) error {
	have, known := running, running != 0
	waiting := false
	for {
		var mailbox <-chan *encodedPush
		if !waiting {
			mailbox = c.mailbox
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return errShuttingDown
		case err := <-recvErr:
			return err
		case v := <-replies:
			if waiting && v == have {
				waiting = false
			}
		case p := <-mailbox:
			v := p.snap.Version
			if known && v == have {
				continue
			}
			s.update(c, func(st *ProxyStatus) { st.SentVersion = v })
			if err := ss.SendMsg(p); err != nil {
				return err
			}
			have, known, waiting = v, true, true
		}
	}
}

// receive reads the proxy's answers, records them in its status, and passes each
// answered version to the push loop. It ends with the stream.
func (s *Server) receive(ctx context.Context, ss grpc.ServerStream, c *conn, replies chan<- uint64, recvErr chan<- error) {
	for {
		var m ProxyMessage
		if err := ss.RecvMsg(&m); err != nil {
			if errors.Is(err, io.EOF) {
				err = nil // the proxy closed its side: a clean end
			}
			recvErr <- err
			return
		}
		var v uint64
		switch {
		case m.Ack != nil:
			v = m.Ack.Version
			s.update(c, func(st *ProxyStatus) {
				st.AckedVersion, st.LastSeen = v, s.now()
				st.LastNack, st.NackVersion = "", 0
			})
		case m.Nack != nil:
			v = m.Nack.Version
			reason := truncate(m.Nack.Reason, maxNackReason)
			s.update(c, func(st *ProxyStatus) {
				st.LastNack, st.NackVersion, st.LastSeen = reason, v, s.now()
			})
			s.log.WarnContext(ctx, "proxy rejected snapshot", "id", c.id,
				"node", c.node, "version", v, "reason", reason)
		default:
			recvErr <- status.Error(codes.InvalidArgument, "expected an ack or a nack")
			return
		}
		select {
		case replies <- v:
		case <-ctx.Done():
			return
		}
	}
}

// recvHello reads the first message, which must be a Hello naming a node, within
// helloTimeout.
func recvHello(ctx context.Context, ss grpc.ServerStream) (*Hello, error) {
	type result struct {
		m   ProxyMessage
		err error
	}
	got := make(chan result, 1)
	go func() {
		var r result
		r.err = ss.RecvMsg(&r.m)
		got <- r
	}()
	timer := time.NewTimer(helloTimeout)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timer.C:
		return nil, status.Errorf(codes.DeadlineExceeded, "no hello within %s", helloTimeout)
	case r := <-got:
		if r.err != nil {
			return nil, r.err
		}
		if r.m.Hello == nil || r.m.Hello.Node == "" {
			return nil, status.Error(codes.InvalidArgument, "the first message must be a hello naming the node")
		}
		return r.m.Hello, nil
	}
}

func bearerToken(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if token, ok := strings.CutPrefix(v, "Bearer "); ok {
			return token
		}
	}
	return ""
}

func peerAddr(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		return p.Addr.String()
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
