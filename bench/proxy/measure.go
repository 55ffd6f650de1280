package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/canarymesh/canarymesh/bench/internal/procstat"
	"github.com/canarymesh/canarymesh/internal/loadtest"
)

// result is what one target measured.
type result struct {
	name      string
	rounds    []float64 // wrk req/s at saturation, one per round
	wrkIssues []string  // socket errors and non-2xx responses, if any

	p50, p99, p999 time.Duration // at the fixed rate: the median round's
	rateRuns       [][3]time.Duration
	rateCPU        time.Duration
	rateIssues     []string
	one50, one99   time.Duration // one request in flight (wrk -c1): the median round's
	oneRuns        [][2]time.Duration

	requests  float64       // served at saturation, all rounds
	proxyCPU  time.Duration // the proxy's CPU at saturation, all rounds
	loadCPU   time.Duration // the backend's and wrk's CPU at saturation, all rounds
	syscalls  float64       // the proxy's system calls at saturation (perf), all rounds
	ctxSw     float64       // its context switches
	perfOK    bool
	cpuAtRate float64 // proxy CPU at the fixed rate, percent of one core
	rssKB     int64   // after both loads
	hwmKB     int64   // peak
	counted   string  // canarymesh: requests its metrics counted
	skipped   string  // why the target was not measured
}

// rps is the median of the rounds.
func (r *result) rps() float64 {
	if len(r.rounds) == 0 {
		return 0
	}
	s := slices.Clone(r.rounds)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// finish takes the median round of each latency percentile.
func (r *result) finish() {
	median := func(n int, get func(i int) time.Duration) time.Duration {
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = get(i)
		}
		slices.Sort(s)
		if n == 0 {
			return 0
		}
		return s[n/2]
	}
	r.p50 = median(len(r.rateRuns), func(i int) time.Duration { return r.rateRuns[i][0] })
	r.p99 = median(len(r.rateRuns), func(i int) time.Duration { return r.rateRuns[i][1] })
	r.p999 = median(len(r.rateRuns), func(i int) time.Duration { return r.rateRuns[i][2] })
	r.one50 = median(len(r.oneRuns), func(i int) time.Duration { return r.oneRuns[i][0] })
	r.one99 = median(len(r.oneRuns), func(i int) time.Duration { return r.oneRuns[i][1] })
}

func (r *result) perRequest(d time.Duration) time.Duration {
	if r.requests == 0 {
		return 0
	}
	return time.Duration(float64(d) / r.requests)
}

// wrk runs wrk at saturation against addr and returns req/s, anything abnormal, and
// the CPU time wrk itself used.
func (h *harness) wrk(ctx context.Context, addr string, d time.Duration) (float64, string, time.Duration, error) {
	argv := []string{h.tools.wrk, "-t1", fmt.Sprintf("-c%d", h.conns), fmt.Sprintf("-d%ds", int(d.Seconds())),
		"-H", "Host: " + benchHost, "http://" + addr + "/"}
	if h.pin {
		argv = append([]string{"taskset", "-c", strconv.Itoa(h.loadCPU)}, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, "", 0, fmt.Errorf("wrk: %v\n%s", err, out)
	}
	cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	var rps float64
	var issues []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "Requests/sec:"):
			rps, _ = strconv.ParseFloat(strings.TrimSpace(strings.TrimPrefix(line, "Requests/sec:")), 64)
		case strings.HasPrefix(line, "Socket errors:"), strings.HasPrefix(line, "Non-2xx or 3xx responses:"):
			issues = append(issues, line)
		}
	}
	if rps == 0 {
		return 0, "", 0, fmt.Errorf("wrk printed no Requests/sec:\n%s", out)
	}
	return rps, strings.Join(issues, "; "), cpu, nil
}

// atRate sends the fixed-rate load with canarymesh's open-model generator, whose
// latencies count from when each request was due (no coordinated omission), and reads
// the proxy's memory afterwards.
func (h *harness) atRate(ctx context.Context, t *target, r *result) error {
	cpu0 := h.cpu(t)
	res, err := loadtest.Run(ctx, loadtest.Config{
		URL: "http://" + t.addr + "/", Host: benchHost, Rate: h.rate, Duration: h.rateDur,
		Concurrency: h.conns, DisableCompression: true,
	})
	if err != nil {
		return err
	}
	if t.pid != 0 {
		r.rateCPU += h.cpu(t) - cpu0
		r.cpuAtRate = float64(r.rateCPU) / float64(h.rateDur*time.Duration(len(r.rateRuns)+1)) * 100
		r.rssKB, r.hwmKB = procstat.Mem(t.pid)
	}
	if t.admin != "" {
		r.counted, _ = scrape(t.admin, `envoy_cluster_upstream_rq_total{envoy_cluster_name="cds_egress_bench_backend_bench_http_80"}`)
	}
	r.rateRuns = append(r.rateRuns, [3]time.Duration{res.Percentile(50), res.Percentile(99), res.Percentile(99.9)})
	if res.Errors > 0 {
		r.rateIssues = append(r.rateIssues, fmt.Sprintf("%d errors", res.Errors))
	}
	if n := res.Requests - res.StatusCodes[http.StatusOK]; n > 0 {
		r.rateIssues = append(r.rateIssues, fmt.Sprintf("%d non-200", n))
	}
	if res.Missed > 0 {
		r.rateIssues = append(r.rateIssues, fmt.Sprintf("%d not sent in time", res.Missed))
	}
	return nil
}

