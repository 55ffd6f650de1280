package workload

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// LogPath is where instance index of workload ns/name writes its output, under the data
// directory; the file before the last rotation is LogPath + ".1".
func LogPath(dataDir, ns, name string, index int) string {
	return filepath.Join(dataDir, "logs", ns, fmt.Sprintf("%s-%d.log", name, index))
}

// ring keeps the last len(buf) bytes written and counts every byte ever written, so a
// follower can ask for everything after the offset it last saw.
type ring struct {
	buf   []byte
	total int64 // bytes ever written
}

func (r *ring) write(p []byte) {
	size := int64(len(r.buf))
	if int64(len(p)) > size {
		r.total += int64(len(p)) - size
		p = p[len(p)-int(size):]
	}
	for len(p) > 0 {
		at := int(r.total % size)
		n := copy(r.buf[at:], p)
		p = p[n:]
		r.total += int64(n)
	}
}

// since returns the kept bytes from absolute offset off on, the offset after them, and
// how many bytes after off were already overwritten.
func (r *ring) since(off int64) (data []byte, next, lost int64) {
	size := int64(len(r.buf))
	first := max(r.total-size, 0)
	if off < first {
		lost, off = first-off, first
	}
	if off >= r.total {
		return nil, r.total, lost
	}
	data = make([]byte, 0, r.total-off)
	for off < r.total {
		at := off % size
		end := min(size, at+(r.total-off))
		data = append(data, r.buf[at:end]...)
		off += end - at
	}
	return data, r.total, lost
}

// sink takes one instance index's output (every revision's process at that index): it
// keeps the tail in memory for Supervisor.Logs and appends everything to a log file,
// rotated to <file>.1 when it reaches maxBytes. Writes never fail: a child must not die
// of SIGPIPE because a disk filled up.
type sink struct {
	mu       sync.Mutex
	ring     ring
	path     string // "" keeps output in memory only
	file     *os.File
	size     int64
	maxBytes int64
	changed  chan struct{} // closed at every write, then replaced
	closed   bool
	log      *slog.Logger
	fileErr  bool // a file error was logged already
}

func newSink(path string, ringBytes int, maxBytes int64, log *slog.Logger) *sink {
	s := &sink{ring: ring{buf: make([]byte, ringBytes)}, path: path, maxBytes: maxBytes,
		changed: make(chan struct{}), log: log}
	if path != "" {
		s.open()
	}
	return s
}

func (s *sink) open() {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		s.fileFailed(err)
		return
	}
	f, err := os.OpenFile(s.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.fileFailed(err)
		return
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		s.fileFailed(err)
		return
	}
	s.file, s.size = f, st.Size()
}

func (s *sink) fileFailed(err error) {
	if !s.fileErr {
		s.log.Warn("instance log file unusable; output kept in memory only", "path", s.path, "err", err)
		s.fileErr = true
	}
}

// Write keeps p; it always reports success.
func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return len(p), nil
	}
	s.ring.write(p)
	if s.file != nil {
		if s.size > 0 && s.size+int64(len(p)) > s.maxBytes {
			s.rotate()
		}
		if s.file != nil {
			n, err := s.file.Write(p)
			s.size += int64(n)
			if err != nil {
				s.fileFailed(err)
			}
		}
	}
	close(s.changed)
	s.changed = make(chan struct{})
	return len(p), nil
}

// notice writes a line of the supervisor's own, marked so it stands out from the
// program's output.
func (s *sink) notice(format string, args ...any) {
	line := fmt.Sprintf("[canarymesh] %s %s\n", time.Now().UTC().Format(time.RFC3339), fmt.Sprintf(format, args...))
	_, _ = s.Write([]byte(line))
}

func (s *sink) rotate() {
	s.file.Close()
	s.file = nil
	if err := os.Rename(s.path, s.path+".1"); err != nil {
		s.fileFailed(err)
	}
	s.open()
}

// since returns output after offset off, the next offset, and a channel closed at the
// next write (nil once the sink is closed and drained).
func (s *sink) since(off int64) ([]byte, int64, int64, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, next, lost := s.ring.since(off)
	if s.closed {
		return data, next, lost, nil
	}
	return data, next, lost, s.changed
}

func (s *sink) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed = true
	if s.file != nil {
		s.file.Close()
		s.file = nil
	}
	close(s.changed)
}

// lineWriter prefixes each complete line with a label and writes it to out under a
// shared lock, so lines of several instances interleave whole. Flush writes a last
// line that has no newline yet.
type lineWriter struct {
	prefix []byte
	mu     *sync.Mutex
	out    io.Writer
	part   []byte
}

func (l *lineWriter) Write(p []byte) (int, error) {
	l.part = append(l.part, p...)
	i := bytes.LastIndexByte(l.part, '\n')
	if i < 0 {
		return len(p), nil
	}
	err := l.emit(l.part[:i+1])
	l.part = append(l.part[:0], l.part[i+1:]...)
	return len(p), err
}

func (l *lineWriter) Flush() error {
	if len(l.part) == 0 {
		return nil
	}
	err := l.emit(append(l.part, '\n'))
	l.part = l.part[:0]
	return err
}

func (l *lineWriter) emit(lines []byte) error {
	if len(l.prefix) == 0 {
		l.mu.Lock()
		defer l.mu.Unlock()
		_, err := l.out.Write(lines)
		return err
	}
	var b bytes.Buffer
	for len(lines) > 0 {
		i := bytes.IndexByte(lines, '\n')
		b.Write(l.prefix)
		b.Write(lines[:i+1])
		lines = lines[i+1:]
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.out.Write(b.Bytes())
	return err
}

// followSinks streams the sinks' output into a pipe: what they hold now, then, with
// follow, every later write until the reader is closed or the sinks close.
func followSinks(sinks []*sink, prefixes []string, follow bool) io.ReadCloser {
	pr, pw := io.Pipe()
	var mu sync.Mutex
	var wg sync.WaitGroup
	done := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { close(done) }) }
	for i, s := range sinks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lw := &lineWriter{prefix: []byte(prefixes[i]), mu: &mu, out: pw}
			pumpSink(s, lw, follow, done)
		}()
	}
	go func() {
		wg.Wait()
		pw.Close()
	}()
	return &pipeReader{PipeReader: pr, stop: stop}
}

func pumpSink(s *sink, lw *lineWriter, follow bool, done <-chan struct{}) {
	defer lw.Flush()
	var off int64
	for {
		data, next, lost, changed := s.since(off)
		off = next
		if lost > 0 {
			if _, err := fmt.Fprintf(lw, "[canarymesh] ... %d bytes dropped ...\n", lost); err != nil {
				return
			}
		}
		if len(data) > 0 {
			if _, err := lw.Write(data); err != nil {
				return
			}
		}
		if !follow || changed == nil {
			return
		}
		select {
		case <-changed:
		case <-done:
			return
		}
	}
}

// pipeReader ends the pumps when the reader is closed.
type pipeReader struct {
	*io.PipeReader
	stop func()
}

func (p *pipeReader) Close() error {
	p.stop()
	return p.PipeReader.CloseWithError(errors.New("log reader closed"))
}
