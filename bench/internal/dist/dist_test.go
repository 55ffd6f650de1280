package dist

import (
	"testing"
	"time"
)

func TestQuantiles(t *testing.T) {
	var sample []time.Duration
	for i := 100; i >= 1; i-- {
		sample = append(sample, time.Duration(i)*time.Millisecond)
	}
	d := Sorted(sample)
	if sample[0] != 100*time.Millisecond {
		t.Error("Sorted changed its input")
	}
	for q, want := range map[float64]time.Duration{0.5: 50 * time.Millisecond, 0.99: 99 * time.Millisecond, 1: 100 * time.Millisecond, 0: time.Millisecond} {
		if got := d.Q(q); got != want {
			t.Errorf("Q(%v) = %v, want %v", q, got, want)
		}
	}
	if d.Max() != 100*time.Millisecond || Dist(nil).Q(0.5) != 0 || Dist(nil).Max() != 0 {
		t.Error("Max or the empty sample is wrong")
	}
}
