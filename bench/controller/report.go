package main

import (
	"fmt"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/bench/internal/dist"
	"github.com/canarymesh/canarymesh/bench/internal/results"
)

const (
	// targetP99 is the target for the lag of a due analysis.
	targetP99 = time.Second
)

// report renders the scenarios as the results file's canary controller section, a
// column each.
func report(c config, runs []scenario, cmd string) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("## Canary controller\n\n")
	w("`%s` — %s, on %s (%d cores seen, GOMAXPROCS=1), %s.\n\n", cmd,
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), results.CPUModel(), runtime.NumCPU(), runtime.Version())
	w("%d Canaries, each with its own Workload target, analysed every %s: two built-in metric checks\n", c.canaries, c.interval)
	w("and a load-test webhook per round, +1%% weight per round. Real: the controller, the bolt store (a\n")
	w("temporary directory, fsync on), the Workload target, the mesh router, the webhook caller and the\n")
	w("event recorder. Simulated: the supervisor (a stand-in writes every instance ready), the proxies'\n")
	w("windows (healthy) and the load tester (a local endpoint answering 202). *spread*: the releases\n")
	w("spread evenly over one interval, measured for %s from one interval later (the steady state).\n", c.duration)
	w("*burst*: every target released at the same instant, measured for %s from that instant (the\n", c.duration)
	w("first rounds of every canary fall due together). CPU is the whole process', stand-ins included.\n\n")
	row := func(name string, cell func(r *result) string) {
		w("| %s |", name)
		for _, s := range runs {
			w(" %s |", cell(s.r))
		}
		w("\n")
	}
	w("| measure |")
	for _, s := range runs {
		w(" %s |", s.name)
	}
	w("\n| --- |%s\n", strings.Repeat(" --- |", len(runs)))
	row("CPU used, of one core", func(r *result) string {
		return fmt.Sprintf("%.1f%% (%.1f s in %.1f s)", 100*r.cpu.Seconds()/r.wall.Seconds(), r.cpu.Seconds(), r.wall.Seconds())
	})
	row("CPU per analysis round", func(r *result) string { return perRound(r) })
	row("**lag of a round**: its start − (previous round's start + interval), P50 / P99 / max", func(r *result) string { return lags3(r.rounds) })
	row("target P99 < 1 s", func(r *result) string {
		if len(r.rounds) > 0 && r.rounds.Q(0.99) < targetP99 {
			return "met"
		}
		return "**not met**"
	})
	row("lag of the controller's timers: P50 / P99 / max", func(r *result) string { return lags3(r.paced) })
	row("lag of the controller's queue, judging runs: P50 / P99 / max", func(r *result) string { return lags3(r.atOnce) })
	row("analysis rounds/s", func(r *result) string {
		return fmt.Sprintf("%.1f (of %.1f due)", perSec(int64(len(r.rounds)), r.wall), float64(c.canaries)/c.interval.Seconds())
	})
	row("events recorded/s", func(r *result) string { return fmt.Sprintf("%.1f", perSec(r.events, r.wall)) })
	row("store writes/s", func(r *result) string { return fmt.Sprintf("%.1f", perSec(int64(r.writes), r.wall)) })
	row("store write time: P50 / P99 / max", func(r *result) string { return lags3(r.storeW) })
	row("webhook calls/s", func(r *result) string { return fmt.Sprintf("%.1f", perSec(r.hookCalls, r.wall)) })
	row("runs caused by watch events", func(r *result) string { return fmt.Sprint(r.otherRuns) })
	row("setup: start to all Initialized", func(r *result) string { return r.setup.Round(100 * time.Millisecond).String() })
	row("peak RSS of the process so far", func(r *result) string { return fmt.Sprintf("%.0f MB", float64(r.maxRSS)/1024) })
	row("phases at the end", func(r *result) string { return fmt.Sprintf("%s; mean weight %.1f", phaseList(r.phases), r.weight) })
	row("other processes' CPU meanwhile", func(r *result) string {
		return fmt.Sprintf("%.2f cores of %d", r.others.Seconds()/r.wall.Seconds(), runtime.NumCPU())
	})
	w("\n")
	return b.String()
}

func lags3(d dist.Dist) string {
	if len(d) == 0 {
		return "–"
	}
	return fmt.Sprintf("%s / %s / %s (%d)", lagMS(d.Q(0.5)), lagMS(d.Q(0.99)), lagMS(d.Max()), len(d))
}

func perRound(r *result) string {
	if len(r.rounds) == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f ms", r.cpu.Seconds()*1000/float64(len(r.rounds)))
}

func lagMS(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func perSec(n int64, d time.Duration) float64 { return float64(n) / d.Seconds() }

func phaseList(m map[v1alpha1.CanaryPhase]int) string {
	var out []string
	for p, n := range m {
		out = append(out, fmt.Sprintf("%s %d", p, n))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
