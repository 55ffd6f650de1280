package proxy

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// request is what routing looks at, taken from the request once. It is independent of
// net/http so that a purpose-built HTTP/1.1 front end can fill it from its own parser.
type request struct {
	method string
	scheme string // "http" or "https"
	host   string // Host / :authority without the port
	port   int    // the port from Host, else the listener's declared port
	path   string // escaped path, without the query
	query  string // raw query, without '?'
	header headerSource
}

// headerSource gives header values by canonical name.
type headerSource interface {
	values(canonicalName string) []string
}

// stdHeader adapts http.Header; a map converts to an interface without allocating.
type stdHeader http.Header

func (h stdHeader) values(k string) []string { return h[k] }

// stringKind says how a stringMatcher compares.
type stringKind uint8

const (
	matchAny stringKind = iota
	matchExact
	matchPrefix
	matchSuffix
	matchRegex
	matchRange
	matchPresent
)

type stringMatcher struct {
	kind       stringKind
	s          string
	re         *regexp.Regexp
	start, end int64 // range: [start, end)
	foldCase   bool  // hostnames compare case-insensitively
}

func (m *stringMatcher) match(v string) bool {
	switch m.kind {
	case matchAny, matchPresent:
		return true
	case matchExact:
		if m.foldCase {
			return strings.EqualFold(v, m.s)
		}
		return v == m.s
	case matchPrefix:
		return len(v) >= len(m.s) && (v[:len(m.s)] == m.s || m.foldCase && strings.EqualFold(v[:len(m.s)], m.s))
	case matchSuffix:
		t := len(v) - len(m.s)
		return t >= 0 && (v[t:] == m.s || m.foldCase && strings.EqualFold(v[t:], m.s))
	case matchRegex:
		return m.re.MatchString(v)
	case matchRange:
		n, ok := parseInt(v)
		return ok && n >= m.start && n < m.end
	}
	return false
}

