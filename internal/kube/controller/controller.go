package controller

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/controlplane"
	"github.com/canarymesh/canarymesh/internal/controlplane/stream"
	"github.com/canarymesh/canarymesh/internal/hooks"
	"github.com/canarymesh/canarymesh/internal/mesh"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/kube"
)

// Defaults for Options.
const (
	DefaultLeaderElectionID = "canarymesh-controller"
	DefaultLeaseDuration    = 15 * time.Second
	DefaultRenewDeadline    = 10 * time.Second
	DefaultRetryPeriod      = 2 * time.Second
)

// Parts are the handles Setup functions get to add their pieces.
type Parts struct {
	// Context is Run's; it ends when the controller stops.
	Context context.Context
	Manager manager.Manager
	Store   store.Store
	// Client is a typed clientset on the same configuration.
	Client kubernetes.Interface
	Log    *slog.Logger
}

// Options configure Run.
type Options struct {
	// Config reaches the API server.
	Config *rest.Config
	Log    *slog.Logger
	// Version is reported in logs.
	Version string

	LeaderElection          bool
	LeaderElectionNamespace string
	// LeaderElectionID names the Lease (default DefaultLeaderElectionID).
	LeaderElectionID string
	// LeaseDuration, RenewDeadline and RetryPeriod tune the election (defaults above).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration

	// MetricsBindAddress serves /metrics; "0" turns it off.
	MetricsBindAddress string
	// HealthProbeBindAddress serves /healthz and /readyz; "0" turns it off.
	HealthProbeBindAddress string
	// WebhookPort and WebhookCertDir configure the webhook server Setup functions use.
	WebhookPort    int
	WebhookCertDir string

	// StreamListen is the push stream's address; StreamToken the bearer token proxies
	// present.
	StreamListen string
	StreamToken  string
	// EgressPort is the sidecars' egress listener port (mesh.Options.EgressPort).
	EgressPort int

	// ServeCompatAPIs mirrors appmesh.k8s.aws/v1beta2 and flagger.app/v1beta1 objects.
	ServeCompatAPIs bool
	// MetricsServer is the default Prometheus of canary analysis (Flagger's
	// -metrics-server).
	MetricsServer string

	// Target releases the Canaries' targets; nil leaves canaries unanalysed with a log
	// line saying so.
	Target func(p Parts) canary.Target
	// Setup adds more pieces to the manager before it starts: the sidecar injector's
	// webhook, for one.
	Setup []func(p Parts) error

	// OnReady, when set, is told the stream's address once it listens (tests).
	OnReady func(streamAddr string)
}

func (o *Options) defaults() {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.LeaderElectionID == "" {
		o.LeaderElectionID = DefaultLeaderElectionID
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration = DefaultLeaseDuration
	}
	if o.RenewDeadline == 0 {
		o.RenewDeadline = DefaultRenewDeadline
	}
	if o.RetryPeriod == 0 {
		o.RetryPeriod = DefaultRetryPeriod
	}
}

