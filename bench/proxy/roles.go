package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
	"github.com/canarymesh/canarymesh/internal/proxy"
)

// The harness runs its own children by re-executing itself with -role: the Go backend
// (when nginx is not there to serve "ok") and canarymesh's proxy, built from a static
// snapshot so that no control plane is involved.

// benchHost is the Host header every load generator sends; canarymesh routes on it.
const benchHost = "backend.bench"

// runBackend serves "ok" on addr until killed.
func runBackend(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	body := []byte("ok")
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = []string{"text/plain"}
		w.Header()["Content-Length"] = []string{"2"}
		w.Write(body)
	})
	return (&http.Server{Handler: h}).Serve(ln)
}

// benchSnapshot is an egress listener on port routing benchHost to one static endpoint,
// as `curl -H 'Host: podinfo.demo' localhost:15001/` reaches a virtual service.
func benchSnapshot(port int, backend string) *snapshot.Snapshot {
	return &snapshot.Snapshot{Version: 1, Node: snapshot.EgressNode, Mesh: "bench",
		Clusters: []snapshot.Cluster{{Name: "bench/backend", Mesh: "bench", Protocol: "http", Port: 80,
			Endpoints: []snapshot.Endpoint{{Address: backend, Ready: true}}}},
		Listeners: []snapshot.Listener{{Name: "egress", Kind: snapshot.Egress, Protocol: "http", Port: port,
			VirtualHosts: []snapshot.VirtualHost{{Name: "bench/backend", Domains: []string{benchHost},
				Routes: []snapshot.Route{{Name: "bench/backend/main", Match: snapshot.Match{Prefix: "/"},
					Targets: []snapshot.WeightedCluster{{Cluster: "bench/backend", Weight: 1}}}}}}}}}
}

// runCanarymesh runs the data plane on listen, forwarding to backend, with metrics and
// pprof on admin. netHTTP turns the HTTP/1.1 fast path off, for comparison.
func runCanarymesh(listen, backend, admin string, netHTTP bool) error {
	_, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return err
	}
	port, _ := strconv.Atoi(portStr)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p := proxy.New(proxy.Options{Logger: log, NoFastPath: netHTTP,
		Bind: func(snapshot.Listener) string { return listen }})
	defer p.Close()
	if err := p.Update(benchSnapshot(port, backend)); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/stats/prometheus", p.Metrics())
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	aln, err := net.Listen("tcp", admin)
	if err != nil {
		return err
	}
	go (&http.Server{Handler: mux}).Serve(aln)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return nil
}

// scrape reads one sample of the proxy's exposition: proof that the proxy counted what
// it served (the benchmark does not switch metrics off).
func scrape(admin, series string) (string, error) {
	res, err := http.Get("http://" + admin + "/stats/prometheus")
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if len(line) > len(series) && line[:len(series)] == series && line[len(series)] == ' ' {
			return line[len(series)+1:], nil
		}
	}
	return "", fmt.Errorf("no series %s", series)
}