// parseInt parses a decimal integer without allocating on failure (strconv does).
func parseInt(s string) (int64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	neg := s[0] == '-'
	if neg || s[0] == '+' {
		s = s[1:]
		if s == "" {
			return 0, false
		}
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

type headerMatcher struct {
	name   string // canonical
	m      stringMatcher
	invert bool
}

func (h *headerMatcher) match(src headerSource) bool {
	vs := src.values(h.name)
	var ok bool
	switch {
	case len(vs) == 0:
		ok = false
	case len(vs) == 1:
		ok = h.m.match(vs[0])
	default: // as Envoy does, several values match as one comma-joined value
		ok = h.m.match(strings.Join(vs, ","))
	}
	return ok != h.invert
}

type queryMatcher struct {
	name    string
	exact   string
	present bool // only presence is required
}

// matcher is a compiled snapshot.Match. Every condition that is set must hold.
type matcher struct {
	prefix      string
	path        stringMatcher
	method      string
	scheme      string
	port        int
	hostname    stringMatcher
	grpcService string
	grpcMethod  string
	grpc        bool // the route is a gRPC route: service/method are read from the path
	headers     []headerMatcher
	query       []queryMatcher
}

// match reports whether r satisfies every condition. It does not allocate (except when a
// header matched by value arrives several times, which joins the values).
func (m *matcher) match(r *request) bool {
	if m.method != "" && r.method != m.method {
		return false
	}
	if m.scheme != "" && r.scheme != m.scheme {
		return false
	}
	if m.port != 0 && r.port != m.port {
		return false
	}
	if m.prefix != "" && !strings.HasPrefix(r.path, m.prefix) {
		return false
	}
	if m.path.kind != matchAny && !m.path.match(r.path) {
		return false
	}
	if m.hostname.kind != matchAny && !m.hostname.match(r.host) {
		return false
	}
	if m.grpc && !m.matchGRPC(r.path) {
		return false
	}
	for i := range m.headers {
		if !m.headers[i].match(r.header) {
			return false
		}
	}
	for i := range m.query {
		if !m.query[i].match(r.query) {
			return false
		}
	}
	return true
}

// matchGRPC checks the service and method of a gRPC path, /package.Service/Method.
func (m *matcher) matchGRPC(path string) bool {
	if m.grpcService == "" && m.grpcMethod == "" {
		return true
	}
	if len(path) < 2 || path[0] != '/' {
		return false
	}
	svc, method, ok := strings.Cut(path[1:], "/")
	if !ok {
		return false
	}
	return (m.grpcService == "" || svc == m.grpcService) && (m.grpcMethod == "" || method == m.grpcMethod)
}

// match looks for the parameter in a raw query without decoding it unless it has to.
func (q *queryMatcher) match(raw string) bool {
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(pair, "=")
		if k != q.name && !(strings.ContainsAny(k, "%+") && unescapeQuery(k) == q.name) {
			continue
		}
		if q.present {
			return true
		}
		if v == q.exact || strings.ContainsAny(v, "%+") && unescapeQuery(v) == q.exact {
			return true
		}
	}
	return false
}

func compileMatch(m *snapshot.Match, protocol string) (matcher, error) {
	out := matcher{
		prefix: m.Prefix, method: m.Method, scheme: m.Scheme, port: m.Port,
		grpcService: m.GRPCService, grpcMethod: m.GRPCMethod,
		grpc: protocol == "grpc" || m.GRPCService != "" || m.GRPCMethod != "",
	}
	var err error
	if m.Path != nil {
		if out.path, err = compileString(m.Path, false); err != nil {
			return out, fmt.Errorf("match.path: %w", err)
		}
	}
	if m.Hostname != nil {
		if out.hostname, err = compileString(m.Hostname, true); err != nil {
			return out, fmt.Errorf("match.hostname: %w", err)
		}
	}
	for i := range m.Headers {
		h, err := compileHeader(&m.Headers[i])
		if err != nil {
			return out, fmt.Errorf("match.headers[%d]: %w", i, err)
		}
		out.headers = append(out.headers, h)
	}
	for i := range m.Metadata {
		h, err := compileHeader(&m.Metadata[i])
		if err != nil {
			return out, fmt.Errorf("match.metadata[%d]: %w", i, err)
		}
		out.headers = append(out.headers, h)
	}
	for i, q := range m.Query {
		if q.Name == "" {
			return out, fmt.Errorf("match.query[%d].name: empty", i)
		}
		qm := queryMatcher{name: q.Name, present: q.Exact == nil}
		if q.Exact != nil {
			qm.exact = *q.Exact
		}
		out.query = append(out.query, qm)
	}
	return out, nil
}

func compileString(s *snapshot.StringMatch, fold bool) (stringMatcher, error) {
	out := stringMatcher{foldCase: fold}
	n := 0
	if s.Exact != "" {
		out.kind, out.s, n = matchExact, s.Exact, n+1
	}
	if s.Prefix != "" {
		out.kind, out.s, n = matchPrefix, s.Prefix, n+1
	}
	if s.Suffix != "" {
		out.kind, out.s, n = matchSuffix, s.Suffix, n+1
	}
	if s.Regex != "" {
		re, err := compileRegex(s.Regex)
		if err != nil {
			return out, err
		}
		out.kind, out.re, n = matchRegex, re, n+1
	}
	if n > 1 {
		return out, fmt.Errorf("set exactly one of exact, prefix, suffix and regex")
	}
	return out, nil
}

// compileRegex anchors the expression: App Mesh (Envoy's safe_regex) matches the whole value.
func compileRegex(expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(`^(?:` + expr + `)$`)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", expr, err)
	}
	return re, nil
}

func compileHeader(h *snapshot.HeaderMatch) (headerMatcher, error) {
	if h.Name == "" {
		return headerMatcher{}, fmt.Errorf("name: empty")
	}
	out := headerMatcher{name: http.CanonicalHeaderKey(h.Name), invert: h.Invert, m: stringMatcher{kind: matchPresent}}
	n := 0
	set := func(k stringKind, v *string) {
		if v != nil {
			out.m.kind, out.m.s, n = k, *v, n+1
		}
	}
	set(matchExact, h.Exact)
	set(matchPrefix, h.Prefix)
	set(matchSuffix, h.Suffix)
	if h.Regex != nil {
		re, err := compileRegex(*h.Regex)
		if err != nil {
			return out, err
		}
		out.m.kind, out.m.re, n = matchRegex, re, n+1
	}
	if h.Range != nil {
		if h.Range.End <= h.Range.Start {
			return out, fmt.Errorf("range: end %d is not above start %d", h.Range.End, h.Range.Start)
		}
		out.m.kind, out.m.start, out.m.end, n = matchRange, h.Range.Start, h.Range.End, n+1
	}
	if n > 1 {
		return out, fmt.Errorf("set at most one of exact, prefix, suffix, regex and range")
	}
	return out, nil
}

func unescapeQuery(s string) string {
	u, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return u
}
