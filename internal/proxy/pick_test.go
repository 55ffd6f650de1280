package proxy

import (
	"testing"
	"time"
)

func TestSmoothWeighted(t *testing.T) {
	cases := []struct {
		name    string
		weights []int
		n       int
		min     []int
		max     []int
	}{
		{"90/10", []int{90, 10}, 1000, []int{880, 80}, []int{920, 120}},
		{"zero weight gets nothing", []int{100, 0}, 1000, []int{1000, 0}, []int{1000, 0}},
		{"three targets", []int{50, 30, 20}, 1000, []int{490, 290, 190}, []int{510, 310, 210}},
		{"odd weights", []int{7, 3, 1}, 1100, []int{690, 290, 90}, []int{710, 310, 110}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ts []*target
			for _, w := range tc.weights {
				ts = append(ts, &target{weight: w})
			}
			w := newWeighted(ts)
			got := make([]int, len(ts))
			for i := 0; i < tc.n; i++ {
				pick := w.pick()
				for j, t := range ts {
					if pick == t {
						got[j]++
					}
				}
			}
			for j := range ts {
				if got[j] < tc.min[j] || got[j] > tc.max[j] {
					t.Errorf("target %d got %d of %d, want %d..%d", j, got[j], tc.n, tc.min[j], tc.max[j])
				}
			}
		})
	}
}

func TestSmoothWeightedInterleaves(t *testing.T) {
	ts := []*target{{weight: 90}, {weight: 10}}
	w := newWeighted(ts)
	run := 0
	for i := 0; i < 1000; i++ {
		if w.pick() == ts[0] {
			run++
			if run > 9 {
				t.Fatalf("%d picks of the 90 target in a row; smooth WRR interleaves", run)
			}
		} else {
			run = 0
		}
	}
}

func TestWeightedAllZero(t *testing.T) {
	if newWeighted([]*target{{weight: 0}, {weight: 0}}).pick() != nil {
		t.Fatal("all-zero weights must pick nothing")
	}
}

func TestSmoothScheduleLargeWeights(t *testing.T) {
	s := smoothSchedule([]int{1_000_000, 1})
	if len(s) > maxSchedule+1 {
		t.Fatalf("schedule has %d entries", len(s))
	}
	n := 0
	for _, i := range s {
		if i == 1 {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("a tiny positive weight must still be picked once per period, got %d", n)
	}
}

func TestEndpointPick(t *testing.T) {
	u := benchUpstream()
	defer u.retire(0)
	seen := map[string]int{}
	for i := 0; i < 300; i++ {
		seen[u.pick(nil).addr]++
	}
	for _, a := range []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"} {
		if seen[a] != 100 {
			t.Errorf("%s picked %d times of 300, want 100 (round robin)", a, seen[a])
		}
	}
	for i := 0; i < 10; i++ {
		avoid := u.pick(nil)
		if got := u.pick(avoid); got == avoid {
			t.Fatal("a retry must avoid the endpoint that just failed when it can")
		}
	}
}

func TestEndpointPickSkipsEjectedAndUnhealthy(t *testing.T) {
	u := benchUpstream()
	defer u.retire(0)
	u.outlier.Store(&outlierConfig{maxErrors: 1, base: time.Hour, maxPercent: 100})
	ep1 := u.endpoints["127.0.0.1:1"]
	u.observe(ep1, 503)
	u.setHealthy(u.endpoints["127.0.0.1:2"], false)
	for i := 0; i < 20; i++ {
		if a := u.pick(nil).addr; a != "127.0.0.1:3" {
			t.Fatalf("picked %s; only 127.0.0.1:3 is healthy and not ejected", a)
		}
	}
	u.setHealthy(u.endpoints["127.0.0.1:3"], false)
	if a := u.pick(nil).addr; a != "127.0.0.1:1" {
		t.Fatalf("with every healthy endpoint ejected, ejected ones serve (panic mode); got %s", a)
	}
	u.setHealthy(u.endpoints["127.0.0.1:1"], false)
	if ep := u.pick(nil); ep != nil {
		t.Fatalf("no healthy endpoint must pick nothing, got %s", ep.addr)
	}
}

func TestPickDoesNotAllocate(t *testing.T) {
	w := newWeighted([]*target{{weight: 90}, {weight: 10}})
	u := benchUpstream()
	defer u.retire(0)
	if n := testing.AllocsPerRun(1000, func() { w.pick(); u.pick(nil) }); n != 0 {
		t.Fatalf("picking allocates %.1f times", n)
	}
}
