package main

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/canarymesh/canarymesh/bench/internal/dist"
	"github.com/canarymesh/canarymesh/bench/internal/results"
)

// targetP99 is DESIGN.md's: a weight change reaches 1,000 connected proxies in ≤ 100 ms.
const targetP99 = 100 * time.Millisecond

func scenarioName(proxies, nodes int) string {
	return fmt.Sprintf("%d-nodes-x-%d", nodes, (proxies+nodes-1)/nodes)
}

// report renders the scenarios as the results file's section, a column each.
func report(c config, h *harness, runs []*scenarioResult, cmd string, took time.Duration) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("### Control plane fan-out: latest run\n\n")
	w("`%s` — %s, took %s, on %s (%d cores), %s.\n\n", cmd, time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		took.Round(time.Second), results.CPUModel(), results.OnlineCPUs(), runtime.Version())
	w("Real: the bolt store (a temporary directory, fsync on), the mesh compiler (MeshSync), the status\n")
	w("reconciler and the push-stream server over gRPC on loopback, as `canarymesh up --no-proxies` runs\n")
	w("them, in this process; %d proxy stream clients (`stream.Client`) in %d child processes, each\n", c.proxies, c.procs)
	if c.apply == "proxy" {
		w("applying every snapshot to a real data plane (`proxy.Update`, listeners on ephemeral ports).\n")
	} else {
		w("decoding every snapshot and applying nothing.\n")
	}
	w("The mesh: %d services, each a VirtualRouter splitting traffic between a primary and a canary\n", c.services)
	w("virtual node; the proxies' client nodes each call %d of them. A round is one weight change of the\n", c.backends)
	w("router every client calls (Get, then Update, as the canary controller does); times run from\n")
	w("just before that store write. *sent* and *ACK*: when the control plane's proxy status (what\n")
	w("`canarymesh get proxies` shows) recorded the push and the proxy's ACK; *applied*: when the\n")
	w("proxy had applied it (its own clock, the same machine). Each figure is the median over %d\n", c.rounds)
	w("rounds (after %d warm-up) of that round's percentile over the %d proxies; rounds start %s apart.\n", c.warmup, c.proxies, c.gap)
	if h.pin {
		w("Layout (taskset): the control plane alone on core %d, every proxy process on core %d.\n", h.serverCPU, h.proxyCPU)
	} else {
		w("Layout: not pinned; the control plane and the proxies share every core.\n")
	}
	w("\n")
	row := func(name string, cell func(s *scenarioResult) string) {
		w("| %s |", name)
		for _, s := range runs {
			w(" %s |", cell(s))
		}
		w("\n")
	}
	w("| measure |")
	for _, s := range runs {
		w(" %d nodes × %d proxies |", s.nodes, (c.proxies+s.nodes-1)/s.nodes)
	}
	w("\n| --- |%s\n", strings.Repeat(" --- |", len(runs)))
	three := func(f func(r round) dist.Dist) func(s *scenarioResult) string {
		return func(s *scenarioResult) string {
			return fmt.Sprintf("%s / %s / %s", msec(median(s.rounds, func(r round) time.Duration { return f(r).Q(0.5) })),
				msec(median(s.rounds, func(r round) time.Duration { return f(r).Q(0.99) })),
				msec(median(s.rounds, func(r round) time.Duration { return f(r).Max() })))
		}
	}
	row("snapshot per proxy (JSON)", func(s *scenarioResult) string { return fmt.Sprintf("%.1f KB", float64(s.snapshotBytes)/1000) })
	row("**time to ACK**, P50 / P99 / max", three(func(r round) dist.Dist { return r.acked }))
	row("P99 to ACK, per round: min – max", func(s *scenarioResult) string { return spread(s.rounds, func(r round) dist.Dist { return r.acked }) })
	row("target P99 ≤ 100 ms", func(s *scenarioResult) string {
		if len(s.rounds) > 0 && median(s.rounds, func(r round) time.Duration { return r.acked.Q(0.99) }) <= targetP99 {
			return "met"
		}
		return "**not met**"
	})
	row("time to applied (proxy), P50 / P99 / max", three(func(r round) dist.Dist { return r.applied }))
	row("time to sent (control plane), P50 / P99 / max", three(func(r round) dist.Dist { return r.sent }))
	row("control plane CPU per push, write to last ACK", func(s *scenarioResult) string {
		return msec(median(s.rounds, func(r round) time.Duration { return r.serverCPU }))
	})
	row(fmt.Sprintf("control plane CPU per push, whole round (%s)", c.gap), func(s *scenarioResult) string {
		return msec(median(s.rounds, func(r round) time.Duration { return r.roundCPU }))
	})
	row("mesh compiles per push (MeshSync, every node)", func(s *scenarioResult) string {
		return fmt.Sprint(median(s.rounds, func(r round) time.Duration { return time.Duration(r.compiles) }).Nanoseconds())
	})
	row(fmt.Sprintf("proxies' CPU per push (all %d)", c.proxies), func(s *scenarioResult) string {
		return msec(median(s.rounds, func(r round) time.Duration { return r.proxiesCPU }))
	})
	row("control plane RSS at the end / peak in the scenario", func(s *scenarioResult) string {
		return fmt.Sprintf("%.0f MB / %.0f MB", float64(s.rssKB)/1024, float64(s.hwmKB)/1024)
	})
	row("setup: start of the proxies to all running", func(s *scenarioResult) string { return s.setup.Round(100 * time.Millisecond).String() })
	row("NACKs; proxies missing a version", func(s *scenarioResult) string {
		n, m := 0, 0
		for _, r := range s.rounds {
			n += r.nacks
			m += r.missing
		}
		return fmt.Sprintf("%d; %d", n, m)
	})
	row("other processes' CPU meanwhile, median round", func(s *scenarioResult) string {
		cores := median(s.rounds, func(r round) time.Duration {
			return time.Duration(float64(time.Second) * r.others.Seconds() / r.wall.Seconds())
		})
		return fmt.Sprintf("%.2f cores of %d", cores.Seconds(), results.OnlineCPUs())
	})
	w("\n")
	return b.String()
}

// spread is the lowest and highest of the rounds' P99s.
func spread(rs []round, f func(r round) dist.Dist) string {
	if len(rs) == 0 {
		return "–"
	}
	lo, hi := f(rs[0]).Q(0.99), f(rs[0]).Q(0.99)
	for _, r := range rs[1:] {
		v := f(r).Q(0.99)
		lo, hi = min(lo, v), max(hi, v)
	}
	return msec(lo) + " – " + msec(hi)
}
