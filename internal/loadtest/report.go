package loadtest

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

const barChar = "■"

// Report writes hey's summary: totals, the response time histogram, the latency
// distribution, and the status code and error distributions.
func (r *Result) Report(w io.Writer) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "\nSummary:\n")
	fmt.Fprintf(b, "  Total:\t%s secs\n", secs(r.Total))
	fmt.Fprintf(b, "  Slowest:\t%s secs\n", secs(r.Slowest))
	fmt.Fprintf(b, "  Fastest:\t%s secs\n", secs(r.Fastest))
	fmt.Fprintf(b, "  Average:\t%s secs\n", secs(r.Average))
	fmt.Fprintf(b, "  Requests/sec:\t%s\n", strconv.FormatFloat(r.RPS, 'f', 4, 64))
	if r.Rate > 0 {
		fmt.Fprintf(b, "  Target rate:\t%s req/s (open model, latency from scheduled send)\n", strconv.FormatFloat(r.Rate, 'f', -1, 64))
		if r.Missed > 0 {
			fmt.Fprintf(b, "  Missed:\t%d requests due but not sent (every -c slot in flight)\n", r.Missed)
		}
	}
	if r.SizeTotal > 0 && r.Requests > 0 {
		fmt.Fprintf(b, "  \n  Total data:\t%d bytes\n", r.SizeTotal)
		fmt.Fprintf(b, "  Size/request:\t%d bytes\n", r.SizeTotal/r.Requests)
	}

	fmt.Fprintf(b, "\nResponse time histogram:\n%s\n", histogramBars(r.Histogram))

	fmt.Fprintf(b, "Latency distribution:\n")
	for _, p := range r.Latencies {
		fmt.Fprintf(b, "  %s%% in %s secs\n", strconv.FormatFloat(p.Percent, 'f', -1, 64), secs(p.Latency))
	}

	fmt.Fprintf(b, "\nStatus code distribution:\n")
	for _, code := range sortedKeys(r.StatusCodes) {
		fmt.Fprintf(b, "  [%d]\t%d responses\n", code, r.StatusCodes[code])
	}
	if len(r.ErrorDist) > 0 {
		fmt.Fprintf(b, "\nError distribution:\n")
		for _, msg := range sortedKeys(r.ErrorDist) {
			fmt.Fprintf(b, "  [%d]\t%s\n", r.ErrorDist[msg], msg)
		}
	}
	fmt.Fprintln(b)
	return b.Flush()
}

// histogramBars draws hey's bars: 40 characters for the fullest bucket.
func histogramBars(buckets []Bucket) string {
	var most int64
	for _, bk := range buckets {
		most = max(most, bk.Count)
	}
	var s strings.Builder
	for _, bk := range buckets {
		var bar int64
		if most > 0 {
			bar = (bk.Count*40 + most/2) / most
		}
		fmt.Fprintf(&s, "  %4.3f [%d]\t|%s\n", bk.Mark.Seconds(), bk.Count, strings.Repeat(barChar, int(bar)))
	}
	return s.String()
}

// secs formats as hey does: seconds with four decimals.
func secs(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', 4, 64)
}

func sortedKeys[K int | string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
