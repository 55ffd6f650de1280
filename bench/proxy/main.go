// Command proxy benchmarks canarymesh's data plane against nginx and HAProxy in one run:
// the same backend reached directly and through each proxy, each proxy with one worker
// on its own core, at saturation (wrk) and at a fixed 1,000 req/s (canarymesh's
// open-model generator). It prints a markdown report and writes it into
// bench/RESULTS.md. It installs nothing: a missing nginx, HAProxy or wrk is reported
// and its rows are skipped.
//
//	go run ./bench/proxy            # the full run, under 3 minutes
//	go run ./bench/proxy -only canarymesh -d 5s -write=false
//
// Layout on a machine with two or more cores (taskset): the proxy under test alone on
// core 0; the backend, wrk and the fixed-rate generator (this process) on core 1.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/canarymesh/canarymesh/bench/internal/results"
)

type tools struct{ nginx, haproxy, wrk, taskset, perf string }

type harness struct {
	self   string // this executable, re-run for the children's roles
	dir    string // configs, pid files and logs of this run
	tools  tools
	pin    bool
	procs  int // canarymesh's GOMAXPROCS
	conns  int
	satDur time.Duration
	rounds int
	// latRounds are the rounds of the latency runs; each percentile is its median round.
	latRounds int
	rate      float64
	rateDur   time.Duration
	oneDur    time.Duration

	proxyCPU, loadCPU int
	backendKind       string
	backendPID        int
	backendDesc       string
	only              []string
	missing           []string    // peers that could not be measured, and why
	compare           [][2]string // other builds' canarymesh: name, harness binary
}

func main() {
	role := flag.String("role", "", "internal: run as a child (backend, canarymesh)")
	listen := flag.String("listen", "", "internal: the child's address")
	backend := flag.String("backend", "", "internal: the backend's address (canarymesh)")
	admin := flag.String("admin", "", "internal: metrics and pprof address (canarymesh)")
	netHTTP := flag.Bool("nethttp", false, "internal: canarymesh without its HTTP/1.1 fast path")

	h := &harness{}
	var only, results string
	var write, withNetHTTP bool
	flag.DurationVar(&h.satDur, "d", 4*time.Second, "wrk duration at saturation, per target and round")
	flag.IntVar(&h.latRounds, "lat-rounds", 3, "rounds of the latency runs (fixed rate, then one in flight), the targets taking turns")
	flag.IntVar(&h.rounds, "rounds", 3, "saturation rounds; targets take turns within each, and the median counts")
	flag.DurationVar(&h.rateDur, "rate-d", 4*time.Second, "duration of the fixed-rate load, per target and round")
	flag.Float64Var(&h.rate, "rate", 1000, "the fixed rate, requests per second")
	flag.DurationVar(&h.oneDur, "one-d", 2*time.Second, "duration of the one-in-flight latency run (wrk -c1), per target and round")
	flag.IntVar(&h.conns, "c", 64, "connections (wrk) and the most requests in flight (fixed rate)")
	flag.IntVar(&h.procs, "gomaxprocs", 1, "canarymesh's GOMAXPROCS (nginx and HAProxy get this many workers too: 1 only)")
	flag.StringVar(&h.backendKind, "backend-kind", "auto", "auto (nginx when installed, else Go) or go")
	flag.StringVar(&only, "only", "", "comma-separated targets to run (direct always runs): canarymesh, canarymesh-nethttp, nginx, haproxy")
	flag.BoolVar(&withNetHTTP, "with-nethttp", true, "also measure canarymesh with its fast path off (the net/http path)")
	flag.StringVar(&results, "results", "bench/RESULTS.md", "the results file to update")
	flag.Func("compare", "NAME=PATH: also measure the canarymesh of another build of this harness (go build -o PATH ./bench/proxy at another commit); repeatable", func(v string) error {
		name, path, ok := strings.Cut(v, "=")
		if !ok || name == "" || path == "" {
			return fmt.Errorf("want NAME=PATH, got %q", v)
		}
		h.compare = append(h.compare, [2]string{name, path})
		return nil
	})
	flag.BoolVar(&write, "write", true, "update the results file")
	flag.Parse()

	var err error
	switch *role {
	case "backend":
		err = runBackend(*listen)
	case "canarymesh":
		err = runCanarymesh(*listen, *backend, *admin, *netHTTP)
	case "":
		if only != "" {
			h.only = strings.Split(only, ",")
		} else if !withNetHTTP {
			h.only = []string{"canarymesh", "nginx", "haproxy"}
		}
		err = h.run(results, write)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/proxy:", err)
		os.Exit(1)
	}
}

// pinSelf re-executes the harness on the load core, so that the fixed-rate generator
// shares it with wrk and the backend rather than with the proxy under test.
func (h *harness) pinSelf() {
	if !h.pin || os.Getenv("CANARYMESH_BENCH_PINNED") != "" {
		return
	}
	argv := append([]string{h.tools.taskset, "-c", strconv.Itoa(h.loadCPU), h.self}, os.Args[1:]...)
	env := append(os.Environ(), "CANARYMESH_BENCH_PINNED=1")
	err := syscall.Exec(argv[0], argv, env)
	fmt.Fprintln(os.Stderr, "bench/proxy: cannot pin the harness, running unpinned:", err)
}

