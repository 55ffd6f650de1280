package proxy

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestHeadEnd(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET", 27},
		{"GET / HTTP/1.1\nHost: a\n\n", 24},
		{"GET / HTTP/1.1\r\nHost: a\r\n\r", -1},
		{"GET / HTTP/1.1\r\nHost: a\r\n", -1},
		{"", -1},
	} {
		if got := headEnd([]byte(tc.in), 0); got != tc.want {
			t.Errorf("headEnd(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestParseRequest(t *testing.T) {
	parse := func(head string) (*fastReq, bool) {
		var r fastReq
		ok := parseRequest([]byte(head), &r, nil)
		return &r, ok
	}
	r, ok := parse("POST /a/b?x=1&y HTTP/1.1\r\nHost: svc.demo:8080\r\ncontent-length: 12\r\n" +
		"Connection: keep-alive, X-Hop\r\nX-Hop: 1\r\nTE: trailers, deflate\r\nX-Request-Id: abc\r\n\r\n")
	if !ok {
		t.Fatal("a plain POST was refused")
	}
	if r.method != "POST" || string(r.path) != "/a/b" || string(r.query) != "x=1&y" || string(r.host) != "svc.demo:8080" ||
		r.length != 12 || r.chunked || r.close || !r.teTrailers || !r.hasID || r.hasProto {
		t.Errorf("parsed %+v", r)
	}
	for _, h := range r.hdrs {
		if string(h.name) == "X-Hop" && h.kind != hDropped {
			t.Error("a field named by Connection must not be forwarded")
		}
	}
	if got := r.values("X-Request-Id"); len(got) != 1 || got[0] != "abc" {
		t.Errorf("values: %q", got)
	}
	if r, ok := parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nTransfer-Encoding: Chunked\r\n\r\n"); !ok || !r.close || !r.chunked {
		t.Errorf("close and chunked: %v %+v", ok, r)
	}
	// What the fast path leaves to net/http.
	for _, head := range []string{
		"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
		"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Type: application/grpc\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n folded\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
		"GET /a|b HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a%2 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
		"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
	} {
		if _, ok := parse(head); ok {
			t.Errorf("the fast path took %q", head)
		}
	}
}

func TestParseResponse(t *testing.T) {
	parse := func(head string) (*fastRes, bool) {
		var r fastRes
		ok := parseResponse([]byte(head), &r, nil)
		return &r, ok
	}
	if r, ok := parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"); !ok || r.status != 200 || r.length != 5 || r.close {
		t.Errorf("200: %v %+v", ok, r)
	}
	if r, ok := parse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"); !ok || !r.chunked || r.length != -1 {
		t.Errorf("chunked wins over length: %v %+v", ok, r)
	}
	if r, ok := parse("HTTP/1.0 200 OK\r\n\r\n"); !ok || !r.close {
		t.Errorf("HTTP/1.0 closes unless keep-alive: %v %+v", ok, r)
	}
	if r, ok := parse("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"); !ok || r.close {
		t.Errorf("HTTP/1.0 keep-alive: %v %+v", ok, r)
	}
	if r, ok := parse("HTTP/1.1 204\r\n\r\n"); !ok || r.status != 204 || !r.bodyless("GET") {
		t.Errorf("204 without a reason: %v %+v", ok, r)
	}
	if r, ok := parse("HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\nGrpc-Status: 14\r\n\r\n"); !ok || !r.grpc || r.grpcStatus != 14 {
		t.Errorf("gRPC trailers-only: %v %+v", ok, r)
	}
	for _, head := range []string{
		"SMTP READY\r\n\r\n",
		"HTTP/2 200\r\n\r\n",
		"HTTP/1.1 20 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
	} {
		if _, ok := parse(head); ok {
			t.Errorf("accepted %q", head)
		}
	}
}

func TestPipeChunked(t *testing.T) {
	for _, tc := range []struct {
		name, in, out string
		ok            bool
	}{
		{"plain", "3\r\nabc\r\n0\r\n\r\nNEXT", "3\r\nabc\r\n0\r\n\r\n", true},
		{"extensions dropped, trailers kept", "3;a=b\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Sum: 1\r\n\r\n",
			"3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\nX-Sum: 1\r\n\r\n", true},
		{"bad size", "zz\r\nabc\r\n0\r\n\r\n", "", false},
		{"missing CRLF after data", "3\r\nabcd\r\n0\r\n\r\n", "3\r\nabc\r\n", false},
		{"cut short", "5\r\nab", "5\r\nab", false},
	} {
		src := rbuf{conn: &readerConn{Reader: strings.NewReader(tc.in)}, buf: make([]byte, 16)}
		var out bytes.Buffer
		dst := wbuf{w: &out, buf: make([]byte, 0, 8)}
		p := pipe{src: &src, dst: &dst}
		ok := p.chunked()
		dst.flush()
		if ok != tc.ok || out.String() != tc.out {
			t.Errorf("%s: %v %q, want %v %q (%v)", tc.name, ok, out.String(), tc.ok, tc.out, p.srcErr)
		}
		if tc.ok && string(src.buf[src.r:src.w]) != "NEXT"[:min(4, src.w-src.r)] {
			t.Errorf("%s: left %q in the buffer", tc.name, src.buf[src.r:src.w])
		}
	}
}

func TestPipeUntilClose(t *testing.T) {
	src := rbuf{conn: &readerConn{Reader: strings.NewReader("hello, world")}, buf: make([]byte, 5)}
	var out bytes.Buffer
	dst := wbuf{w: &out, buf: make([]byte, 0, 64)}
	p := pipe{src: &src, dst: &dst}
	if !p.untilClose() || dst.flush() != nil {
		t.Fatal(p.srcErr, p.dstErr)
	}
	if out.String() != "5\r\nhello\r\n5\r\n, wor\r\n2\r\nld\r\n0\r\n\r\n" || p.n != 12 {
		t.Errorf("%q (%d bytes)", out.String(), p.n)
	}
}

// readerConn is a net.Conn reading from a reader, for the pipe tests.
type readerConn struct {
	io.Reader
	nopConn
}

func (c *readerConn) Read(p []byte) (int, error) { return c.Reader.Read(p) }

type nopConn struct{}

func (nopConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (nopConn) Write(p []byte) (int, error)      { return len(p), nil }
func (nopConn) Close() error                     { return nil }
func (nopConn) LocalAddr() net.Addr              { return nil }
func (nopConn) RemoteAddr() net.Addr             { return nil }
func (nopConn) SetDeadline(time.Time) error      { return nil }
func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }
