package proxy

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Heads and bodies on the fast path: the request head sent upstream, the response head
// sent back, and pipes that stream a body from one connection's read buffer to the
// other's write buffer.

const maxChunkLine = 4 << 10

var errBodyTooLong = errors.New("body too long to drain")

// pipe moves one message body from a read buffer to a write buffer, re-framing a
// chunked body chunk by chunk (extensions dropped, trailers kept). Before every read
// that may block, what is buffered for the other side is flushed, so a streamed body
// flows as it arrives.
type pipe struct {
	src   *rbuf
	dst   *wbuf
	idle  time.Duration // when set, each blocking read gets this long (the route's idle)
	rdl   *time.Time    // where src's read deadline is recorded
	limit int64         // when set, a longer body fails (draining)
	n     int64         // body bytes moved

	srcErr error
	dstErr error
}

func (p *pipe) fill() bool {
	if err := p.dst.flush(); err != nil {
		p.dstErr = err
		return false
	}
	if p.idle > 0 {
		*p.rdl = time.Now().Add(p.idle)
		p.src.conn.SetReadDeadline(*p.rdl)
	}
	if err := p.src.fill(); err != nil {
		p.srcErr = err
		return false
	}
	return true
}

func (p *pipe) write(b []byte) bool {
	if err := p.dst.write(b); err != nil {
		p.dstErr = err
		return false
	}
	return true
}

// length moves n bytes.
func (p *pipe) length(n int64) bool {
	if p.limit > 0 && p.n+n > p.limit {
		p.srcErr = errBodyTooLong
		return false
	}
	for n > 0 {
		if p.src.buffered() == 0 && !p.fill() {
			if p.srcErr == io.EOF {
				p.srcErr = io.ErrUnexpectedEOF
			}
			return false
		}
		b := p.src.buf[p.src.r:p.src.w]
		if int64(len(b)) > n {
			b = b[:n]
		}
		if !p.write(b) {
			return false
		}
		p.src.r += len(b)
		n -= int64(len(b))
		p.n += int64(len(b))
	}
	return true
}

// line returns the next line without its line ending; it stays valid until the next
// read.
func (p *pipe) line() ([]byte, bool) {
	from := 0
	for {
		b := p.src.buf[p.src.r:p.src.w]
		if i := bytes.IndexByte(b[from:], '\n'); i >= 0 {
			i += from
			p.src.r += i + 1
			line := b[:i]
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			return line, true
		}
		from = len(b)
		if len(b) >= maxChunkLine {
			p.srcErr = errMalformed
			return nil, false
		}
		if !p.fill() {
			if p.srcErr == io.EOF {
				p.srcErr = io.ErrUnexpectedEOF
			}
			return nil, false
		}
	}
}

// chunkHeader writes a chunk's size line.
func (p *pipe) chunkHeader(size int64) bool {
	d := p.dst
	if cap(d.buf)-len(d.buf) < 20 {
		if err := d.flush(); err != nil {
			p.dstErr = err
			return false
		}
	}
	d.buf = append(appendHex(d.buf, size), '\r', '\n')
	return true
}

var crlf = []byte("\r\n")

