package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// rawOK is a backend that answers every request head with "ok" without allocating, so
// that a benchmark's allocations are the proxy's. It serves keep-alive connections
// until the client closes them.
func rawOK(tb testing.TB) string {
	tb.Helper()
	return rawBackend(tb, func(c net.Conn) {
		const res = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
		buf := make([]byte, 16<<10)
		out := []byte(res)
		n := 0
		for {
			m, err := c.Read(buf[n:])
			if err != nil {
				return
			}
			n += m
			for {
				i := bytes.Index(buf[:n], []byte("\r\n\r\n"))
				if i < 0 {
					break
				}
				if _, err := c.Write(out); err != nil {
					return
				}
				n = copy(buf, buf[i+4:n])
			}
		}
	})
}

// rawClient sends one GET on a kept-alive connection and reads the whole response,
// without allocating.
type rawClient struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
}

func newRawClient(tb testing.TB, addr, host string) *rawClient {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	return &rawClient{c: c, br: bufio.NewReaderSize(c, 16<<10),
		req: []byte("GET /bench HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")}
}

func (rc *rawClient) roundTrip() error {
	if _, err := rc.c.Write(rc.req); err != nil {
		return err
	}
	length := -1
	status := false
	for {
		line, err := rc.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if !status {
			if !bytes.HasPrefix(line, []byte("HTTP/1.1 200 ")) {
				return io.ErrUnexpectedEOF
			}
			status = true
			continue
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && eqLower(k, "content-length") {
			length = int(parseLength(trimOWS(bytes.TrimRight(v, "\r\n"))))
		}
	}
	if length < 0 {
		return io.ErrUnexpectedEOF
	}
	_, err := rc.br.Discard(length)
	return err
}

func benchProxy(b *testing.B, noFast bool) string {
	be := rawOK(b)
	s := egressSnapshot(1, []snapshot.Cluster{{Name: "demo/be", Protocol: "http", Port: 80,
		Endpoints: []snapshot.Endpoint{{Address: be, Ready: true}}}},
		snapshot.VirtualHost{Name: "demo/be", Domains: []string{"be.demo"},
			Routes: []snapshot.Route{{Name: "demo/be/main", Targets: []snapshot.WeightedCluster{{Cluster: "demo/be", Weight: 1}}}}})
	p := New(Options{Bind: ephemeralBind, NoFastPath: noFast})
	b.Cleanup(func() { p.Close() })
	if err := p.Update(s); err != nil {
		b.Fatal(err)
	}
	return p.Addr("egress").String()
}

// benchRoundTrip measures whole proxied requests over loopback: client socket, proxy,
// backend socket and back, one connection per parallel worker.
func benchRoundTrip(b *testing.B, noFast bool, parallel bool) {
	addr := benchProxy(b, noFast)
	warm := newRawClient(b, addr, "be.demo")
	if err := warm.roundTrip(); err != nil {
		b.Fatal(err)
	}
	warm.c.Close()
	b.ReportAllocs()
	b.ResetTimer()
	if !parallel {
		rc := newRawClient(b, addr, "be.demo")
		defer rc.c.Close()
		for b.Loop() {
			if err := rc.roundTrip(); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		rc := newRawClient(b, addr, "be.demo")
		defer rc.c.Close()
		for pb.Next() {
			if err := rc.roundTrip(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkFastPathRoundTrip is one request at a time through the HTTP/1.1 fast path.
func BenchmarkFastPathRoundTrip(b *testing.B) { benchRoundTrip(b, false, false) }

// BenchmarkNetHTTPRoundTrip is the same through net/http's front end and transport.
func BenchmarkNetHTTPRoundTrip(b *testing.B) { benchRoundTrip(b, true, false) }

// BenchmarkFastPathParallel keeps many connections busy at once, as a loaded sidecar.
func BenchmarkFastPathParallel(b *testing.B) { benchRoundTrip(b, false, true) }

func BenchmarkNetHTTPParallel(b *testing.B) { benchRoundTrip(b, true, true) }

// BenchmarkParseRequest is the fast path's request parser on a typical head.
func BenchmarkParseRequest(b *testing.B) {
	head := []byte("GET /api/info?x=1 HTTP/1.1\r\nHost: podinfo.demo\r\nUser-Agent: curl/8.5.0\r\n" +
		"Accept: */*\r\nX-Request-Id: 0b1c2d3e-4f50-4617-8829-3a4b5c6d7e8f\r\n" +
		"Traceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n")
	var r fastReq
	hs := make([]hdr, 0, 32)
	b.SetBytes(int64(len(head)))
	b.ReportAllocs()
	for b.Loop() {
		if n := headEnd(head, 0); n != len(head) || !parseRequest(head[:n], &r, hs) {
			b.Fatal("parse " + strconv.Itoa(n))
		}
	}
}
