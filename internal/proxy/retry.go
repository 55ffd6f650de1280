package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// retryEvent is a set of reasons an attempt may be retried for.
type retryEvent uint16

const (
	evServerError     retryEvent = 1 << iota // any 5xx, and failures that Envoy counts as 5xx
	evGatewayError                           // 502, 503, 504, connect failures and resets
	evClientError                            // 409, as Envoy's retriable-4xx
	evStreamError                            // an HTTP/2 stream reset or refused
	evConnectionError                        // TCP connect failure or reset before a response
	evGRPCCancelled
	evGRPCDeadlineExceeded
	evGRPCInternal
	evGRPCResourceExhausted
	evGRPCUnavailable
)

var retryEventNames = map[string]retryEvent{
	"server-error":       evServerError,
	"gateway-error":      evGatewayError,
	"client-error":       evClientError,
	"stream-error":       evStreamError,
	"connection-error":   evConnectionError,
	"cancelled":          evGRPCCancelled,
	"deadline-exceeded":  evGRPCDeadlineExceeded,
	"internal":           evGRPCInternal,
	"resource-exhausted": evGRPCResourceExhausted,
	"unavailable":        evGRPCUnavailable,
}

// retryPolicy is a compiled snapshot.RetryPolicy; the zero value never retries.
type retryPolicy struct {
	max    int
	perTry time.Duration
	on     retryEvent
}

func compileRetry(r *snapshot.RetryPolicy) (retryPolicy, error) {
	if r == nil {
		return retryPolicy{}, nil
	}
	if r.MaxRetries < 0 {
		return retryPolicy{}, fmt.Errorf("maxRetries: %d is negative", r.MaxRetries)
	}
	p := retryPolicy{max: r.MaxRetries, perTry: r.PerTryTimeout}
	for field, list := range map[string][]string{"httpEvents": r.HTTPEvents, "tcpEvents": r.TCPEvents, "grpcEvents": r.GRPCEvents} {
		for i, name := range list {
			ev, ok := retryEventNames[name]
			if !ok {
				return retryPolicy{}, fmt.Errorf("%s[%d]: unknown event %q", field, i, name)
			}
			p.on |= ev
		}
	}
	return p, nil
}

// attempt is the outcome of one try, as retries, outlier detection and metrics see it.
type attempt struct {
	code   int // HTTP status, or the HTTP-like class of a gRPC status
	events retryEvent
	flag   string // Envoy response flag for a failure (UF, UC, UR, UT, UPE)
	reason string // the local reply's body when this failure is final
}

var (
	errRouteTimeout  = errors.New("upstream request timeout")
	errPerTryTimeout = errors.New("upstream per-try timeout")
	errIdleTimeout   = errors.New("stream idle timeout")
)

// dialError marks a failure to connect, as opposed to a failure on a connection.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

const resetBefore = "upstream connect error or disconnect/reset before headers. reset reason: "

// classify turns a round trip's result into an attempt. tryCtx tells a per-try timeout
// from other failures.
func classify(res *http.Response, err error, tryCtx context.Context) attempt {
	if err == nil {
		return classifyResponse(res)
	}
	const all5xx = evServerError | evGatewayError
	var de *dialError
	switch {
	case errors.Is(context.Cause(tryCtx), errPerTryTimeout):
		return attempt{code: 504, events: all5xx, flag: "UT", reason: "upstream request timeout"}
	case errors.As(err, &de):
		return attempt{code: 503, events: all5xx | evConnectionError, flag: "UF",
			reason: resetBefore + "connection failure, transport failure reason: " + de.err.Error()}
	case isStreamError(err):
		return attempt{code: 503, events: all5xx | evStreamError, flag: "UR", reason: resetBefore + "remote reset"}
	case isReset(err):
		return attempt{code: 503, events: all5xx | evConnectionError, flag: "UC", reason: resetBefore + "connection termination"}
	}
	return attempt{code: 502, events: all5xx, flag: "UPE", reason: resetBefore + "protocol error"}
}

func classifyResponse(res *http.Response) attempt {
	g, ok := grpcStatus(res.Header)
	return classifyStatus(res.StatusCode, g, ok && isGRPC(res.Header))
}

// classifyStatus is classifyResponse for a status and, when grpc is true, the
// grpc-status of a trailers-only gRPC response.
func classifyStatus(status, grpcCode int, grpc bool) attempt {
	a := attempt{code: status}
	if grpc {
		a.code = grpcHTTPCode(grpcCode)
		a.events = grpcEvent(grpcCode)
	}
	switch {
	case a.code == 502 || a.code == 503 || a.code == 504:
		a.events |= evServerError | evGatewayError
	case a.code >= 500 && a.code <= 599:
		a.events |= evServerError
	case a.code == 409:
		a.events |= evClientError
	}
	return a
}

func isStreamError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "stream error") || strings.Contains(s, "REFUSED_STREAM")
}

func isReset(err error) bool {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "connection reset") || strings.Contains(s, "server closed") ||
		strings.Contains(s, "connection lost") || strings.Contains(s, "GOAWAY")
}

// retriable reports whether an attempt's events are in the policy.
func (p *retryPolicy) retriable(a attempt) bool { return a.events&p.on != 0 }

// backoff sleeps before retry n (0-based) as Envoy does: fully jittered, 25 ms doubling up
// to 250 ms. It returns false if ctx ends first.
func backoff(ctx context.Context, n int) bool {
	ceiling := min(25*time.Millisecond<<n, 250*time.Millisecond)
	t := time.NewTimer(rand.N(ceiling) + time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func isGRPC(h http.Header) bool {
	return strings.HasPrefix(h.Get("Content-Type"), "application/grpc")
}

// grpcStatus reads grpc-status from headers (a trailers-only response) or trailers.
func grpcStatus(h http.Header) (int, bool) {
	v := h["Grpc-Status"]
	if len(v) == 0 {
		return 0, false
	}
	n, ok := parseInt(v[0])
	return int(n), ok
}

// grpcHTTPCode maps a gRPC status to the HTTP status it corresponds to (as grpc-gateway
// and Envoy's grpc_http1_bridge do), so that metrics and outlier detection see a failed
// call as the 4xx or 5xx it is rather than as a 200.
func grpcHTTPCode(s int) int {
	switch s {
	case 0:
		return 200
	case 1:
		return 499
	case 3, 9, 11:
		return 400
	case 4:
		return 504
	case 5:
		return 404
	case 6, 10:
		return 409
	case 7:
		return 403
	case 8:
		return 429
	case 12:
		return 501
	case 14:
		return 503
	case 16:
		return 401
	}
	return 500 // 2 unknown, 13 internal, 15 data loss, and anything unknown
}

func grpcEvent(s int) retryEvent {
	switch s {
	case 1:
		return evGRPCCancelled
	case 4:
		return evGRPCDeadlineExceeded
	case 8:
		return evGRPCResourceExhausted
	case 13:
		return evGRPCInternal
	case 14:
		return evGRPCUnavailable
	}
	return 0
}

// grpcStatusFor is the gRPC status of a local reply, as Envoy maps HTTP to gRPC.
func grpcStatusFor(code int) int {
	switch code {
	case 400:
		return 13
	case 401:
		return 16
	case 403:
		return 7
	case 404:
		return 12
	case 429, 502, 503, 504:
		return 14
	}
	return 2
}
