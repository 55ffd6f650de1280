package canary

import (
	"sync"

	"github.com/canarymesh/canarymesh/internal/store"
)

// queue holds the canaries due for a run. A key is queued at most once however often it
// is added, and is never handed to two workers at once: added while it runs, it is
// queued again when that run is done (client-go's workqueue, without rate limiting).
type queue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	pending []store.Key
	queued  map[store.Key]bool
	active  map[store.Key]bool
	dirty   map[store.Key]bool
	closed  bool
}

func newQueue() *queue {
	q := &queue{queued: map[store.Key]bool{}, active: map[store.Key]bool{}, dirty: map[store.Key]bool{}}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// add queues k unless it is queued already.
func (q *queue) add(k store.Key) {
	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.closed || q.queued[k]:
	case q.active[k]:
		q.dirty[k] = true
	default:
		q.queued[k] = true
		q.pending = append(q.pending, k)
		q.cond.Signal()
	}
}

// get waits for a key and marks it active; ok is false once the queue is closed.
func (q *queue) get() (k store.Key, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.pending) == 0 && !q.closed {
		q.cond.Wait()
	}
	if q.closed {
		return store.Key{}, false
	}
	k = q.pending[0]
	q.pending[0] = store.Key{}
	q.pending = q.pending[1:]
	delete(q.queued, k)
	q.active[k] = true
	return k, true
}

// done ends a run of k, queueing it again if it was added meanwhile.
func (q *queue) done(k store.Key) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.active, k)
	if q.dirty[k] {
		delete(q.dirty, k)
		if !q.closed && !q.queued[k] {
			q.queued[k] = true
			q.pending = append(q.pending, k)
			q.cond.Signal()
		}
	}
}

// close wakes every waiting worker; nothing is handed out after it.
func (q *queue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	q.cond.Broadcast()
}

// idle reports whether nothing is queued or running.
func (q *queue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending) == 0 && len(q.active) == 0
}
