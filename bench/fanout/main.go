// Command fanout measures how long a weight change takes to reach 1,000 connected
// proxies (DESIGN.md: ≤ 100 ms at P99): from a VirtualRouter's write to the store until
// every proxy has applied the new snapshot and the control plane has its ACK.
//
//	go run ./bench/fanout                  # both scenarios, 1,000 proxies: ~1.5 minutes
//	go run ./bench/fanout -nodes 1000 -rounds 5 -results ''
//
// The control plane runs in this process, as `canarymesh up --no-proxies` runs it: the
// bolt store, the mesh compiler, the status reconciler and the push-stream server. The
// proxies run in child processes (this program again, -role proxies), so that their
// decoding is not counted as the control plane's work; with taskset and two or more
// cores, the control plane gets a core of its own and the proxies the other.
//
// Scenarios (-nodes) differ in how the proxies map to mesh nodes: one node per proxy,
// as in standalone mode (every proxy gets a snapshot of its own), or fewer nodes with
// several replicas each, as sidecars of a Deployment (replicas share a snapshot).
// The report goes into bench/RESULTS.md between this benchmark's marks.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/canarymesh/canarymesh/bench/internal/results"
)

// config is what one run measures.
type config struct {
	proxies, procs     int
	nodes              []int
	services, backends int
	rounds, warmup     int
	gap, timeout       time.Duration
	apply              string
	childProcs         int
	profileDir         string
	childProfileDir    string
}

// harness is how this run lays its processes out.
type harness struct {
	self                string
	taskset             string
	pin                 bool
	serverCPU, proxyCPU int
}

func main() {
	var c config
	var child childConfig
	role := flag.String("role", "", "internal: run as a child (proxies)")
	flag.StringVar(&child.target, "target", "", "internal: the push stream's address (proxies)")
	flag.StringVar(&child.token, "token", "", "internal: the push stream's token (proxies)")
	flag.IntVar(&child.first, "first", 0, "internal: the first proxy of this child (proxies)")
	flag.IntVar(&child.count, "count", 0, "internal: how many proxies this child holds (proxies)")
	flag.IntVar(&child.nodes, "node-count", 0, "internal: how many client nodes the proxies spread over (proxies)")
	flag.StringVar(&child.profile, "child-profile", "", "write a CPU profile of each proxies child over its life into this directory")

	flag.IntVar(&c.proxies, "proxies", 1000, "connected proxies")
	flag.IntVar(&c.procs, "procs", 10, "child processes the proxies are spread over")
	nodes := flag.String("nodes", "1000,10", "scenarios: how many client nodes the proxies serve, comma-separated (each node gets proxies/nodes replicas)")
	flag.IntVar(&c.services, "services", 20, "services in the mesh, each a router over a primary and a canary node")
	flag.IntVar(&c.backends, "backends", 10, "services each client node calls (its snapshot's size)")
	flag.IntVar(&c.rounds, "rounds", 15, "measured weight changes per scenario")
	flag.IntVar(&c.warmup, "warmup", 2, "weight changes before the measured ones")
	flag.DurationVar(&c.gap, "gap", 2*time.Second, "time from one weight change to the next")
	flag.DurationVar(&c.timeout, "timeout", 30*time.Second, "how long a round waits for every ACK")
	flag.StringVar(&c.apply, "apply", "proxy", "what a proxy does with a snapshot: proxy (the data plane's Update) or decode (nothing more)")
	flag.IntVar(&c.childProcs, "child-gomaxprocs", 1, "GOMAXPROCS of each proxies child")
	flag.StringVar(&c.profileDir, "profile", "", "write a CPU profile of the control plane over each scenario's measured rounds into this directory")
	pin := flag.Bool("pin", true, "with taskset and two or more cores: the control plane on core 0, the proxies on core 1")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof on this address while running")
	resultsFile := flag.String("results", "bench/RESULTS.md", "file whose fan-out section is replaced by this run's; empty prints only")
	flag.Parse()
	child.apply = c.apply
	c.childProfileDir = child.profile

	var err error
	switch *role {
	case "proxies":
		err = runProxies(child)
	case "":
		for _, n := range strings.Split(*nodes, ",") {
			v, perr := strconv.Atoi(strings.TrimSpace(n))
			if perr != nil || v < 1 || v > c.proxies {
				fmt.Fprintf(os.Stderr, "bench/fanout: -nodes %q: want numbers from 1 to -proxies\n", *nodes)
				os.Exit(2)
			}
			c.nodes = append(c.nodes, v)
		}
		if c.apply != "proxy" && c.apply != "decode" {
			fmt.Fprintf(os.Stderr, "bench/fanout: -apply %q: want proxy or decode\n", c.apply)
			os.Exit(2)
		}
		c.backends = min(c.backends, c.services)
		c.procs = max(min(c.procs, c.proxies), 1)
		if *pprofAddr != "" {
			go func() { fmt.Fprintln(os.Stderr, http.ListenAndServe(*pprofAddr, nil)) }()
		}
		err = run(c, *pin, *resultsFile)
	default:
		err = fmt.Errorf("unknown role %q", *role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/fanout:", err)
		os.Exit(1)
	}
}

func run(c config, pin bool, resultsFile string) error {
	h := &harness{serverCPU: 0, proxyCPU: 1}
	var err error
	if h.self, err = os.Executable(); err != nil {
		return err
	}
	if p, err := exec.LookPath("taskset"); err == nil {
		h.taskset = p
	}
	h.pin = pin && h.taskset != "" && (results.OnlineCPUs() >= 2 || os.Getenv(pinnedEnv) != "")
	h.pinSelf()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	var done []*scenarioResult
	for _, n := range c.nodes {
		r, err := runScenario(ctx, c, h, n)
		if err != nil {
			return err
		}
		done = append(done, r)
	}
	section := report(c, h, done, commandLine(), time.Since(start))
	fmt.Print(section)
	if resultsFile != "" {
		if err := results.Update(resultsFile, "fanout", section); err != nil {
			return err
		}
		fmt.Fprintln(os.Stderr, "bench/fanout: wrote", resultsFile)
	}
	return nil
}

const pinnedEnv = "CANARYMESH_BENCH_PINNED"

// pinSelf re-executes this program on the control plane's core, so that its GOMAXPROCS
// is the one core it has.
func (h *harness) pinSelf() {
	if !h.pin || os.Getenv(pinnedEnv) != "" {
		return
	}
	argv := append([]string{h.taskset, "-c", strconv.Itoa(h.serverCPU), h.self}, os.Args[1:]...)
	err := syscall.Exec(argv[0], argv, append(os.Environ(), pinnedEnv+"=1"))
	fmt.Fprintln(os.Stderr, "bench/fanout: cannot pin the control plane, running unpinned:", err)
	h.pin = false
}

// commandLine is the command as typed, for the report.
func commandLine() string {
	args := []string{"go run ./bench/fanout"}
	flag.Visit(func(f *flag.Flag) {
		if f.Name != "results" && f.Name != "pprof" && f.Name != "profile" && f.Name != "child-profile" {
			args = append(args, "-"+f.Name+"="+f.Value.String())
		}
	})
	return strings.Join(args, " ")
}

func say(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