// Run runs the controller until ctx ends.
func Run(ctx context.Context, o Options) error {
	o.defaults()
	if o.Config == nil {
		return errors.New("controller: no API server configuration")
	}
	if o.StreamToken == "" {
		return errors.New("controller: the push stream needs a token (--stream-token-file or $CANARYMESH_TOKEN): sidecars present it")
	}
	log := o.Log
	scheme, err := kube.NewScheme()
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(o.Config, ctrl.Options{
		Scheme:                        scheme,
		Logger:                        logr.FromSlogHandler(log.Handler()),
		LeaderElection:                o.LeaderElection,
		LeaderElectionNamespace:       o.LeaderElectionNamespace,
		LeaderElectionID:              o.LeaderElectionID,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &o.LeaseDuration,
		RenewDeadline:                 &o.RenewDeadline,
		RetryPeriod:                   &o.RetryPeriod,
		// /metrics is served below, with the canary metrics beside controller-runtime's.
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: o.HealthProbeBindAddress,
		WebhookServer:          webhook.NewServer(webhook.Options{Port: o.WebhookPort, CertDir: o.WebhookCertDir}),
		// Controller names are unique per manager; tests run several managers in one
		// process.
		Controller: config.Controller{SkipNameValidation: &skipNameValidation},
	})
	if err != nil {
		return fmt.Errorf("controller manager: %w", err)
	}
	st, err := kube.New(o.Config, kube.Options{Logger: log.With("component", "store"), EventSource: "canarymesh-controller"})
	if err != nil {
		return err
	}
	defer st.Close()
	if err := preflight(ctx, st, mgr, o.ServeCompatAPIs); err != nil {
		return err
	}
	cs, err := kubernetes.NewForConfig(o.Config)
	if err != nil {
		return fmt.Errorf("clientset: %w", err)
	}
	parts := Parts{Context: ctx, Manager: mgr, Store: st, Client: cs, Log: log}

	// The push stream: every replica serves it, from its own compile of the store.
	ln, err := net.Listen("tcp", o.StreamListen)
	if err != nil {
		return fmt.Errorf("stream listener: %w", err)
	}
	push := stream.NewServer(stream.TokenAuth(o.StreamToken), log.With("component", "stream"))
	defer push.Close()
	gs := grpc.NewServer(stream.ServerOptions()...)
	push.Register(gs)
	if err := mgr.Add(runnable(false, func(ctx context.Context) error {
		go func() { <-ctx.Done(); gs.Stop() }()
		if err := gs.Serve(ln); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			return fmt.Errorf("push stream: %w", err)
		}
		return nil
	})); err != nil {
		return err
	}

	sync := &controlplane.MeshSync{
		Store: &endpointStore{Store: st, cluster: mgr.GetClient()},
		Sink:  push, Log: log.With("component", "mesh"),
		Options: mesh.Options{EgressPort: o.EgressPort, Sidecar: true},
	}
	if err := addLevelController(mgr, "mesh", false, true, func(ctx context.Context) error {
		_, err := sync.Sync(ctx)
		return err
	}); err != nil {
		return err
	}
	status := &controlplane.StatusReconciler{Store: st, Log: log.With("component", "status")}
	if err := addLevelController(mgr, "status", true, false, func(ctx context.Context) error {
		_, err := status.Sync(ctx)
		return err
	}); err != nil {
		return err
	}

	stats := canary.NewStats()
	if o.MetricsBindAddress != "" && o.MetricsBindAddress != "0" {
		mln, err := net.Listen("tcp", o.MetricsBindAddress)
		if err != nil {
			return fmt.Errorf("metrics listener: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(prometheus.Gatherers{ctrlmetrics.Registry, stats.Registry()}, promhttp.HandlerOpts{}))
		if err := mgr.Add(serveHTTP(mln, mux)); err != nil {
			return err
		}
	}
	if o.Target == nil {
		log.Warn("no canary target is configured: Canaries are not analysed")
	} else {
		clog := log.With("component", "canary")
		target := o.Target(parts)
		router := &canary.MeshRouter{Store: st, Log: clog}
		if sl, ok := target.(selectorLabeler); ok {
			// Flagger's names: the primary's pods carry the target's selector value
			// with -primary, and the virtual nodes select on that label.
			router.Selector = func(ctx context.Context, cd *v1alpha1.Canary) (string, string, string, error) {
				k, v, err := sl.SelectorLabel(ctx, cd)
				return k, v, v + "-primary", err
			}
		}
		cc := &canary.Controller{
			Store:  st,
			Target: target,
			Router: router,
			// Before a canary is scaled down, the proxies connected to this replica
			// confirm the routes that take its traffic away.
			Propagation: &controlplane.Propagation{Sync: sync, Proxies: push.Proxies},
			Metrics:     &canary.MeshMetrics{Store: st, MetricsServer: o.MetricsServer, Secrets: secrets{cs}},
			Hooks:       &hooks.Caller{},
			Recorder:    &hooks.Recorder{Store: st, Source: "canary-controller"},
			Stats:       stats,
			Log:         clog,
		}
		if err := mgr.Add(runnable(true, cc.Run)); err != nil {
			return err
		}
	}
	if o.ServeCompatAPIs {
		if err := addCompat(mgr, st, log.With("component", "compat")); err != nil {
			return err
		}
	}
	for _, setup := range o.Setup {
		if err := setup(parts); err != nil {
			return err
		}
	}

	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("store", func(req *http.Request) error {
		_, _, err := st.List(req.Context(), store.Filter{Kind: "Mesh"})
		return err
	}); err != nil {
		return err
	}
	if o.OnReady != nil {
		o.OnReady(ln.Addr().String())
	}
	log.Info("controller starting", "stream", ln.Addr().String(), "leaderElection", o.LeaderElection,
		"compatAPIs", o.ServeCompatAPIs, "version", o.Version)
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("controller manager: %w", err)
	}
	return nil
}

// preflight lists every kind the controller reads once, so that missing CRDs are one
// clear error now rather than informers that never sync.
func preflight(ctx context.Context, st store.Store, mgr manager.Manager, compat bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, _, err := st.List(ctx, store.Filter{}); err != nil {
		return fmt.Errorf("controller: %w", err)
	}
	if !compat {
		return nil
	}
	for _, gvk := range CompatKinds {
		l := &unstructured.UnstructuredList{}
		l.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		if err := mgr.GetAPIReader().List(ctx, l, client.Limit(1)); err != nil {
			return fmt.Errorf("controller: --serve-compat-apis: %s %s is not served (install deploy/compat-crds): %w", gvk.GroupVersion(), gvk.Kind, err)
		}
	}
	return nil
}

// serveHTTP serves h on ln on every replica until the manager stops.
func serveHTTP(ln net.Listener, h http.Handler) manager.Runnable {
	return runnable(false, func(ctx context.Context) error {
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			<-ctx.Done()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
}

var skipNameValidation = true

// runnable adapts a function to a manager.Runnable that runs on the leader only, or on
// every replica.
func runnable(leaderOnly bool, fn func(context.Context) error) manager.Runnable {
	return &funcRunnable{fn: fn, leader: leaderOnly}
}

type funcRunnable struct {
	fn     func(context.Context) error
	leader bool
}

func (r *funcRunnable) Start(ctx context.Context) error { return r.fn(ctx) }

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (r *funcRunnable) NeedLeaderElection() bool { return r.leader }

// selectorLabeler is a Target that knows the label its pods are selected by (a
// Deployment target).
type selectorLabeler interface {
	SelectorLabel(ctx context.Context, cd *v1alpha1.Canary) (key, value string, err error)
}
