package main

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/canarymesh/canarymesh/bench/internal/results"
)

// DESIGN.md's targets.
const (
	targetAddedP99 = 200 * time.Microsecond
	targetRSSKB    = 20 << 10
)

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

func signedMS(d time.Duration) string {
	return fmt.Sprintf("%+.3f", float64(d)/float64(time.Millisecond))
}

func mb(kb int64) string { return fmt.Sprintf("%.1f", float64(kb)/1024) }

// report renders the run as markdown: setup, one row per target, and the ratios the
// design asks for.
func (h *harness) report(rs []*result, took time.Duration) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("## Latest run\n\n")
	w("- Command: `go run ./bench/proxy` (took %s)\n", took.Round(time.Second))
	w("- Date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	w("- Machine: %d cores (nproc), %s; %s\n", results.OnlineCPUs(), results.CPUModel(), runtime.Version())
	w("- Peers: %s; %s; %s\n", orNone(h.tools.nginx, versionOf(h.tools.nginx, "-v")),
		orNone(h.tools.haproxy, versionOf(h.tools.haproxy, "-v")), orNone(h.tools.wrk, "wrk "+versionOf(h.tools.wrk, "-v")))
	w("- Backend (the same for every row): %s\n", h.backendDesc)
	if h.pin {
		w("- Layout (taskset): the proxy under test alone on core %d; backend, wrk and the fixed-rate generator on core %d\n", h.proxyCPU, h.loadCPU)
	} else {
		w("- Layout: not pinned (taskset missing or a single core): every process shares every core\n")
	}
	w("- Workers: canarymesh GOMAXPROCS=%d; nginx `worker_processes 1` (`master_process off`, one process), upstream `keepalive 64`, `access_log off`; HAProxy `nbthread 1`, `http-reuse always`, `option http-keep-alive`\n", h.procs)
	w("- Saturation: `wrk -t1 -c%d -d%s -H 'Host: %s'`, %d rounds in which the targets take turns (after a 1 s warm-up each); req/s is the median round; CPU and system calls (perf, when installed) are per request over all rounds; the load core's CPU is the backend's and wrk's\n", h.conns, h.satDur, benchHost, h.rounds)
	w("- Fixed rate: %.0f req/s for %s per round, open model (internal/loadtest, latency from when each request was due, at most %d in flight). Its timer resolution is about 1 ms (Go's poller sleeps in whole milliseconds), which shows as a floor of ~0.6 ms at P50 even direct; the differences carry that noise\n", h.rate, h.rateDur, h.conns)
	w("- One in flight: `wrk -t1 -c1 -d%s --latency` per round, wrk's microsecond timings of one request at a time (closed loop, nothing queued)\n", h.oneDur)
	w("- Latency: %d rounds of both in which the targets take turns; each percentile is its median round\n", h.latRounds)
	w("- canarymesh keeps its metrics on (it counted every request: see the Resources table); access logs are off everywhere\n")
	for _, m := range h.missing {
		w("- Skipped: %s\n", m)
	}
	direct := rs[0]
	w("\n**Saturation** (busy: CPU time over wall time; a core near 100%% is the bottleneck)\n\n| target | req/s (median) | rounds | CPU/req | syscalls/req | proxy busy | load core CPU/req | load core busy | notes |\n")
	w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range rs {
		h.satRow(&b, r)
	}
	w("\n**Latency** (ms; added = minus direct's)\n\n| target | %.0f/s P50 | P99 | P99.9 | added P50 | added P99 | added P99.9 | one in flight P50 | P99 | added P50 | added P99 |\n", h.rate)
	w("| --- |%s\n", strings.Repeat(" ---: |", 10))
	for _, r := range rs {
		h.latRow(&b, r, direct)
	}
	w("\n**Resources**\n\n| target | CPU at %.0f/s | RSS MB | peak RSS MB | notes |\n| --- | ---: | ---: | ---: | --- |\n", h.rate)
	for _, r := range rs[1:] {
		h.resRow(&b, r)
	}
	h.ratios(&b, rs, direct)
	return b.String()
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond)) }

