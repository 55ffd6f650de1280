package proxy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// Access logs, as App Mesh's logging.accessLog.file: Envoy's default text line, a text
// pattern, or JSON fields, all written with Envoy's command operators (%RESPONSE_CODE%,
// %REQ(X-REQUEST-ID)%, ...). The request path only captures values into an entry and
// hands it to a buffered channel; one goroutine per file formats and writes. When the
// channel is full the entry is dropped and counted (canarymesh_access_log_dropped_total).

// envoyDefaultFormat is Envoy's default access log format.
const envoyDefaultFormat = `[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" ` +
	`%RESPONSE_CODE% %RESPONSE_FLAGS% %BYTES_RECEIVED% %BYTES_SENT% %DURATION% ` +
	`%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% "%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" ` +
	`"%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" "%UPSTREAM_HOST%"` + "\n"

const logQueue = 1024

type logOp uint8

const (
	opLiteral logOp = iota
	opStartTime
	opReq
	opResp
	opProtocol
	opCode
	opFlags
	opBytesIn
	opBytesOut
	opDuration
	opUpstreamHost
	opUpstreamCluster
	opRoute
	opRemote
	opRemoteNoPort
	opUpstreamServiceTime
)

var logOps = map[string]logOp{
	"START_TIME": opStartTime, "REQ": opReq, "RESP": opResp, "PROTOCOL": opProtocol,
	"RESPONSE_CODE": opCode, "RESPONSE_FLAGS": opFlags, "BYTES_RECEIVED": opBytesIn,
	"BYTES_SENT": opBytesOut, "DURATION": opDuration, "UPSTREAM_HOST": opUpstreamHost,
	"UPSTREAM_CLUSTER": opUpstreamCluster, "ROUTE_NAME": opRoute,
	"DOWNSTREAM_REMOTE_ADDRESS": opRemote, "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT": opRemoteNoPort,
	"RESPONSE_DURATION": opUpstreamServiceTime,
}

// logSeg is a literal or one command operator.
type logSeg struct {
	op       logOp
	lit      string
	name     string // REQ/RESP: header or pseudo-header (":path")
	alt      string // REQ/RESP: the alternative after '?'
	maxLen   int
	captured int // REQ/RESP: index of the value captured on the request path
}

type logFormat struct {
	json     bool
	segs     []logSeg            // text
	fields   map[string][]logSeg // json
	captures []*logSeg           // REQ/RESP operators, captured in order
}

func compileLogFormat(a *snapshot.AccessLog) (*logFormat, error) {
	if a.Path == "" {
		return nil, fmt.Errorf("path: empty")
	}
	f := &logFormat{}
	switch a.Format {
	case "", "text":
		pattern := a.Pattern
		if pattern == "" {
			pattern = envoyDefaultFormat
		}
		if !strings.HasSuffix(pattern, "\n") {
			pattern += "\n"
		}
		segs, err := parseLogPattern(pattern)
		if err != nil {
			return nil, fmt.Errorf("pattern: %w", err)
		}
		f.segs = segs
	case "json":
		f.json, f.fields = true, map[string][]logSeg{}
		for k, v := range a.Fields {
			segs, err := parseLogPattern(v)
			if err != nil {
				return nil, fmt.Errorf("fields.%s: %w", k, err)
			}
			f.fields[k] = segs
		}
	default:
		return nil, fmt.Errorf("format: %q is not text or json", a.Format)
	}
	f.indexCaptures()
	return f, nil
}

func (f *logFormat) indexCaptures() {
	add := func(segs []logSeg) {
		for i := range segs {
			if segs[i].op == opReq || segs[i].op == opResp {
				segs[i].captured = len(f.captures)
				f.captures = append(f.captures, &segs[i])
			}
		}
	}
	add(f.segs)
	keys := make([]string, 0, len(f.fields))
	for k := range f.fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		add(f.fields[k])
	}
}

