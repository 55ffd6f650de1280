package loadtest

import (
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Percentiles are the latency percentiles a Result reports: hey's, and 99.9.
var Percentiles = []float64{10, 25, 50, 75, 90, 95, 99, 99.9}

// The histogram records nanoseconds with 3 significant digits (0.1% error) from 1µs to
// one hour; slower responses are recorded as one hour. About 300 KB per run.
const (
	histLowest  = int64(time.Microsecond)
	histHighest = int64(time.Hour)
	histDigits  = 3
	histBuckets = 10 // hey's response time histogram has 10 buckets plus the slowest
)

// Result is what a load test measured. Latencies are of responses; failed requests
// (no response) are counted in Errors and ErrorDist only, as hey does.
type Result struct {
	Total     time.Duration // wall time of the run
	Requests  int64         // responses, of any status
	Errors    int64         // requests that got no response
	Fastest   time.Duration
	Slowest   time.Duration
	Average   time.Duration
	RPS       float64 // responses per second
	SizeTotal int64   // response body bytes

	StatusCodes map[int]int64
	ErrorDist   map[string]int64
	Latencies   []Percentile
	Histogram   []Bucket

	// Open model only: the target rate, and the requests that were due before the end
	// but never sent because -c requests were already in flight.
	Rate   float64
	Missed int64

	hist *hdrhistogram.Histogram
}

// Percentile is one line of the latency distribution.
type Percentile struct {
	Percent float64
	Latency time.Duration
}

// Bucket is one bar of the response time histogram: Count responses took longer than
// the previous bucket's Mark and at most Mark.
type Bucket struct {
	Mark  time.Duration
	Count int64
}

// Percentile returns the latency under which p percent of responses completed.
func (r *Result) Percentile(p float64) time.Duration {
	if r.hist == nil || r.hist.TotalCount() == 0 {
		return 0
	}
	return r.clamp(time.Duration(r.hist.ValueAtPercentile(p)))
}

// clamp keeps the histogram's rounded values within the exact fastest and slowest.
func (r *Result) clamp(d time.Duration) time.Duration {
	return min(max(d, r.Fastest), r.Slowest)
}

// collector gathers results from every worker. One mutex is enough: a record is a few
// additions, far cheaper than the HTTP round trip it follows.
type collector struct {
	mu       sync.Mutex
	hist     *hdrhistogram.Histogram
	min, max time.Duration
	sum      time.Duration
	size     int64
	codes    map[int]int64
	errs     map[string]int64

	// read by the progress reporter without the lock
	requests, errors atomic.Int64
}

func newCollector() *collector {
	return &collector{
		hist:  hdrhistogram.New(histLowest, histHighest, histDigits),
		min:   time.Duration(math.MaxInt64),
		codes: map[int]int64{},
		errs:  map[string]int64{},
	}
}

func (c *collector) record(code int, lat time.Duration, size int64) {
	c.mu.Lock()
	v := min(max(int64(lat), histLowest), histHighest)
	_ = c.hist.RecordValue(v) // in range by construction
	c.min = min(c.min, lat)
	c.max = max(c.max, lat)
	c.sum += lat
	c.size += size
	c.codes[code]++
	c.mu.Unlock()
	c.requests.Add(1)
}

func (c *collector) recordError(err error) {
	c.mu.Lock()
	c.errs[err.Error()]++
	c.mu.Unlock()
	c.requests.Add(1)
	c.errors.Add(1)
}

func (c *collector) progress(elapsed time.Duration) Progress {
	p := Progress{Elapsed: elapsed, Requests: c.requests.Load(), Errors: c.errors.Load()}
	if s := elapsed.Seconds(); s > 0 {
		p.RPS = float64(p.Requests) / s
	}
	return p
}

// result summarises the run; call it once every worker has stopped.
func (c *collector) result(total time.Duration) *Result {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.hist.TotalCount()
	r := &Result{
		Total:       total,
		Requests:    n,
		Errors:      c.errors.Load(),
		SizeTotal:   c.size,
		StatusCodes: c.codes,
		ErrorDist:   c.errs,
		hist:        c.hist,
	}
	if n == 0 {
		return r
	}
	r.Fastest, r.Slowest = c.min, c.max
	r.Average = c.sum / time.Duration(n)
	if total > 0 {
		r.RPS = float64(n) / total.Seconds()
	}
	for _, p := range Percentiles {
		r.Latencies = append(r.Latencies, Percentile{Percent: p, Latency: r.Percentile(p)})
	}
	r.Histogram = r.buckets()
	return r
}

// buckets spreads the responses over hey's ten equal-width buckets from the fastest to
// the slowest (the last mark is the slowest itself). Each histogram bar counts in the
// first bucket whose mark is at or above the bar's middle value.
func (r *Result) buckets() []Bucket {
	marks := make([]Bucket, histBuckets+1)
	width := (r.Slowest - r.Fastest) / histBuckets
	for i := range histBuckets {
		marks[i].Mark = r.Fastest + width*time.Duration(i)
	}
	marks[histBuckets].Mark = r.Slowest
	for _, bar := range r.hist.Distribution() {
		if bar.Count == 0 {
			continue
		}
		v := r.clamp(time.Duration(bar.From + (bar.To-bar.From)/2))
		i := sort.Search(len(marks), func(i int) bool { return marks[i].Mark >= v })
		marks[min(i, histBuckets)].Count += bar.Count
	}
	return marks
}
