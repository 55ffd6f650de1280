package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/controlplane"
	"github.com/canarymesh/canarymesh/internal/controlplane/stream"
	"github.com/canarymesh/canarymesh/internal/mesh"
	"github.com/canarymesh/canarymesh/internal/metrics/builtin"
	"github.com/canarymesh/canarymesh/internal/proxy/local"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/bolt"
	"github.com/canarymesh/canarymesh/internal/workload"
)

// Files `up` keeps in the data directory.
const (
	tokenFile  = "token"  // the API token, mode 0600, made on first start
	serverFile = "server" // the URL the API listens on, for the CLI to find
	streamFile = "stream" // the address of the push stream, for canarymesh proxy to find
)

// upFlags are the addresses and switches of `up`.
type upFlags struct {
	listen       string
	streamListen string
	egressListen string
	gatewayHost  string
	adminListen  string
	noProxies    bool
	adminSet     bool // --admin-listen was given
	files        string
	dash         *dashboardFlags
	prom         *promFlags
}

func newUpCommand(g *globals) *cobra.Command {
	f := upFlags{dash: &dashboardFlags{}, prom: &promFlags{}}
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the standalone control plane and the mesh's proxies on this machine",
		Long: `Run the standalone control plane: the embedded store in the data directory, the
API that apply, get, describe and delete talk to, the push stream that feeds proxies, and
an in-process proxy for every virtual node and virtual gateway, the workloads, and the
canary controller (its Prometheus metrics at /metrics on the admin port).

Clients reach a virtual service through the egress listener (--egress-listen), which
routes by Host header — curl -H 'Host: podinfo.demo' 127.0.0.1:15001/ — or through a
virtual gateway's listener on its declared port. A token is made in the data directory
on first start; the CLI reads it from there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.adminSet = cmd.Flags().Changed("admin-listen")
			return runUp(cmd.Context(), g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:7480", "address the API listens on")
	fl.StringVar(&f.streamListen, "stream-listen", "127.0.0.1:7481", "address of the push stream proxies connect to")
	fl.StringVar(&f.egressListen, "egress-listen", "127.0.0.1:15001", "address of the egress listener that routes by Host to virtual services")
	fl.StringVar(&f.gatewayHost, "gateway-host", "127.0.0.1", "host virtual gateway listeners bind on (at their declared ports)")
	fl.StringVar(&f.adminListen, "admin-listen", "127.0.0.1:9901", "address serving the in-process proxies' /stats/prometheus (Envoy's admin port) and the canary controller's /metrics; with --no-proxies only when given")
	fl.BoolVar(&f.noProxies, "no-proxies", false, "run no in-process proxies (sidecars connect with canarymesh proxy)")
	fl.StringVarP(&f.files, "filename", "f", "", "a directory of manifests to apply now and again whenever a file in it changes")
	addDashboardFlags(fl, f.dash)
	addPrometheusFlags(fl, f.prom)
	return cmd
}

// servers are the listeners `up` runs, for an orderly shutdown.
type servers struct {
	http []*http.Server
	grpc *grpc.Server
	errc chan error
}

func (s *servers) serveHTTP(ln net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.http = append(s.http, srv)
	go func() { s.errc <- srv.Serve(ln) }()
}

func (s *servers) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, srv := range s.http {
		_ = srv.Shutdown(ctx)
	}
	if s.grpc != nil {
		s.grpc.Stop()
	}
}

func runUp(ctx context.Context, g *globals, f upFlags) error {
	log := g.logger()
	if err := os.MkdirAll(g.dataDir, 0o700); err != nil {
		return err
	}
	token, err := ensureToken(g.dataDir)
	if err != nil {
		return err
	}
	st, err := bolt.Open(ctx, g.dataDir, bolt.Options{Logger: log})
	if err != nil {
		return err
	}
	defer st.Close()

	srvs := &servers{errc: make(chan error, 4)}
	defer srvs.shutdown()
	apiLn, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	streamLn, err := net.Listen("tcp", f.streamListen)
	if err != nil {
		return err
	}
	url := "http://" + apiLn.Addr().String()
	if err := writeFileAtomic(filepath.Join(g.dataDir, serverFile), []byte(url+"\n"), 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(g.dataDir, streamFile), []byte(streamLn.Addr().String()+"\n"), 0o600); err != nil {
		return err
	}

	push := stream.NewServer(stream.TokenAuth(token), log)
	defer push.Close()
	srvs.grpc = grpc.NewServer(stream.ServerOptions()...)
	push.Register(srvs.grpc)
	go func() { srvs.errc <- srvs.grpc.Serve(streamLn) }()

	api := controlplane.NewServer(st, token, buildVersion(), log)
	api.SetProxySource(func() []v1alpha1.Proxy { return controlplane.ProxyViews(push.Proxies()) })
	handler, err := withDashboard(ctx, f.dash, st, token, url, log, api.Handler())
	if err != nil {
		return err
	}
	srvs.serveHTTP(apiLn, handler)

	rec := &controlplane.StatusReconciler{Store: st, Log: log}
	go func() { _ = rec.Run(ctx) }()

	// Workloads run as processes of this one; they stop (gracefully) before the store
	// closes, so their last status is written.
	supCtx, stopSup := context.WithCancel(ctx)
	supDone := make(chan struct{})
	go func() {
		defer close(supDone)
		_ = workload.New(st, workload.Options{DataDir: g.dataDir, Log: log}).Run(supCtx)
	}()
	defer func() { stopSup(); <-supDone }()

	f.prom.dataDir = g.dataDir
	stopMesh, err := startMesh(ctx, st, push, srvs, f, streamLn.Addr().String(), token, log)
	if err != nil {
		return err
	}
	defer stopMesh()

	if f.files != "" {
		w := &manifestWatcher{dir: f.files, client: controlplane.NewClient(url, token), out: os.Stderr}
		go w.run(ctx)
	}
	log.Info("control plane up", "api", url, "stream", streamLn.Addr().String(), "egress", f.egressListen, "dataDir", g.dataDir, "version", buildVersion())
	fmt.Fprintf(os.Stderr, "canarymesh is up: API at %s, egress at %s, data in %s\n", url, f.egressListen, g.dataDir)
	if f.dash.enabled {
		fmt.Fprintf(os.Stderr, "dashboard at %s/ui/ (log in with the token in %s)\n", url, filepath.Join(g.dataDir, tokenFile))
	}

	select {
	case err := <-srvs.errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	case <-ctx.Done():
	}
	log.Info("shutting down")
	return nil
}

// startMesh compiles the mesh for the push stream, runs an in-process proxy per node
// (unless --no-proxies) and the canary controller, and serves the admin port: the
// proxies' /stats/prometheus and the controller's /metrics. stop ends the controller,
// then the proxies.
func startMesh(ctx context.Context, st store.Store, push *stream.Server, srvs *servers, f upFlags, streamAddr, token string, log *slog.Logger) (stop func(), err error) {
	// Without in-process proxies, virtual nodes run sidecars beside their applications:
	// their local cluster is the application on the listener's port.
	sync := &controlplane.MeshSync{Store: st, Sink: push, Log: log, Options: mesh.Options{EgressPort: portOf(f.egressListen), Sidecar: f.noProxies}}
	admin := http.NewServeMux()
	var windows builtin.WindowSource
	closeProxies := func() {}
	var mgr *local.Manager
	if !f.noProxies {
		mgr = local.NewManager(ctx, local.Options{Target: streamAddr, Token: token, Log: log,
			EgressAddr: f.egressListen, GatewayHost: f.gatewayHost, Version: buildVersion()})
		closeProxies = mgr.Close
		sync.OnNodes = mgr.Reconcile
		windows = proxyWindows(mgr)
		f.dash.setWindows(windows)
		admin.Handle("/", mgr.Handler())
	}
	go func() { _ = sync.Run(ctx) }()

	stats, stopCanaries := startCanaries(ctx, st, log, f.prom.meshMetrics(st, windows), &controlplane.Propagation{Sync: sync, Proxies: push.Proxies})
	stop = func() { stopCanaries(); closeProxies() }
	admin.Handle("GET /metrics", stats.Handler())
	// Without in-process proxies the admin port is left to sidecars, unless asked for.
	adminAddr := ""
	if !f.noProxies || f.adminSet {
		adminLn, err := net.Listen("tcp", f.adminListen)
		if err != nil {
			stop()
			return nil, err
		}
		adminAddr = adminLn.Addr().String()
		srvs.serveHTTP(adminLn, admin)
	}
	if err := f.prom.writeConfig(ctx, st, mgr, adminAddr, log); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// portOf returns the port of host:port, or 0.
func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// ensureToken reads the data directory's token, making one on first start.
func ensureToken(dir string) (string, error) {
	p := filepath.Join(dir, tokenFile)
	if b, err := os.ReadFile(p); err == nil {
		if len(b) > 0 {
			return string(trimNL(b)), nil
		}
	} else if !os.IsNotExist(err) {
		return "", err
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(buf)
	return tok, writeFileAtomic(p, []byte(tok+"\n"), 0o600)
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// writeFileAtomic writes through a temporary file and a rename, so a crash never leaves
// a half-written token or address behind.
func writeFileAtomic(p string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), p)
}
