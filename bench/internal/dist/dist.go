// Package dist is a sorted sample of durations and its nearest-rank quantiles, as the
// benchmarks' reports use them.
package dist

import (
	"slices"
	"time"
)

// Dist is a sorted sample of durations.
type Dist []time.Duration

// Sorted returns a sorted copy of d.
func Sorted(d []time.Duration) Dist {
	out := slices.Clone(d)
	slices.Sort(out)
	return out
}

// Q is the q-quantile (nearest rank), zero for an empty sample.
func (d Dist) Q(q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	i := int(q*float64(len(d))+0.5) - 1
	return d[min(max(i, 0), len(d)-1)]
}

// Max is the largest value, zero for an empty sample.
func (d Dist) Max() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[len(d)-1]
}