// oneInFlight measures latency with a single connection and nothing queued: wrk's
// own timings, in microseconds, unaffected by a generator's timer resolution.
func (h *harness) oneInFlight(ctx context.Context, t *target, r *result) error {
	argv := []string{h.tools.wrk, "-t1", "-c1", fmt.Sprintf("-d%ds", int(h.oneDur.Seconds())), "--latency",
		"-H", "Host: " + benchHost, "http://" + t.addr + "/"}
	if h.pin {
		argv = append([]string{"taskset", "-c", strconv.Itoa(h.loadCPU)}, argv...)
	}
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("wrk -c1: %v\n%s", err, out)
	}
	var p [2]time.Duration
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		d, err := time.ParseDuration(strings.Replace(f[1], "us", "µs", 1))
		switch {
		case err != nil:
		case f[0] == "50%":
			p[0] = d
		case f[0] == "99%":
			p[1] = d
		}
	}
	if p[0] == 0 || p[1] == 0 {
		return fmt.Errorf("wrk -c1 printed no latency distribution:\n%s", out)
	}
	r.oneRuns = append(r.oneRuns, p)
	return nil
}

// saturate runs one round of wrk against a target (after a warm-up in the first
// round: pools, page faults), adding up the proxy's CPU and system calls.
func (h *harness) saturate(ctx context.Context, t *target, r *result, warm bool) error {
	if warm {
		if _, _, _, err := h.wrk(ctx, t.addr, time.Second); err != nil {
			return err
		}
	}
	cpu0, be0 := h.cpu(t), h.backendCPU()
	stopPerf := h.perfStat(t.pid)
	rps, issues, wrkCPU, err := h.wrk(ctx, t.addr, h.satDur)
	syscalls, ctxSw, perfOK := stopPerf()
	if err != nil {
		return err
	}
	cpu1, be1 := h.cpu(t), h.backendCPU()
	r.rounds = append(r.rounds, rps)
	if issues != "" {
		r.wrkIssues = append(r.wrkIssues, issues)
	}
	r.requests += rps * h.satDur.Seconds()
	r.proxyCPU += cpu1 - cpu0
	r.loadCPU += be1 - be0 + wrkCPU
	r.syscalls += syscalls
	r.ctxSw += ctxSw
	r.perfOK = perfOK
	return nil
}

// perfStat counts a process's system calls and context switches until the returned
// function is called; ok is false when perf is missing or not allowed.
func (h *harness) perfStat(pid int) func() (syscalls, ctxSw float64, ok bool) {
	if h.tools.perf == "" || pid == 0 {
		return func() (float64, float64, bool) { return 0, 0, false }
	}
	var out strings.Builder
	cmd := exec.Command(h.tools.perf, "stat", "-x,", "-e", "raw_syscalls:sys_enter,context-switches", "-p", strconv.Itoa(pid))
	cmd.Stderr = &out
	if cmd.Start() != nil {
		return func() (float64, float64, bool) { return 0, 0, false }
	}
	return func() (syscalls, ctxSw float64, ok bool) {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		for _, line := range strings.Split(out.String(), "\n") {
			f := strings.Split(line, ",")
			if len(f) < 3 {
				continue
			}
			n, err := strconv.ParseFloat(f[0], 64)
			switch {
			case err != nil:
			case f[2] == "raw_syscalls:sys_enter":
				syscalls, ok = n, true
			case f[2] == "context-switches":
				ctxSw = n
			}
		}
		return syscalls, ctxSw, ok
	}
}

func (h *harness) backendCPU() time.Duration {
	if h.backendPID == 0 {
		return 0
	}
	d, _ := procstat.CPU(h.backendPID)
	return d
}

func (h *harness) cpu(t *target) time.Duration {
	if t.pid == 0 {
		return 0
	}
	d, _ := procstat.CPU(t.pid)
	return d
}
