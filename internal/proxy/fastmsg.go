package proxy

import (
	"bytes"
	"strings"
)

// fastReq is a parsed request head. Its slices point into the downstream read buffer.
type fastReq struct {
	method string // interned, or a view of the buffer
	target []byte // origin-form: path and query
	path   []byte
	query  []byte
	host   []byte
	hdrs   []hdr
	vals   []string // values' result, reused
	head   int      // bytes of the head, request line to empty line

	length     int64 // Content-Length; -1 when none
	chunked    bool
	close      bool // Connection: close
	hasID      bool // a non-empty X-Request-Id came with it
	hasProto   bool // X-Forwarded-Proto came with it
	teTrailers bool
}

// hasBody reports whether a body follows the head.
func (r *fastReq) hasBody() bool { return r.chunked || r.length > 0 }

// values implements headerSource for route matching: every value of a field, in
// order, as views of the buffer in a slice the request reuses.
func (r *fastReq) values(canonical string) []string {
	r.vals = r.vals[:0]
	for i := range r.hdrs {
		if equalFold(r.hdrs[i].name, canonical) {
			r.vals = append(r.vals, str(r.hdrs[i].value))
		}
	}
	return r.vals
}

// parseRequest parses a request head of exactly n bytes at the start of p. false means
// the fast path does not take this request: net/http gets the connection and answers
// it (malformed input included, with net/http's 400).
func parseRequest(p []byte, r *fastReq, hs []hdr) bool {
	*r = fastReq{hdrs: hs[:0], vals: r.vals[:0], head: len(p), length: -1}
	i := bytes.IndexByte(p, '\n')
	line := p[:i]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if !parseRequestLine(line, r) {
		return false
	}
	var ok bool
	if r.hdrs, ok = parseFields(p[i+1:], r.hdrs); !ok {
		return false
	}
	return r.interpret()
}

func parseRequestLine(line []byte, r *fastReq) bool {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return false
	}
	method, rest := line[:sp], line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 || string(rest[sp+1:]) != "HTTP/1.1" || !allOf(method, cToken) {
		return false
	}
	target := rest[:sp]
	if target[0] != '/' {
		return false // absolute-form, authority-form, "*": net/http's business
	}
	path, query := target, []byte(nil)
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		path, query = target[:q], target[q+1:]
	}
	if !allOf(path, cPath) || !allOf(query, cQuery) || !validEscapes(path) {
		return false
	}
	r.method, r.target, r.path, r.query = internMethod(method), target, path, query
	return r.method != "CONNECT" && r.method != "PRI"
}

// validEscapes checks that every '%' starts a %XX escape, as net/url requires.
func validEscapes(b []byte) bool {
	for i := bytes.IndexByte(b, '%'); i >= 0; i = bytes.IndexByte(b, '%') {
		if i+2 >= len(b) || parseHex(b[i+1:i+3]) < 0 {
			return false
		}
		b = b[i+3:]
	}
	return true
}

// interpret reads the fields the fast path acts on and refuses what it leaves to
// net/http: upgrades (WebSocket, h2c), Expect, trailers, transfer codings other than
// chunked, gRPC, and anything ambiguous about the body's length or the Host.
func (r *fastReq) interpret() bool {
	hosts := 0
	for i := range r.hdrs {
		h := &r.hdrs[i]
		switch h.kind {
		case hHost:
			hosts++
			r.host = h.value
		case hContentLength:
			if r.length >= 0 {
				return false
			}
			if r.length = parseLength(h.value); r.length < 0 {
				return false
			}
		case hTransferEncoding:
			if r.chunked || !equalFold(h.value, "chunked") {
				return false
			}
			r.chunked = true
		case hConnection:
			if hasToken(h.value, "close") {
				r.close = true
			}
			dropListed(r.hdrs, h.value)
		case hUpgrade, hHTTP2Settings, hExpect, hTrailer:
			return false
		case hContentType:
			if bytes.HasPrefix(h.value, []byte("application/grpc")) {
				return false
			}
		case hTE:
			r.teTrailers = r.teTrailers || hasToken(h.value, "trailers")
		case hRequestID:
			r.hasID = r.hasID || len(h.value) > 0
		case hForwardedProto:
			r.hasProto = true
		}
	}
	if r.chunked && r.length >= 0 {
		return false
	}
	return hosts == 1 && validHost(r.host)
}

// validHost accepts the Host values net/http accepts that routing can use as they are.
func validHost(h []byte) bool {
	if len(h) == 0 {
		return false
	}
	for _, c := range h {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '.' || c == '-' || c == ':' || c == '[' || c == ']' || c == '_') {
			return false
		}
	}
	return true
}

// fastRes is a parsed upstream response head. Its slices point into the upstream
// connection's read buffer.
type fastRes struct {
	status int
	reason []byte
	hdrs   []hdr
	head   int

	length     int64 // -1 when none
	chunked    bool
	close      bool // the upstream connection cannot be reused after this response
	grpc       bool
	grpcStatus int
	hasGrpc    bool
}

// parseResponse parses the response head of exactly len(p) bytes. false means the
// upstream spoke something other than HTTP/1.x: a 502 protocol error.
func parseResponse(p []byte, res *fastRes, hs []hdr) bool {
	*res = fastRes{hdrs: hs[:0], head: len(p), length: -1}
	i := bytes.IndexByte(p, '\n')
	line := p[:i]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return false
	}
	minor := line[7]
	code := parseLength(line[9:12])
	if minor != '0' && minor != '1' || code < 100 || code > 999 || len(line) > 12 && line[12] != ' ' {
		return false
	}
	res.status = int(code)
	if len(line) > 13 {
		res.reason = line[13:]
	}
	var ok bool
	if res.hdrs, ok = parseFields(p[i+1:], res.hdrs); !ok {
		return false
	}
	keepAlive := minor == '1'
	if !res.interpret(&keepAlive) {
		return false
	}
	res.close = res.close || !keepAlive
	return true
}

func (res *fastRes) interpret(keepAlive *bool) bool {
	for i := range res.hdrs {
		h := &res.hdrs[i]
		switch h.kind {
		case hContentLength:
			n := parseLength(h.value)
			if n < 0 || res.length >= 0 && n != res.length {
				return false
			}
			res.length = n
		case hTransferEncoding:
			if !equalFold(h.value, "chunked") {
				return false // net/http's transport refuses other codings too
			}
			res.chunked = true
		case hConnection:
			if hasToken(h.value, "close") {
				res.close = true
			}
			if hasToken(h.value, "keep-alive") {
				*keepAlive = true
			}
			dropListed(res.hdrs, h.value)
		case hContentType:
			res.grpc = strings.HasPrefix(str(h.value), "application/grpc")
		case hGrpcStatus:
			if n := parseLength(h.value); n >= 0 {
				res.grpcStatus, res.hasGrpc = int(n), true
			}
		}
	}
	if res.chunked {
		res.length = -1 // Transfer-Encoding wins (RFC 9112 section 6.3)
	}
	return true
}

// bodyless reports whether a response to method with this status has no body
// whatever its fields say.
func (res *fastRes) bodyless(method string) bool {
	return method == "HEAD" || res.status == 204 || res.status == 304 || res.status < 200
}