func (h *harness) satRow(b *strings.Builder, r *result) {
	if r.skipped != "" {
		fmt.Fprintf(b, "| %s | – | – | – | – | – | – | – | skipped: %s |\n", r.name, r.skipped)
		return
	}
	rounds := make([]string, len(r.rounds))
	for i, v := range r.rounds {
		rounds[i] = fmt.Sprintf("%.0f", v)
	}
	cpu, sys, busy := "–", "–", "–"
	wall := h.satDur * time.Duration(len(r.rounds))
	if r.proxyCPU > 0 {
		cpu = us(r.perRequest(r.proxyCPU))
		busy = fmt.Sprintf("%.0f%%", 100*float64(r.proxyCPU)/float64(wall))
	}
	if r.perfOK && r.requests > 0 {
		sys = fmt.Sprintf("%.2f", r.syscalls/r.requests)
	}
	fmt.Fprintf(b, "| %s | %.0f | %s | %s | %s | %s | %s | %.0f%% | %s |\n", r.name, r.rps(), strings.Join(rounds, ", "),
		cpu, sys, busy, us(r.perRequest(r.loadCPU)), 100*float64(r.loadCPU)/float64(wall), strings.Join(r.wrkIssues, "; "))
}

func (h *harness) latRow(b *strings.Builder, r, direct *result) {
	if r.skipped != "" {
		return
	}
	added := func(d, base time.Duration) string {
		if r == direct {
			return "–"
		}
		return signedMS(d - base)
	}
	fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.name,
		ms(r.p50), ms(r.p99), ms(r.p999), added(r.p50, direct.p50), added(r.p99, direct.p99), added(r.p999, direct.p999),
		ms(r.one50), ms(r.one99), added(r.one50, direct.one50), added(r.one99, direct.one99))
}

func (h *harness) resRow(b *strings.Builder, r *result) {
	if r.skipped != "" {
		return
	}
	notes := slices.Clone(r.rateIssues)
	if r.counted != "" {
		notes = append(notes, "its metrics counted "+r.counted+" requests")
	}
	fmt.Fprintf(b, "| %s | %.1f%% | %s | %s | %s |\n", r.name, r.cpuAtRate, mb(r.rssKB), mb(r.hwmKB), strings.Join(notes, "; "))
}

func (h *harness) ratios(b *strings.Builder, rs []*result, direct *result) {
	find := func(name string) *result {
		for _, r := range rs {
			if r.name == name && r.skipped == "" {
				return r
			}
		}
		return nil
	}
	cm := find("canarymesh")
	if cm == nil {
		return
	}
	w := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**not met**"
	}
	w("\n| ratio (canarymesh, fast path) | value | target | |\n| --- | ---: | ---: | --- |\n")
	for _, peer := range []string{"nginx", "haproxy"} {
		if p := find(peer); p != nil && p.rps() > 0 {
			x := cm.rps() / p.rps()
			w("| throughput / %s's | %.2f× | ≥ 1.00× | %s |\n", peer, x, verdict(x >= 1))
		}
	}
	if nh := find("canarymesh-nethttp"); nh != nil && nh.rps() > 0 {
		w("| throughput / the net/http path's | %.2f× | – | |\n", cm.rps()/nh.rps())
	}
	added := cm.p99 - direct.p99
	w("| added P99 at %.0f req/s | %s ms | ≤ %s ms | %s |\n", h.rate, signedMS(added), ms(targetAddedP99), verdict(added <= targetAddedP99))
	one := cm.one99 - direct.one99
	w("| added P99, one request in flight | %s ms | ≤ %s ms | %s |\n", signedMS(one), ms(targetAddedP99), verdict(one <= targetAddedP99))
	for _, peer := range []string{"nginx", "haproxy"} {
		if p := find(peer); p != nil {
			w("| for scale, %s's added P99: at %.0f req/s, one in flight | %s ms, %s ms | – | |\n", peer, h.rate,
				signedMS(p.p99-direct.p99), signedMS(p.one99-direct.one99))
		}
	}
	w("| peak RSS | %s MB | ≤ %s MB | %s |\n", mb(cm.hwmKB), mb(targetRSSKB), verdict(cm.hwmKB <= targetRSSKB))
	for _, peer := range []string{"nginx", "haproxy"} {
		if p := find(peer); p != nil && p.proxyCPU > 0 {
			w("| CPU per request / %s's | %.2f× | – | |\n", peer, float64(cm.perRequest(cm.proxyCPU))/float64(p.perRequest(p.proxyCPU)))
		}
	}
}

func orNone(path, version string) string {
	if path == "" {
		return "(not installed)"
	}
	return version
}
