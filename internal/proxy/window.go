package proxy

import (
	"sync"
	"sync/atomic"
	"time"
)

// WindowStats is one virtual node's traffic over a recent window, as the canary analysis
// reads it: Flagger's request-success-rate (percent of non-5xx) and request-duration (P99).
type WindowStats struct {
	Requests  uint64
	Errors5xx uint64
	// SuccessRate is the percentage of requests that were not 5xx (100 with no errors).
	SuccessRate float64
	// P99 is interpolated within a latency bucket whose bounds are 25% apart.
	P99 time.Duration
	// NoData is true when no request completed in the window; the other fields are zero.
	NoData bool
}

const (
	windowSeconds  = 600 // the longest window Window can answer
	latencyBuckets = 72
	// latencyBase is the upper bound of the first latency bucket; each next bound is
	// 25% larger, so the last one is about 12 minutes.
	latencyBase = 100 * time.Microsecond
)

// latencyBoundsUS are the windows' latency bucket upper bounds in microseconds.
var latencyBoundsUS = func() [latencyBuckets]int64 {
	var b [latencyBuckets]int64
	v := float64(latencyBase.Microseconds())
	for i := range b {
		b[i] = int64(v)
		v *= 1.25
	}
	return b
}()

// windowSlot is one second of one virtual node's traffic.
type windowSlot struct {
	sec      atomic.Int64 // the unix second the counts belong to
	requests atomic.Uint32
	errors   atomic.Uint32
	latency  [latencyBuckets]atomic.Uint32
}

// window is a ring of per-second slots. The ring (about 180 KB) is allocated on first
// use, so a proxy that knows many virtual nodes pays only for those it sends traffic to.
type window struct {
	mu   sync.Mutex // taken once per second per node, to recycle a slot
	ring atomic.Pointer[[windowSeconds]windowSlot]
}

func (w *window) slot(sec int64) *windowSlot {
	ring := w.ring.Load()
	if ring == nil {
		w.mu.Lock()
		if ring = w.ring.Load(); ring == nil {
			ring = new([windowSeconds]windowSlot)
			w.ring.Store(ring)
		}
		w.mu.Unlock()
	}
	s := &ring[sec%windowSeconds]
	if s.sec.Load() != sec {
		w.mu.Lock()
		if s.sec.Load() != sec {
			s.requests.Store(0)
			s.errors.Store(0)
			for i := range s.latency {
				s.latency[i].Store(0)
			}
			s.sec.Store(sec)
		}
		w.mu.Unlock()
	}
	return s
}

// record counts one completed request at time now.
func (w *window) record(now time.Time, code int, latency time.Duration) {
	s := w.slot(now.Unix())
	s.requests.Add(1)
	if code >= 500 && code <= 599 {
		s.errors.Add(1)
	}
	s.latency[latencyIndex(latency)].Add(1)
}

func latencyIndex(d time.Duration) int {
	us := d.Microseconds()
	lo, hi := 0, latencyBuckets-1 // the last bucket also takes everything above it
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if latencyBoundsUS[m] < us {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo
}

// stats sums the slots of the last d (whole seconds, the current one included).
func (w *window) stats(now time.Time, d time.Duration) WindowStats {
	ring := w.ring.Load()
	if ring == nil {
		return WindowStats{NoData: true}
	}
	secs := int64(d / time.Second)
	if secs < 1 {
		secs = 1
	}
	if secs > windowSeconds {
		secs = windowSeconds
	}
	cur := now.Unix()
	var out WindowStats
	var lat [latencyBuckets]uint64
	for sec := cur - secs + 1; sec <= cur; sec++ {
		s := &ring[sec%windowSeconds]
		if s.sec.Load() != sec {
			continue
		}
		out.Requests += uint64(s.requests.Load())
		out.Errors5xx += uint64(s.errors.Load())
		for i := range lat {
			lat[i] += uint64(s.latency[i].Load())
		}
	}
	if out.Requests == 0 {
		return WindowStats{NoData: true}
	}
	out.SuccessRate = float64(out.Requests-min(out.Errors5xx, out.Requests)) / float64(out.Requests) * 100
	out.P99 = quantile(&lat, 0.99)
	return out
}

// quantile interpolates linearly within the bucket that holds the q-th observation, as
// Prometheus' histogram_quantile does.
func quantile(lat *[latencyBuckets]uint64, q float64) time.Duration {
	var total uint64
	for _, n := range lat {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := q * float64(total)
	var seen uint64
	for i, n := range lat {
		if n == 0 || float64(seen+n) < rank {
			seen += n
			continue
		}
		lo := int64(0)
		if i > 0 {
			lo = latencyBoundsUS[i-1]
		}
		hi := latencyBoundsUS[i]
		frac := (rank - float64(seen)) / float64(n)
		return time.Duration(float64(lo)+frac*float64(hi-lo)) * time.Microsecond
	}
	return time.Duration(latencyBoundsUS[latencyBuckets-1]) * time.Microsecond
}