// parseLogPattern splits a pattern into literals and %OPERATOR(arg):N% segments.
func parseLogPattern(p string) ([]logSeg, error) {
	var segs []logSeg
	for p != "" {
		i := strings.IndexByte(p, '%')
		if i < 0 {
			segs = append(segs, logSeg{lit: p})
			break
		}
		if i > 0 {
			segs = append(segs, logSeg{lit: p[:i]})
		}
		j := strings.IndexByte(p[i+1:], '%')
		if j < 0 {
			return nil, fmt.Errorf("unterminated operator %q", p[i:])
		}
		seg, err := parseLogOp(p[i+1 : i+1+j])
		if err != nil {
			return nil, err
		}
		segs = append(segs, seg)
		p = p[i+2+j:]
	}
	return segs, nil
}

func parseLogOp(s string) (logSeg, error) {
	if s == "" {
		return logSeg{lit: "%"}, nil
	}
	seg := logSeg{}
	if k := strings.LastIndex(s, "):"); k >= 0 {
		n, err := strconv.Atoi(s[k+2:])
		if err != nil {
			return seg, fmt.Errorf("operator %%%s%%: bad length", s)
		}
		seg.maxLen, s = n, s[:k+1]
	}
	name, arg := s, ""
	if k := strings.IndexByte(s, '('); k >= 0 && strings.HasSuffix(s, ")") {
		name, arg = s[:k], s[k+1:len(s)-1]
	}
	op, ok := logOps[name]
	if !ok {
		return seg, fmt.Errorf("unknown operator %%%s%%", s)
	}
	seg.op = op
	if op == opReq || op == opResp {
		if arg == "" {
			return seg, fmt.Errorf("operator %%%s%% needs a header name", s)
		}
		seg.name, seg.alt, _ = strings.Cut(arg, "?")
	}
	return seg, nil
}

// logEntry is what the request path captures for one access log line.
type logEntry struct {
	f            *logFormat
	start        time.Time
	dur          time.Duration
	upstreamTime time.Duration
	proto        string
	code         int
	flags        string
	bytesIn      int64
	bytesOut     int64
	upstreamHost string
	cluster      string
	route        string
	remote       string
	values       []string // the REQ/RESP captures, in f.captures order
}

// logBase is the part of an access log entry every front end fills the same way.
func (t *tally) logBase(end time.Time) logEntry {
	e := logEntry{f: t.lc.logFmt, start: t.start, dur: end.Sub(t.start), upstreamTime: t.upstreamTime,
		code: t.code, flags: t.flags, bytesOut: t.bytesOut}
	if t.ep != nil {
		e.upstreamHost = t.ep.addr
	}
	if t.up != nil {
		e.cluster = t.up.stats.name
	}
	if t.route != nil {
		e.route = t.route.name
	}
	return e
}

func (x *exchange) logEntry(end time.Time) logEntry {
	e := x.logBase(end)
	e.proto, e.remote = x.r.Proto, x.r.RemoteAddr
	if x.r.ContentLength > 0 {
		e.bytesIn = x.r.ContentLength
	}
	f := e.f
	e.values = make([]string, len(f.captures))
	for i, s := range f.captures {
		v := x.capture(s.op, s.name)
		if v == "" && s.alt != "" {
			v = x.capture(s.op, s.alt)
		}
		e.values[i] = v
	}
	return e
}

func (x *exchange) capture(op logOp, name string) string {
	if op == opResp {
		return x.w.Header().Get(name)
	}
	switch strings.ToLower(name) {
	case ":method":
		return x.r.Method
	case ":path":
		return x.r.URL.RequestURI()
	case ":authority":
		return x.r.Host
	case ":scheme":
		if x.r.TLS != nil {
			return "https"
		}
		return "http"
	}
	return x.r.Header.Get(name)
}

