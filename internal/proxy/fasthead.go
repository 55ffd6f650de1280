package proxy

import (
	"bytes"
	"errors"
	"io"
	"net"
	"unsafe"
)

// The fast path's buffers and HTTP/1.1 head parsers. Heads are parsed in place: a
// parsed head is slices of the connection's read buffer, valid until the buffer is
// read into again. Anything the parsers do not accept is not an error for requests:
// the connection goes to net/http, which answers it as it always has (400, 431, h2c,
// upgrades), so the fast path never has to be as complete as net/http.

const (
	downBufSize = 8 << 10 // a downstream connection's read and write buffers
	upBufSize   = 8 << 10 // an upstream connection's read buffer
	// maxUpstreamHead bounds a response head, as the net/http transport's
	// MaxResponseHeaderBytes does.
	maxUpstreamHead = 1 << 20
	maxHeaderFields = 128
)

var (
	errHeadTooLarge = errors.New("head too large")
	errMalformed    = errors.New("malformed HTTP/1.1")
)

// rbuf is a connection's read buffer.
type rbuf struct {
	conn net.Conn
	buf  []byte
	r, w int
}

func (b *rbuf) buffered() int { return b.w - b.r }

// fill reads once from the connection, making room first if it can. errHeadTooLarge
// means the buffer is full of unconsumed bytes.
func (b *rbuf) fill() error {
	if b.r == b.w {
		b.r, b.w = 0, 0
	}
	if b.w == len(b.buf) {
		if b.r == 0 {
			return errHeadTooLarge
		}
		b.w = copy(b.buf, b.buf[b.r:b.w])
		b.r = 0
	}
	n, err := b.conn.Read(b.buf[b.w:])
	b.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// grow doubles the buffer, up to limit; false when it is already there.
func (b *rbuf) grow(limit int) bool {
	if len(b.buf) >= limit {
		return false
	}
	nb := make([]byte, min(2*len(b.buf), limit))
	b.w = copy(nb, b.buf[b.r:b.w])
	b.r = 0
	b.buf = nb
	return true
}

// headEnd returns the length of the head at the start of p (through its empty line),
// or -1 when p does not hold a whole head. from is where to resume a previous search.
func headEnd(p []byte, from int) int {
	for i := max(from, 0); ; {
		j := bytes.IndexByte(p[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
		if i < len(p) && p[i] == '\n' {
			return i + 1
		}
		if i+1 < len(p) && p[i] == '\r' && p[i+1] == '\n' {
			return i + 2
		}
	}
}

// hdrKind names the header fields the fast path looks at.
type hdrKind uint8

const (
	hOther hdrKind = iota
	hHost
	hConnection
	hProxyConnection
	hKeepAlive
	hTE
	hTrailer
	hTransferEncoding
	hUpgrade
	hContentLength
	hExpect
	hRequestID
	hForwardedProto
	hContentType
	hHTTP2Settings
	hProxyAuthenticate
	hProxyAuthorization
	hGrpcStatus
	hOriginalPath
	hServiceTime
	hDropped // named by Connection: not forwarded
)

// hop reports whether a field is hop-by-hop (RFC 9110 section 7.6.1): never forwarded
// as it came.
func (k hdrKind) hop() bool {
	switch k {
	case hConnection, hProxyConnection, hKeepAlive, hTE, hTrailer, hTransferEncoding, hUpgrade,
		hProxyAuthenticate, hProxyAuthorization, hDropped:
		return true
	}
	return false
}

// kindOf classifies a header name (already checked to be a token).
func kindOf(n []byte) hdrKind {
	switch len(n) {
	case 2:
		if eqLower(n, "te") {
			return hTE
		}
	case 4:
		if eqLower(n, "host") {
			return hHost
		}
	case 6:
		if eqLower(n, "expect") {
			return hExpect
		}
	case 7:
		switch {
		case eqLower(n, "trailer"):
			return hTrailer
		case eqLower(n, "upgrade"):
			return hUpgrade
		}
	case 10:
		switch {
		case eqLower(n, "connection"):
			return hConnection
		case eqLower(n, "keep-alive"):
			return hKeepAlive
		}
	case 11:
		if eqLower(n, "grpc-status") {
			return hGrpcStatus
		}
	case 12:
		switch {
		case eqLower(n, "content-type"):
			return hContentType
		case eqLower(n, "x-request-id"):
			return hRequestID
		}
	case 14:
		switch {
		case eqLower(n, "content-length"):
			return hContentLength
		case eqLower(n, "http2-settings"):
			return hHTTP2Settings
		}
	case 16:
		if eqLower(n, "proxy-connection") {
			return hProxyConnection
		}
	case 17:
		switch {
		case eqLower(n, "transfer-encoding"):
			return hTransferEncoding
		case eqLower(n, "x-forwarded-proto"):
			return hForwardedProto
		}
	case 18:
		if eqLower(n, "proxy-authenticate") {
			return hProxyAuthenticate
		}
	case 19:
		if eqLower(n, "proxy-authorization") {
			return hProxyAuthorization
		}
	case 21:
		if eqLower(n, "x-envoy-original-path") {
			return hOriginalPath
		}
	case 29:
		if eqLower(n, "x-envoy-upstream-service-time") {
			return hServiceTime
		}
	}
	return hOther
}

// eqLower compares a token with a lower-case name. Setting bit 0x20 folds letters and
// leaves '-' and digits alone; no other token byte folds onto them.
func eqLower(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := 0; i < len(b); i++ {
		if b[i]|0x20 != lower[i] {
			return false
		}
	}
	return true
}

// equalFold compares bytes with a string, ASCII case-insensitively.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c, d := b[i], s[i]
		if c == d {
			continue
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

// Byte classes of the grammar, as one table.
const (
	cToken = 1 << iota // tchar (RFC 9110)
	cPath              // kept as is in a path by net/url's EscapedPath
	cQuery             // visible ASCII
	cValue             // a field value byte: no control characters but HTAB
)

var charClass = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		isAlnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if isAlnum || bytes.IndexByte([]byte("!#$%&'*+-.^_`|~"), byte(c)) >= 0 {
			t[c] |= cToken
		}
		if isAlnum || bytes.IndexByte([]byte("-._~!$&'()*+,;=:@/[]%"), byte(c)) >= 0 {
			t[c] |= cPath
		}
		if c > 0x20 && c < 0x7f {
			t[c] |= cQuery
		}
		if c == '\t' || c >= 0x20 && c != 0x7f {
			t[c] |= cValue
		}
	}
	return t
}()

func allOf(b []byte, class uint8) bool {
	for _, c := range b {
		if charClass[c]&class == 0 {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// hdr is one header field of a parsed head.
type hdr struct {
	name, value []byte
	kind        hdrKind
}

// parseFields parses the field lines of a head (after its first line, through the
// empty line) into hs. false when a line is not a valid field.
func parseFields(p []byte, hs []hdr) ([]hdr, bool) {
	for {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			return hs, false
		}
		line := p[:i]
		p = p[i+1:]
		if n := len(line); n > 0 && line[n-1] == '\r' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			return hs, true
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || len(hs) == maxHeaderFields {
			return hs, false
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if !allOf(name, cToken) || !allOf(value, cValue) {
			return hs, false
		}
		hs = append(hs, hdr{name: name, value: value, kind: kindOf(name)})
	}
}

// parseLength parses a Content-Length value; -1 when it is not one.
func parseLength(b []byte) int64 {
	if len(b) == 0 || len(b) > 18 {
		return -1
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// hasToken reports whether a comma-separated value lists token (case-insensitively).
func hasToken(v []byte, token string) bool {
	for len(v) > 0 {
		var t []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			t, v = v[:i], v[i+1:]
		} else {
			t, v = v, nil
		}
		if equalFold(trimOWS(t), token) {
			return true
		}
	}
	return false
}

// dropListed marks the fields a Connection header names (other than close and
// keep-alive) as not to be forwarded.
func dropListed(hs []hdr, conn []byte) {
	for len(conn) > 0 {
		var t []byte
		if i := bytes.IndexByte(conn, ','); i >= 0 {
			t, conn = trimOWS(conn[:i]), conn[i+1:]
		} else {
			t, conn = trimOWS(conn), nil
		}
		if len(t) == 0 || equalFold(t, "close") || equalFold(t, "keep-alive") {
			continue
		}
		for i := range hs {
			if hs[i].kind == hOther && equalFold(hs[i].name, str(t)) {
				hs[i].kind = hDropped
			}
		}
	}
}

// str views bytes as a string without copying. The string is only valid while the
// bytes are; callers keep it no longer than the head it points into.
func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// internMethod returns the constant for common methods, so that route matching and
// the access log see an ordinary string.
func internMethod(m []byte) string {
	for _, s := range [...]string{"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"} {
		if string(m) == s {
			return s
		}
	}
	return str(m)
}

// idempotent methods may be sent again on a fresh connection when a reused one turns
// out to be closed, as net/http's transport does.
func idempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}

// parseHex parses a chunk size; -1 when it is not one.
func parseHex(b []byte) int64 {
	if len(b) == 0 || len(b) > 15 {
		return -1
	}
	var n int64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		n = n<<4 | int64(c)
	}
	return n
}

func appendHex(dst []byte, n int64) []byte {
	const digits = "0123456789abcdef"
	if n == 0 {
		return append(dst, '0')
	}
	var tmp [16]byte
	i := len(tmp)
	for n > 0 {
		i--
		tmp[i] = digits[n&15]
		n >>= 4
	}
	return append(dst, tmp[i:]...)
}

func appendInt(dst []byte, n int64) []byte {
	if n == 0 {
		return append(dst, '0')
	}
	var tmp [20]byte
	i := len(tmp)
	for n > 0 {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
	}
	return append(dst, tmp[i:]...)
}
