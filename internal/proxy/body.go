package proxy

import (
	"errors"
	"io"
	"sync"
)

// maxReplay is how much of a request body is kept so that the request can be retried.
// Bodies that grow beyond it stream on and are not retried, as with Envoy's buffer limit.
const maxReplay = 64 << 10

var (
	errStaleAttempt = errors.New("request body: attempt superseded by a retry")
	errReplayLost   = errors.New("request body: too large to replay")
)

// replayBody lets a request body be sent again on retry. It does not read ahead: the
// body streams to the first attempt as the client sends it (a gRPC stream keeps
// flowing), and what has been read so far is kept, up to maxReplay, for the next
// attempt. A superseded attempt's reader fails from then on, so two attempts never read
// the client's body at once.
type replayBody struct {
	srcMu sync.Mutex // serialises reads of src
	src   io.Reader

	mu     sync.Mutex // guards the fields below; never held while src blocks
	buf    []byte     // everything read from src, while within maxReplay
	total  int        // bytes read from src
	over   bool       // more than maxReplay was read: no replay
	srcErr error      // src's final error, io.EOF at its end
	gen    int        // the current attempt
}

func newReplayBody(src io.Reader) *replayBody { return &replayBody{src: src} }

// attempt returns the body for a new attempt, superseding the previous one.
func (b *replayBody) attempt() io.ReadCloser {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gen++
	return &replayReader{b: b, gen: b.gen}
}

// replayable reports whether everything read so far can still be sent again.
func (b *replayBody) replayable() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.over
}

func (b *replayBody) release() {
	b.mu.Lock()
	b.buf = nil
	b.over = true
	b.mu.Unlock()
}

type replayReader struct {
	b   *replayBody
	gen int
	pos int
}

func (r *replayReader) Read(p []byte) (int, error) {
	if n, done, err := r.fromBuffer(p); done {
		return n, err
	}
	b := r.b
	b.srcMu.Lock()
	defer b.srcMu.Unlock()
	// Another attempt may have read while this one waited for srcMu.
	if n, done, err := r.fromBuffer(p); done {
		return n, err
	}
	n, err := b.src.Read(p)
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total += n
	if !b.over && len(b.buf)+n <= maxReplay {
		b.buf = append(b.buf, p[:n]...)
	} else {
		b.over, b.buf = true, nil
	}
	if err != nil {
		b.srcErr = err
	}
	if r.gen != b.gen {
		return 0, errStaleAttempt // what was read is kept for the current attempt
	}
	r.pos += n
	return n, err
}

// fromBuffer serves what has already been read from src; done is false when the
// caller must read from src itself.
func (r *replayReader) fromBuffer(p []byte) (n int, done bool, err error) {
	b := r.b
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case r.gen != b.gen:
		return 0, true, errStaleAttempt
	case r.pos < len(b.buf):
		n = copy(p, b.buf[r.pos:])
		r.pos += n
		return n, true, nil
	case r.pos < b.total: // bytes this attempt has not seen are gone
		return 0, true, errReplayLost
	case b.srcErr != nil:
		return 0, true, b.srcErr
	}
	return 0, false, nil
}

// Close does not close the client's body, which a later attempt may still need; the
// server closes it when the request ends.
func (r *replayReader) Close() error { return nil }