// value renders one operator of an entry; ok is false when it has no value ("-").
func (e *logEntry) value(s *logSeg) (string, bool) {
	var v string
	switch s.op {
	case opLiteral:
		return s.lit, true
	case opStartTime:
		v = e.start.UTC().Format("2006-01-02T15:04:05.000Z")
	case opReq, opResp:
		v = e.values[s.captured]
	case opProtocol:
		v = e.proto
	case opCode:
		v = strconv.Itoa(e.code)
	case opFlags:
		v = e.flags
	case opBytesIn:
		v = strconv.FormatInt(e.bytesIn, 10)
	case opBytesOut:
		v = strconv.FormatInt(e.bytesOut, 10)
	case opDuration:
		v = strconv.FormatInt(e.dur.Milliseconds(), 10)
	case opUpstreamServiceTime:
		if e.upstreamTime > 0 {
			v = strconv.FormatInt(e.upstreamTime.Milliseconds(), 10)
		}
	case opUpstreamHost:
		v = e.upstreamHost
	case opUpstreamCluster:
		v = e.cluster
	case opRoute:
		v = e.route
	case opRemote:
		v = e.remote
	case opRemoteNoPort:
		v, _ = splitHostPort(e.remote)
	}
	if s.maxLen > 0 && len(v) > s.maxLen {
		v = v[:s.maxLen]
	}
	return v, v != ""
}

func (e *logEntry) write(w *bufio.Writer) {
	if !e.f.json {
		for i := range e.f.segs {
			v, ok := e.value(&e.f.segs[i])
			if !ok {
				v = "-"
			}
			w.WriteString(v)
		}
		return
	}
	obj := make(map[string]any, len(e.f.fields))
	for k, segs := range e.f.fields {
		obj[k] = e.jsonValue(segs)
	}
	data, _ := json.Marshal(obj)
	w.Write(data)
	w.WriteByte('\n')
}

// jsonValue is a number for a lone numeric operator, null for a lone operator without a
// value, and a string otherwise.
func (e *logEntry) jsonValue(segs []logSeg) any {
	if len(segs) == 1 && segs[0].op != opLiteral {
		v, ok := e.value(&segs[0])
		if !ok {
			return nil
		}
		switch segs[0].op {
		case opCode, opBytesIn, opBytesOut, opDuration, opUpstreamServiceTime:
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
		return v
	}
	var b strings.Builder
	for i := range segs {
		v, ok := e.value(&segs[i])
		if !ok {
			v = "-"
		}
		b.WriteString(v)
	}
	return b.String()
}

// accessLogs owns one writer per file, shared by the listeners logging there.
type accessLogs struct {
	mu      sync.Mutex
	writers map[string]*logWriter
	dropped *atomic.Uint64
}

func newAccessLogs(dropped *atomic.Uint64) *accessLogs {
	return &accessLogs{writers: map[string]*logWriter{}, dropped: dropped}
}

func (a *accessLogs) get(path string) (*logWriter, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if w := a.writers[path]; w != nil {
		return w, nil
	}
	var out io.Writer
	var closer io.Closer
	switch path {
	case "/dev/stdout":
		out = os.Stdout
	case "/dev/stderr":
		out = os.Stderr
	default:
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		out, closer = f, f
	}
	w := &logWriter{out: out, closer: closer, ch: make(chan logEntry, logQueue), dropped: a.dropped,
		stop: make(chan struct{}), done: make(chan struct{})}
	go w.run()
	a.writers[path] = w
	return w, nil
}

// close drains and closes every writer.
func (a *accessLogs) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for p, w := range a.writers {
		close(w.stop)
		<-w.done
		delete(a.writers, p)
	}
}

type logWriter struct {
	out     io.Writer
	closer  io.Closer
	ch      chan logEntry
	dropped *atomic.Uint64
	stop    chan struct{} // the channel itself is never closed: senders may race with close
	done    chan struct{}
}

func (w *logWriter) send(e logEntry) {
	select {
	case w.ch <- e:
	default:
		w.dropped.Add(1)
	}
}

func (w *logWriter) run() {
	defer close(w.done)
	bw := bufio.NewWriterSize(w.out, 32<<10)
	for {
		select {
		case e := <-w.ch:
			e.write(bw)
			if len(w.ch) == 0 {
				bw.Flush()
			}
		case <-w.stop:
			for {
				select {
				case e := <-w.ch:
					e.write(bw)
				default:
					bw.Flush()
					if w.closer != nil {
						w.closer.Close()
					}
					return
				}
			}
		}
	}
}
