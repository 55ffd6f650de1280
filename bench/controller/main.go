// Command controller benchmarks the canary controller: 1,000 Canaries analysed at a 10 s
// interval on one core (GOMAXPROCS=1). The controller is the real one (internal/canary)
// over a real bolt store in a temporary directory, with the real Workload target, mesh
// router, built-in metrics, webhook caller and event recorder. What would need processes
// is simulated: a stand-in for the supervisor reports every Workload's instances ready,
// the proxies' traffic windows report a healthy canary, and the load-test webhook is a
// local HTTP endpoint answering 202 as flagger-loadtester does. All of it runs in this
// process, so the CPU figure counts the stand-ins too.
//
//	go run ./bench/controller        # both scenarios, 1,000 canaries, 60 s each: ~4 minutes
//	go run ./bench/controller -canaries 100 -d 20s -scenarios spread -results ''
//
// Each scenario starts afresh: create the Workloads and Canaries, wait until every
// Canary is Initialized, release a new version of every target, then measure for -d the
// process' CPU time, how late each analysis round started against when it was due (an
// interval after the previous round started; Controller.OnRun tells the runs), and the
// store writes and events recorded per second. "spread" releases the targets evenly
// over one interval and measures from one interval later: the steady state. "burst"
// releases them all at the same instant and measures from then: the first rounds of
// every canary fall due together. The figures go into bench/RESULTS.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"time"

	"github.com/canarymesh/canarymesh/bench/internal/results"
)

// config is what one run measures.
type config struct {
	canaries int
	interval time.Duration
	duration time.Duration
	burst    bool // set per scenario
	workers  int
}

// scenario is one measured run.
type scenario struct {
	name string
	r    *result
}

func main() {
	var c config
	flag.IntVar(&c.canaries, "canaries", 1000, "how many Canaries (each with its own target Workload)")
	flag.DurationVar(&c.interval, "interval", 10*time.Second, "analysis interval of every Canary")
	flag.DurationVar(&c.duration, "d", 60*time.Second, "wall time measured, once every release runs")
	names := flag.String("scenarios", "spread,burst", "scenarios to run, in order: spread, burst")
	flag.IntVar(&c.workers, "workers", 0, "the controller's workers (0: its default)")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address while running (to see where runs wait)")
	resultsFile := flag.String("results", "bench/RESULTS.md", "file whose canary controller section is replaced by this run's; empty prints only")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	if *pprofAddr != "" {
		go func() { fmt.Fprintln(os.Stderr, http.ListenAndServe(*pprofAddr, nil)) }()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var done []scenario
	for _, n := range strings.Split(*names, ",") {
		if n != "spread" && n != "burst" {
			fmt.Fprintf(os.Stderr, "bench/controller: unknown scenario %q (spread, burst)\n", n)
			os.Exit(2)
		}
		c.burst = n == "burst"
		say("scenario %s", n)
		r, err := run(ctx, c)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench/controller:", err)
			os.Exit(1)
		}
		done = append(done, scenario{n, r})
	}
	section := report(c, done, commandLine())
	fmt.Print(section)
	if *resultsFile != "" {
		if err := results.Update(*resultsFile, "controller", section); err != nil {
			fmt.Fprintln(os.Stderr, "bench/controller:", err)
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "written into", *resultsFile)
	}
}

// commandLine is the command as typed, for the report.
func commandLine() string {
	args := []string{"go run ./bench/controller"}
	flag.Visit(func(f *flag.Flag) {
		if f.Name != "results" && f.Name != "pprof" {
			args = append(args, "-"+f.Name+"="+f.Value.String())
		}
	})
	return strings.Join(args, " ")
}

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
