package loadtest

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestResultPercentilesAndHistogram(t *testing.T) {
	c := newCollector()
	for i := 1; i <= 100; i++ {
		c.record(200, time.Duration(i)*time.Millisecond, 10)
	}
	c.recordError(errors.New("dial tcp: connection refused"))
	res := c.result(2 * time.Second)

	if res.Requests != 100 || res.Errors != 1 || res.RPS != 50 {
		t.Errorf("requests %d, errors %d, rps %v", res.Requests, res.Errors, res.RPS)
	}
	if res.Fastest != time.Millisecond || res.Slowest != 100*time.Millisecond {
		t.Errorf("fastest %v, slowest %v", res.Fastest, res.Slowest)
	}
	if res.Average != 50500*time.Microsecond {
		t.Errorf("average %v, want 50.5ms", res.Average)
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{10, 10 * time.Millisecond}, {50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {99.9, 100 * time.Millisecond}} {
		got := res.Percentile(tt.p)
		if diff := got - tt.want; diff < -tt.want/100 || diff > tt.want/100 {
			t.Errorf("p%v = %v, want %v within 1%%", tt.p, got, tt.want)
		}
	}
	if len(res.Latencies) != len(Percentiles) {
		t.Errorf("%d latency lines, want %d", len(res.Latencies), len(Percentiles))
	}

	if len(res.Histogram) != 11 {
		t.Fatalf("%d histogram buckets, want hey's 11", len(res.Histogram))
	}
	var sum int64
	for _, b := range res.Histogram {
		sum += b.Count
	}
	if sum != 100 {
		t.Errorf("histogram holds %d responses, want 100", sum)
	}
	if first, last := res.Histogram[0].Mark, res.Histogram[10].Mark; first != res.Fastest || last != res.Slowest {
		t.Errorf("marks run %v..%v, want fastest..slowest", first, last)
	}
	// 1..100ms in ten 9.9ms-wide buckets: the middle ones hold about ten each.
	if n := res.Histogram[5].Count; n < 8 || n > 12 {
		t.Errorf("bucket 5 holds %d, want about 10", n)
	}
}

func TestReportIsHeys(t *testing.T) {
	c := newCollector()
	for i := 1; i <= 20; i++ {
		code := 200
		if i%5 == 0 {
			code = 503
		}
		c.record(code, time.Duration(i)*time.Millisecond, 100)
	}
	c.recordError(errors.New(`Get "http://127.0.0.1:1/": dial tcp 127.0.0.1:1: connect: connection refused`))
	c.recordError(errors.New(`Get "http://127.0.0.1:1/": dial tcp 127.0.0.1:1: connect: connection refused`))
	res := c.result(time.Second)

	var b strings.Builder
	if err := res.Report(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"\nSummary:\n",
		"  Total:\t1.0000 secs\n",
		"  Slowest:\t0.0200 secs\n",
		"  Fastest:\t0.0010 secs\n",
		"  Average:\t0.0105 secs\n",
		"  Requests/sec:\t20.0000\n",
		"  Total data:\t2000 bytes\n",
		"  Size/request:\t100 bytes\n",
		"\nResponse time histogram:\n  0.001 [",
		"|" + strings.Repeat(barChar, 40) + "\n",
		"\nLatency distribution:\n  10% in 0.0020 secs\n",
		"  25% in ", "  50% in ", "  75% in ", "  90% in ", "  95% in ", "  99% in ",
		"  99.9% in 0.0200 secs\n",
		"\nStatus code distribution:\n  [200]\t16 responses\n  [503]\t4 responses\n",
		"\nError distribution:\n  [2]\tGet \"http://127.0.0.1:1/\": dial tcp 127.0.0.1:1: connect: connection refused\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q\n%s", want, out)
		}
	}
	if strings.Contains(out, "Target rate") {
		t.Error("closed-model report shows the open model's target rate")
	}
}

func TestReportOpenModelAndEmpty(t *testing.T) {
	res := newCollector().result(time.Second)
	res.Rate, res.Missed = 100, 7
	var b strings.Builder
	if err := res.Report(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"  Target rate:\t100 req/s", "  Missed:\t7 requests", "Status code distribution:"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q\n%s", want, out)
		}
	}
	if strings.Contains(out, "Error distribution") {
		t.Error("an error distribution without errors")
	}
}