func (h *harness) findTools() {
	look := func(name string) string {
		p, err := exec.LookPath(name)
		if err != nil {
			for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
				if _, serr := os.Stat(dir + "/" + name); serr == nil {
					return dir + "/" + name
				}
			}
			return ""
		}
		return p
	}
	h.tools = tools{nginx: look("nginx"), haproxy: look("haproxy"), wrk: look("wrk"), taskset: look("taskset"), perf: look("perf")}
	// Once re-executed on the load core this process sees one CPU; the decision to pin
	// was made before.
	h.pin = h.tools.taskset != "" && (results.OnlineCPUs() >= 2 || os.Getenv("CANARYMESH_BENCH_PINNED") != "")
	h.proxyCPU, h.loadCPU = 0, 1
}

func (h *harness) wants(name string) bool {
	for _, c := range h.compare {
		if c[0] == name {
			return true
		}
	}
	return len(h.only) == 0 || slices.Contains(h.only, name)
}

func (h *harness) run(resultsPath string, write bool) error {
	var err error
	if h.self, err = os.Executable(); err != nil {
		return err
	}
	h.findTools()
	if h.tools.wrk == "" {
		return fmt.Errorf("wrk is not installed (Debian: apt-get install wrk); it drives the saturation load")
	}
	h.pinSelf()
	if h.dir, err = os.MkdirTemp("", "canarymesh-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(h.dir)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	measured, err := h.runAll(ctx)
	if err != nil {
		return err
	}
	rep := h.report(measured, time.Since(start))
	fmt.Print(rep)
	if write {
		if err := results.Update(resultsPath, "proxy", rep); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "bench/proxy: wrote", resultsPath)
	}
	return nil
}

// runAll starts every target, then measures them in interleaved rounds, so that
// whatever else the machine does falls on all of them alike.
func (h *harness) runAll(ctx context.Context) ([]*result, error) {
	be, err := h.startBackend(ctx)
	if err != nil {
		return nil, fmt.Errorf("backend: %w", err)
	}
	defer be.stop()
	h.backendPID = be.cmd.Process.Pid
	targets, results, err := h.startTargets(ctx, be)
	for _, t := range targets {
		defer t.stop()
	}
	if err != nil {
		return nil, err
	}
	for round := 0; round < h.rounds; round++ {
		for i, t := range targets {
			fmt.Fprintf(os.Stderr, "bench/proxy: round %d/%d at saturation: %s\n", round+1, h.rounds, t.name)
			if err := h.saturate(ctx, t, results[i], round == 0); err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
		}
	}
	for round := 0; round < h.latRounds; round++ {
		for i, t := range targets {
			fmt.Fprintf(os.Stderr, "bench/proxy: round %d/%d at %.0f req/s, then one in flight: %s\n", round+1, h.latRounds, h.rate, t.name)
			if err := h.atRate(ctx, t, results[i]); err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
			if err := h.oneInFlight(ctx, t, results[i]); err != nil {
				return nil, fmt.Errorf("%s: %w", t.name, err)
			}
		}
	}
	for _, r := range results {
		r.finish()
	}
	out := append([]*result{}, results...)
	for _, m := range h.missing {
		name, _, _ := strings.Cut(m, " ")
		out = append(out, &result{name: name, skipped: m})
	}
	return out, nil
}

// startTargets starts direct (the backend itself) and every proxy asked for and
// installed.
func (h *harness) startTargets(ctx context.Context, be *target) ([]*target, []*result, error) {
	type peer struct {
		name    string
		missing string
		start   func() (*target, error)
	}
	peers := []peer{
		{"canarymesh", "", func() (*target, error) { return h.startCanarymesh(ctx, "canarymesh", be.addr, false) }},
		{"canarymesh-nethttp", "", func() (*target, error) { return h.startCanarymesh(ctx, "canarymesh-nethttp", be.addr, true) }},
		{"nginx", missingTool(h.tools.nginx, "nginx"), func() (*target, error) { return h.startNginxProxy(ctx, be.addr) }},
		{"haproxy", missingTool(h.tools.haproxy, "haproxy"), func() (*target, error) { return h.startHAProxy(ctx, be.addr) }},
	}
	for _, c := range h.compare {
		peers = append(peers, peer{c[0], "", func() (*target, error) { return h.startBuild(ctx, c[0], c[1], be.addr) }})
	}
	targets := []*target{{name: "direct", addr: be.addr}}
	results := []*result{{name: "direct"}}
	for _, p := range peers {
		if !h.wants(p.name) {
			continue
		}
		if p.missing != "" {
			h.missing = append(h.missing, p.missing)
			continue
		}
		t, err := p.start()
		if t != nil {
			targets = append(targets, t)
			results = append(results, &result{name: t.name})
		}
		if err != nil {
			return targets, nil, fmt.Errorf("%s: %w", p.name, err)
		}
	}
	return targets, results, nil
}

func missingTool(path, name string) string {
	if path != "" {
		return ""
	}
	return name + " is not installed (Debian: apt-get install " + name + "); its row is skipped"
}
