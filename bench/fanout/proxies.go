package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/canarymesh/canarymesh/internal/controlplane/stream"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
	"github.com/canarymesh/canarymesh/internal/proxy"
)

// The proxies role: a child process holding count proxy connections, proxies first to
// first+count-1 of the fleet. It talks with the harness over stdin and stdout, one line
// each way:
//
//	harness: "report V"  →  child: one line per connection, in order: the Unix time in
//	                        nanoseconds at which it first applied a version ≥ V (0: not
//	                        yet), then "cpu N" (its CPU time so far, ns), then "end"
//	harness: "cpu"       →  child: "cpu N", then "end"
//	stdin closed         →  the child closes its connections and exits
//
// Nothing is written while pushes are in flight, so the harness's own work stays out of
// the control plane's measured CPU.

// childConfig is what a proxies child is told on its command line.
type childConfig struct {
	target, token string
	first, count  int
	nodes         int
	apply         string // "proxy": the data plane applies it; "decode": decoding only
	profile       string // a directory for a CPU profile of the child's life
}

// applied remembers, per connection, the last few versions applied and when.
type applied struct {
	mu   sync.Mutex
	ring [8]struct {
		version uint64
		at      int64
	}
	next int
}

func (a *applied) add(v uint64, at time.Time) {
	a.mu.Lock()
	a.ring[a.next%len(a.ring)].version, a.ring[a.next%len(a.ring)].at = v, at.UnixNano()
	a.next++
	a.mu.Unlock()
}

// first is when the oldest remembered version ≥ v was applied (0: none).
func (a *applied) first(v uint64) int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var at int64
	for _, e := range a.ring {
		if e.version >= v && e.at != 0 && (at == 0 || e.at < at) {
			at = e.at
		}
	}
	return at
}

func runProxies(c childConfig) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if c.profile != "" {
		if err := os.MkdirAll(c.profile, 0o755); err != nil {
			return err
		}
		f, err := os.Create(filepath.Join(c.profile, fmt.Sprintf("proxies-%d.pprof", c.first)))
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	var wg sync.WaitGroup
	recs := make([]*applied, c.count)
	for k := range c.count {
		i := c.first + k
		rec := &applied{}
		recs[k] = rec
		apply := func(*snapshot.Snapshot) error { return nil }
		if c.apply == "proxy" {
			// Every listener on an ephemeral port: a thousand proxies share this machine.
			p := proxy.New(proxy.Options{Bind: func(snapshot.Listener) string { return "127.0.0.1:0" }})
			defer p.Close()
			apply = p.Update
		}
		client, err := stream.Dial(ctx, c.target, stream.ClientOptions{Node: nodeOf(i, c.nodes), Token: c.token,
			ProxyVersion: "bench/fanout"})
		if err != nil {
			return err
		}
		defer client.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = client.Run(ctx, func(s *snapshot.Snapshot) error {
				if err := apply(s); err != nil {
					return err
				}
				rec.add(s.Version, time.Now())
				return nil
			})
		}()
	}
	err := serveReports(os.Stdin, os.Stdout, recs)
	cancel()
	wg.Wait()
	return err
}

// serveReports answers the harness's report requests until in ends.
func serveReports(in io.Reader, out io.Writer, recs []*applied) error {
	sc := bufio.NewScanner(in)
	w := bufio.NewWriter(out)
	for sc.Scan() {
		if arg, ok := strings.CutPrefix(sc.Text(), "report "); ok {
			v, err := strconv.ParseUint(arg, 10, 64)
			if err != nil {
				return fmt.Errorf("report %q: %w", arg, err)
			}
			for _, r := range recs {
				fmt.Fprintln(w, r.first(v))
			}
		} else if sc.Text() != "cpu" {
			return fmt.Errorf("unknown request %q", sc.Text())
		}
		fmt.Fprintf(w, "cpu %d\nend\n", selfCPU())
		if err := w.Flush(); err != nil {
			return err
		}
	}
	return sc.Err()
}