// chunked moves a chunked body through its last chunk and trailers.
func (p *pipe) chunked() bool {
	for {
		line, ok := p.line()
		if !ok {
			return false
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size := parseHex(trimOWS(line))
		if size < 0 {
			p.srcErr = errMalformed
			return false
		}
		if size == 0 {
			return p.trailers()
		}
		if !p.chunkHeader(size) || !p.length(size) || !p.write(crlf) {
			return false
		}
		if line, ok = p.line(); !ok {
			return false
		}
		if len(line) != 0 {
			p.srcErr = errMalformed
			return false
		}
	}
}

func (p *pipe) trailers() bool {
	if !p.write([]byte("0\r\n")) {
		return false
	}
	for {
		line, ok := p.line()
		if !ok {
			return false
		}
		if !allOf(line, cValue) || len(line) > 0 && bytes.IndexByte(line, ':') <= 0 {
			p.srcErr = errMalformed
			return false
		}
		if !p.write(line) || !p.write(crlf) {
			return false
		}
		if len(line) == 0 {
			return true
		}
	}
}

// untilClose moves a body delimited by the connection's end, as chunks.
func (p *pipe) untilClose() bool {
	for {
		if b := p.src.buf[p.src.r:p.src.w]; len(b) > 0 {
			if !p.chunkHeader(int64(len(b))) || !p.write(b) || !p.write(crlf) {
				return false
			}
			p.src.r = p.src.w
			p.n += int64(len(b))
		}
		if !p.fill() {
			if p.srcErr != io.EOF {
				return false
			}
			p.srcErr = nil
			return p.write([]byte("0\r\n\r\n"))
		}
	}
}

// sendBody streams the client's body upstream after the head, within the route's
// deadline. errClientGone when the client fails first, errBadBody when its chunked
// framing is broken, a deadline error when the route's time runs out.
func (x *fastExchange) sendBody(uc *upConn, deadline time.Time) error {
	fc := x.fc
	fc.setReadDeadline(deadline)
	uc.c.SetWriteDeadline(deadline)
	defer uc.c.SetWriteDeadline(time.Time{})
	p := pipe{src: &fc.rb, dst: &fc.ow}
	var ok bool
	if fc.req.chunked {
		ok = p.chunked()
	} else {
		ok = p.length(fc.req.length)
	}
	if ok {
		if err := fc.ow.flush(); err != nil {
			p.dstErr, ok = err, false
		}
	}
	x.bodyRead = ok
	switch {
	case p.srcErr == nil:
		return p.dstErr
	case errors.Is(p.srcErr, os.ErrDeadlineExceeded):
		return p.srcErr
	case errors.Is(p.srcErr, errMalformed):
		return errBadBody
	}
	return errClientGone
}

type bodyMode uint8

const (
	modeNone bodyMode = iota
	modeLength
	modeChunked
	modeClose
)

func (x *fastExchange) bodyMode() bodyMode {
	res := &x.fc.res
	switch {
	case res.bodyless(x.fc.req.method):
		return modeNone
	case res.chunked:
		return modeChunked
	case res.length >= 0:
		return modeLength
	}
	return modeClose
}

// respond streams the upstream response back, as exchange.respond does.
func (x *fastExchange) respond() next {
	fc, uc, res := x.fc, x.uc, &x.fc.res
	x.code = res.status
	x.outcome = classifyStatus(res.status, res.grpcStatus, res.grpc && res.hasGrpc).code
	mode := x.bodyMode()
	keep := x.keepAlive()
	x.writeResponseHead(mode, keep)
	uc.rb.r += res.head
	p := pipe{src: &uc.rb, dst: &fc.wb, idle: x.route.idle, rdl: &uc.rdl}
	switch mode {
	case modeLength:
		p.length(res.length)
	case modeChunked:
		p.chunked()
	case modeClose:
		p.untilClose()
	}
	x.bytesOut = p.n
	x.tEnd = time.Now()
	x.upstreamTime = x.at(x.tEnd).Sub(x.attemptStart)
	switch {
	case p.dstErr != nil:
		x.flags = "DC"
		return nextClose
	case p.srcErr != nil:
		x.flags = "UR"
		if errors.Is(p.srcErr, os.ErrDeadlineExceeded) {
			x.flags = "SI"
		}
		// Closing is the only way to tell the client that the response it started
		// receiving is incomplete.
		return nextClose
	}
	if !res.close && mode != modeClose && uc.rb.buffered() == 0 {
		x.putConn()
	}
	if !keep {
		return nextClose
	}
	return nextServe
}

// writeResponseHead writes the response head downstream: the upstream's fields
// without hop-by-hop ones, x-envoy-upstream-service-time, and the framing.
func (x *fastExchange) writeResponseHead(mode bodyMode, keep bool) {
	fc, res := x.fc, &x.fc.res
	if len(fc.wb.buf) > cap(fc.wb.buf)/2 {
		fc.wb.flush()
	}
	b := append(fc.wb.buf, "HTTP/1.1 "...)
	b = appendInt(b, int64(res.status))
	b = append(b, ' ')
	if len(res.reason) > 0 {
		b = append(b, res.reason...)
	} else {
		b = append(b, http.StatusText(res.status)...)
	}
	b = append(b, "\r\n"...)
	for i := range res.hdrs {
		h := &res.hdrs[i]
		switch {
		case h.kind == hTrailer && mode == modeChunked:
		case h.kind.hop(), h.kind == hServiceTime:
			continue
		case h.kind == hContentLength && (mode == modeChunked || mode == modeClose):
			continue
		}
		b = appendField(b, h.name, h.value)
	}
	b = append(b, "X-Envoy-Upstream-Service-Time: "...)
	b = appendInt(b, x.serviceTime().Milliseconds())
	b = append(b, "\r\n"...)
	if x.tgt != nil {
		b = append(b, x.tgt.cookieLines...)
	}
	if mode == modeChunked || mode == modeClose {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	if !keep {
		b = append(b, "Connection: close\r\n"...)
	}
	fc.wb.buf = append(b, "\r\n"...)
	if x.lc.logSink != nil {
		x.captureResponse()
	}
}

// serviceTime is x-envoy-upstream-service-time: from the attempt's start to its
// response head, read once.
func (x *fastExchange) serviceTime() time.Duration {
	if x.svc == 0 {
		x.svc = max(time.Since(x.tTry), 1)
	}
	return x.svc
}

func appendField(b, name, value []byte) []byte {
	b = append(b, name...)
	b = append(b, ':', ' ')
	b = append(b, value...)
	return append(b, '\r', '\n')
}

// buildHead writes the request head sent upstream into fc.head: the client's fields
// without hop-by-hop ones, Host (rewritten by a gateway route), x-request-id when the
// client sent none, x-forwarded-proto, and the framing of the body.
func (x *fastExchange) buildHead() {
	fc, r := x.fc, &x.fc.req
	b := append(fc.head[:0], r.method...)
	b = append(b, ' ')
	if x.rewrote {
		b = append(b, fc.path...)
		if len(r.target) > len(r.path) {
			b = append(b, r.target[len(r.path):]...) // '?' and the query
		}
	} else {
		b = append(b, r.target...)
	}
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, x.host...)
	b = append(b, "\r\n"...)
	for i := range r.hdrs {
		h := &r.hdrs[i]
		switch {
		case h.kind.hop(), h.kind == hHost:
			continue
		case h.kind == hRequestID && !r.hasID, h.kind == hOriginalPath && x.rewrote:
			continue
		}
		b = appendField(b, h.name, h.value)
	}
	if r.teTrailers {
		b = append(b, "Te: trailers\r\n"...)
	}
	if !r.hasID {
		b = append(b, "X-Request-Id: "...)
		b = append(b, x.requestID()...)
		b = append(b, "\r\n"...)
	}
	if !r.hasProto {
		b = append(b, "X-Forwarded-Proto: http\r\n"...)
	}
	if x.rewrote {
		b = append(b, "X-Envoy-Original-Path: "...)
		b = append(b, r.target...)
		b = append(b, "\r\n"...)
	}
	if r.chunked {
		b = append(b, "Transfer-Encoding: chunked\r\n"...)
	}
	fc.head = append(b, "\r\n"...)
}

// requestID is the x-request-id generated for a request that came without one.
func (x *fastExchange) requestID() []byte {
	if !x.genID {
		x.fc.id = x.p.ids.appendNext(x.fc.id[:0])
		x.genID = true
	}
	return x.fc.id
}

// captureRequest takes the request's access log values while the head is in the
// buffer, as exchange.capture reads them from the request.
func (x *fastExchange) captureRequest() {
	f := x.lc.logFmt
	x.captured = true
	x.logVals = make([]string, len(f.captures))
	for i, s := range f.captures {
		if s.op != opReq {
			continue
		}
		v := x.captureReq(s.name)
		if v == "" && s.alt != "" {
			v = x.captureReq(s.alt)
		}
		x.logVals[i] = v
	}
}

func (x *fastExchange) captureReq(name string) string {
	r := &x.fc.req
	switch strings.ToLower(name) {
	case ":method":
		return strings.Clone(r.method)
	case ":path":
		if x.rewrote {
			return string(x.fc.path) + string(r.target[len(r.path):])
		}
		return string(r.target)
	case ":authority":
		return strings.Clone(x.host)
	case ":scheme":
		return "http"
	case "x-request-id":
		if !r.hasID {
			return string(x.requestID())
		}
	case "x-envoy-original-path":
		if x.rewrote {
			return string(r.target)
		}
	}
	for i := range r.hdrs {
		if equalFold(r.hdrs[i].name, name) {
			return string(r.hdrs[i].value)
		}
	}
	return ""
}

// captureResponse takes the response's access log values from what was sent.
func (x *fastExchange) captureResponse() {
	f := x.lc.logFmt
	if len(x.logVals) != len(f.captures) {
		x.logVals = make([]string, len(f.captures))
	}
	for i, s := range f.captures {
		if s.op != opResp {
			continue
		}
		v := x.captureResp(s.name)
		if v == "" && s.alt != "" {
			v = x.captureResp(s.alt)
		}
		x.logVals[i] = v
	}
}

func (x *fastExchange) captureResp(name string) string {
	if x.local.set {
		switch strings.ToLower(name) {
		case "content-type":
			if x.local.body != "" {
				return "text/plain"
			}
		case "content-length":
			return strconv.Itoa(len(x.local.body))
		case "x-envoy-overloaded":
			if x.local.overloaded {
				return "true"
			}
		}
		return ""
	}
	if strings.EqualFold(name, "x-envoy-upstream-service-time") {
		return strconv.FormatInt(x.serviceTime().Milliseconds(), 10)
	}
	for _, h := range x.fc.res.hdrs {
		if !h.kind.hop() && equalFold(h.name, name) {
			return string(h.value)
		}
	}
	return ""
}

func (x *fastExchange) logEntry(end time.Time) logEntry {
	e := x.logBase(end)
	e.proto = "HTTP/1.1"
	if x.fc.remote == "" {
		x.fc.remote = x.fc.c.RemoteAddr().String()
	}
	e.remote = x.fc.remote
	if x.fc.req.length > 0 {
		e.bytesIn = x.fc.req.length
	}
	e.values = x.logVals
	if len(e.values) != len(e.f.captures) {
		e.values = make([]string, len(e.f.captures))
	}
	x.logVals = nil // the entry owns them now
	return e
}
