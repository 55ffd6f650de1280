package main

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/kube/controller"
	"github.com/canarymesh/canarymesh/internal/kube/deploytarget"
	"github.com/canarymesh/canarymesh/internal/kube/inject"
	"github.com/canarymesh/canarymesh/internal/kube/validate"
)

// controllerFlags are the flags of `controller`.
type controllerFlags struct {
	kubeconfig              string
	leaderElect             bool
	leaderElectionNamespace string
	leaderElectionID        string
	leaseDuration           time.Duration
	renewDeadline           time.Duration
	retryPeriod             time.Duration
	metricsAddr             string
	probeAddr               string
	webhookPort             int
	streamListen            string
	streamTokenFile         string
	streamTokenSecret       string
	egressPort              int
	compat                  bool
	metricsServer           string

	// The sidecar injector, on when --proxy-image is given.
	proxyImage       string
	proxyInitImage   string
	controlPlane     string
	proxyTokenSecret string
	namespace        string
	webhookService   string

	dash controllerDashboardFlags
}

func newControllerCommand(g *globals) *cobra.Command {
	var f controllerFlags
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the control plane on Kubernetes (CRDs in the API server, sidecars fed over the push stream)",
		Long: `Run Canarymesh's control plane in a Kubernetes cluster: the canarymesh.dev objects live
in the API server as custom resources; the controller keeps their status conditions, compiles
the mesh (virtual nodes' endpoints are the Pods their podSelector matches, ready as their
EndpointSlices say) and serves it to the sidecars on the push stream, runs the canary
analysis of Canaries on Deployments, and, with --proxy-image, injects the sidecar into new
pods by a mutating webhook and, on the same server, refuses by a validating webhook the
canarymesh.dev, App Mesh and Flagger objects that 'canarymesh apply' would refuse.

With --serve-compat-apis, App Mesh (appmesh.k8s.aws/v1beta2) and Flagger (flagger.app/v1beta1)
objects are mirrored into canarymesh.dev twins and get their status back, untouched otherwise.

Several replicas may run with --leader-elect: every replica serves the push stream, one at a
time writes statuses and runs canaries.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runController(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file of the cluster; default: the in-cluster service account (then $KUBECONFIG)")
	fl.BoolVar(&f.leaderElect, "leader-elect", false, "elect one leader among replicas through a Lease before writing")
	fl.StringVar(&f.leaderElectionNamespace, "leader-election-namespace", "", "namespace of the leader election Lease (default: the controller's own namespace)")
	fl.StringVar(&f.leaderElectionID, "leader-election-id", controller.DefaultLeaderElectionID, "name of the leader election Lease")
	fl.DurationVar(&f.leaseDuration, "leader-election-lease-duration", controller.DefaultLeaseDuration, "how long a leader's Lease holds without renewal")
	fl.DurationVar(&f.renewDeadline, "leader-election-renew-deadline", controller.DefaultRenewDeadline, "how long the leader tries to renew before giving up leadership")
	fl.DurationVar(&f.retryPeriod, "leader-election-retry-period", controller.DefaultRetryPeriod, "how often candidates try to acquire or renew the Lease")
	fl.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", `address serving /metrics (controller and canary metrics); "0" turns it off`)
	fl.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", `address serving /healthz and /readyz; "0" turns it off`)
	fl.IntVar(&f.webhookPort, "webhook-port", inject.DefaultPort, "port of the sidecar injector webhook")
	fl.StringVar(&f.streamListen, "stream-listen", ":7481", "address of the push stream sidecars connect to")
	fl.StringVar(&f.streamTokenFile, "stream-token-file", "", "file holding the push stream's bearer token (default: $CANARYMESH_TOKEN, else --stream-token-secret)")
	fl.StringVar(&f.streamTokenSecret, "stream-token-secret", controller.DefaultStreamTokenSecret, "Secret in --namespace keeping the push stream's token, made on first start, when no token is given otherwise")
	fl.IntVar(&f.egressPort, "egress-port", 15001, "port of the sidecars' egress listener")
	fl.BoolVar(&f.compat, "serve-compat-apis", false, "mirror appmesh.k8s.aws/v1beta2 and flagger.app/v1beta1 objects into canarymesh.dev and copy status back")
	fl.StringVar(&f.metricsServer, "metrics-server", "", "Prometheus URL for canary metric checks of Canaries that name no spec.metricsServer")
	fl.StringVar(&f.proxyImage, "proxy-image", "", "image of the sidecar (canarymesh proxy); turns the injector webhook on")
	fl.StringVar(&f.proxyInitImage, "proxy-init-image", "", "image of the traffic redirection init container (default: --proxy-image)")
	fl.StringVar(&f.controlPlane, "control-plane-address", "", "the push stream's host:port as seen from pods, e.g. canarymesh-controller.canarymesh-system.svc:7481")
	fl.StringVar(&f.proxyTokenSecret, "proxy-token-secret", "", "Secret in each pod's namespace whose key token the sidecar presents")
	fl.StringVar(&f.namespace, "namespace", os.Getenv("POD_NAMESPACE"), "the controller's namespace, where the webhook certificate Secret lives (default $POD_NAMESPACE)")
	fl.StringVar(&f.webhookService, "webhook-service", "", "Service in front of the webhook; its DNS names go into the serving certificate")
	addControllerDashboardFlags(fl, &f.dash)
	return cmd
}

func runController(cmd *cobra.Command, g *globals, f controllerFlags) error {
	cfg, err := kubeConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	token, err := streamToken(f.streamTokenFile)
	if errors.Is(err, errNoToken) {
		cs, cerr := kubernetes.NewForConfig(cfg)
		if cerr != nil {
			return cerr
		}
		token, err = controller.EnsureStreamToken(cmd.Context(), cs, f.namespace, f.streamTokenSecret)
	}
	if err != nil {
		return err
	}
	log := g.logger()
	o := controller.Options{
		Config: cfg, Log: log, Version: buildVersion(),
		LeaderElection: f.leaderElect, LeaderElectionNamespace: f.leaderElectionNamespace, LeaderElectionID: f.leaderElectionID,
		LeaseDuration: f.leaseDuration, RenewDeadline: f.renewDeadline, RetryPeriod: f.retryPeriod,
		MetricsBindAddress: f.metricsAddr, HealthProbeBindAddress: f.probeAddr, WebhookPort: f.webhookPort,
		StreamListen: f.streamListen, StreamToken: token, EgressPort: f.egressPort,
		ServeCompatAPIs: f.compat, MetricsServer: f.metricsServer,
		Target: func(p controller.Parts) canary.Target {
			return &deploytarget.Target{Client: p.Client, OwnerReferences: true, Log: p.Log.With("component", "deploytarget")}
		},
	}
	if f.leaderElect && f.leaderElectionNamespace == "" {
		o.LeaderElectionNamespace = f.namespace
	}
	if f.proxyImage != "" {
		o.Setup = append(o.Setup, func(p controller.Parts) error {
			_, err := inject.Setup(p.Context, p.Manager, inject.Options{
				// Without a per-namespace Secret, sidecars get the token in their environment.
				Config: inject.Config{Image: f.proxyImage, InitImage: f.proxyInitImage, ControlPlane: f.controlPlane,
					ProxyTokenSecret: f.proxyTokenSecret, ProxyToken: proxyToken(f.proxyTokenSecret, token)},
				// With --proxy-token-secret, the injector writes the token into that Secret
				// in every namespace it injects pods into; without it no one would.
				ProxyToken: token,
				Namespace:  f.namespace, ServiceName: f.webhookService, Port: f.webhookPort, Logger: p.Log.With("component", "injector"),
				// The same server refuses canarymesh.dev, App Mesh and Flagger objects that
				// `canarymesh apply` would refuse.
				Webhooks: map[string]http.Handler{validate.WebhookPath: &admission.Webhook{
					Handler: &validate.Handler{Log: p.Log.With("component", "validator")}}},
			})
			return err
		})
	}
	if f.dash.listen != "" {
		o.Setup = append(o.Setup, setupDashboard(&f.dash, token))
	}
	return controller.Run(cmd.Context(), o)
}

// kubeConfig reads the kubeconfig file given, else the in-cluster service account, else
// $KUBECONFIG.
func kubeConfig(path string) (*rest.Config, error) {
	if path != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", path)
		if err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", path, err)
		}
		return cfg, nil
	}
	cfg, err := rest.InClusterConfig()
	if err == nil {
		return cfg, nil
	}
	if env := os.Getenv("KUBECONFIG"); env != "" {
		cfg, kerr := clientcmd.BuildConfigFromFlags("", env)
		if kerr != nil {
			return nil, fmt.Errorf("kubeconfig %s ($KUBECONFIG): %w", env, kerr)
		}
		return cfg, nil
	}
	return nil, fmt.Errorf("not in a cluster (%v): give --kubeconfig", err)
}

// errNoToken: neither a token file nor $CANARYMESH_TOKEN was given.
var errNoToken = errors.New("no stream token given")

// proxyToken is the literal token injected sidecars get: none when they read it from a
// Secret.
func proxyToken(secret, token string) string {
	if secret != "" {
		return ""
	}
	return token
}

// streamToken reads the push stream's token from file, else $CANARYMESH_TOKEN.
func streamToken(file string) (string, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("stream token: %w", err)
		}
		if t := strings.TrimSpace(string(b)); t != "" {
			return t, nil
		}
		return "", fmt.Errorf("stream token file %s is empty", file)
	}
	if t := os.Getenv("CANARYMESH_TOKEN"); t != "" {
		return t, nil
	}
	return "", errNoToken
}
