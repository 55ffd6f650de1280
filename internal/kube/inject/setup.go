package inject

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Defaults of Options.
const (
	DefaultPort                 = 9443
	DefaultCertSecret           = "canarymesh-webhook-cert"
	DefaultWebhookConfiguration = "canarymesh-sidecar-injector"
	// DefaultValidatingWebhookConfiguration is the validator's (internal/kube/validate).
	DefaultValidatingWebhookConfiguration = "canarymesh-validator"
	DefaultCheckInterval                  = time.Minute
)

// Options configure the injector inside the controller.
type Options struct {
	// Config is what injected pods get.
	Config Config
	// Namespace the controller runs in; the certificate Secret lives there.
	Namespace string
	// ServiceName is the Service in front of the webhook; the serving certificate is
	// valid for its cluster DNS names. Empty when the API server calls the webhook by URL.
	ServiceName string
	// ExtraDNSNames and ExtraIPs are added to the serving certificate (an address for a
	// webhook called by URL, as in tests).
	ExtraDNSNames []string
	ExtraIPs      []net.IP
	// Host and Port the webhook listens on; all addresses and DefaultPort by default.
	Host string
	Port int
	// CertSecret is the Secret holding the CA and serving pair; DefaultCertSecret.
	CertSecret string
	// WebhookConfigurations are the MutatingWebhookConfigurations whose caBundle the
	// controller keeps; [DefaultWebhookConfiguration] when nil.
	WebhookConfigurations []string
	// ValidatingWebhookConfigurations are the ValidatingWebhookConfigurations whose
	// caBundle the controller keeps; [DefaultValidatingWebhookConfiguration] when nil.
	ValidatingWebhookConfigurations []string
	// Webhooks are more handlers served by the same server and certificate, by path
	// (the validator, validate.WebhookPath).
	Webhooks map[string]http.Handler
	// CAValidity and CertValidity of the generated certificates (CertOptions).
	CAValidity, CertValidity time.Duration
	// CheckInterval between certificate and caBundle checks; DefaultCheckInterval.
	CheckInterval time.Duration
	// ProxyToken is the push stream's token. With Config.ProxyTokenSecret, the controller
	// writes it into that Secret in the namespace of every injected pod (TokenSecrets).
	ProxyToken string
	// VirtualNodes lists VirtualNodes; the manager's cached client when nil (its scheme
	// must know api/v1alpha1).
	VirtualNodes VirtualNodeLister
	// Logger; slog.Default() when nil.
	Logger *slog.Logger
}

// Injector is what Setup registered.
type Injector struct {
	Certs   *CertManager
	Handler *Handler
	Missed  *MissedInjections
	Server  webhook.Server
}

// Setup adds the sidecar injector to a controller-runtime manager, in one call:
//
//   - ensures the serving certificate now (creating the CA and the Secret on first
//     run), so the webhook serves from its first second, and patches the caBundle of the
//     owned Mutating- and ValidatingWebhookConfigurations;
//   - a webhook server of its own on Host:Port serving WebhookPath and the Webhooks
//     with that certificate (the manager's default webhook server is left alone);
//   - a runnable that renews the certificate and re-patches the caBundle every
//     CheckInterval (on every replica; they agree through the Secret);
//   - the missed-injection check (MissedInjections), which records a Warning event on
//     pods that should carry the proxy and do not;
//   - a readiness check "canarymesh-injector" that passes once the webhook serves;
//   - with ProxyToken and Config.ProxyTokenSecret, TokenSecrets, which writes the token
//     Secret into the namespace of every injected pod.
//
// Call it before mgr.Start. The controller's RBAC must allow: get/create/update of the
// Secret in Namespace; get/patch of the webhook configurations; get/list/watch of pods,
// namespaces and virtualnodes/virtualgateways.canarymesh.dev; create/patch of events;
// with TokenSecrets, get/create/update of Secrets in every namespace.
func Setup(ctx context.Context, mgr manager.Manager, o Options) (*Injector, error) {
	if err := o.Config.validate(); err != nil {
		return nil, fmt.Errorf("injector: %w", err)
	}
	if o.Namespace == "" {
		return nil, errors.New("injector: the controller's namespace is required")
	}
	log := o.Logger
	if log == nil {
		log = slog.Default().With("component", "injector")
	}
	if o.Port == 0 {
		o.Port = DefaultPort
	}
	if o.CertSecret == "" {
		o.CertSecret = DefaultCertSecret
	}
	if o.WebhookConfigurations == nil {
		o.WebhookConfigurations = []string{DefaultWebhookConfiguration}
	}
	if o.ValidatingWebhookConfigurations == nil {
		o.ValidatingWebhookConfigurations = []string{DefaultValidatingWebhookConfiguration}
	}
	if o.CheckInterval <= 0 {
		o.CheckInterval = DefaultCheckInterval
	}
	if o.VirtualNodes == nil {
		o.VirtualNodes = ClientLister(mgr.GetClient())
	}
	dns := o.ExtraDNSNames
	if o.ServiceName != "" {
		s, ns := o.ServiceName, o.Namespace
		dns = append([]string{s + "." + ns + ".svc", s, s + "." + ns, s + "." + ns + ".svc.cluster.local"}, dns...)
	}
	certs, err := NewCertManager(mgr.GetAPIReader(), mgr.GetClient(), CertOptions{
		Namespace: o.Namespace, SecretName: o.CertSecret, DNSNames: dns, IPs: o.ExtraIPs,
		WebhookConfigurations: o.WebhookConfigurations, ValidatingWebhookConfigurations: o.ValidatingWebhookConfigurations, CAValidity: o.CAValidity, CertValidity: o.CertValidity,
	}, log)
	if err != nil {
		return nil, fmt.Errorf("injector: %w", err)
	}
	if err := certs.Ensure(ctx); err != nil {
		return nil, fmt.Errorf("injector: %w", err)
	}
	namespaces := ClientNamespaces(mgr.GetClient())
	h := &Handler{Config: o.Config, VirtualNodes: o.VirtualNodes, Namespaces: namespaces, Log: log}
	srv := webhook.NewServer(webhook.Options{
		Host: o.Host, Port: o.Port,
		TLSOpts: []func(*tls.Config){func(c *tls.Config) { c.GetCertificate = certs.GetCertificate }},
	})
	srv.Register(WebhookPath, &admission.Webhook{Handler: h})
	for path, wh := range o.Webhooks {
		srv.Register(path, wh)
	}
	if err := mgr.Add(srv); err != nil {
		return nil, fmt.Errorf("injector: add webhook server: %w", err)
	}
	// Not ready (so out of the Service) until the webhook serves.
	if err := mgr.AddReadyzCheck("canarymesh-injector", srv.StartedChecker()); err != nil {
		return nil, fmt.Errorf("injector: add readiness check: %w", err)
	}
	if err := mgr.Add(certRenewer{certs, o.CheckInterval}); err != nil {
		return nil, fmt.Errorf("injector: add certificate renewal: %w", err)
	}
	missed := &MissedInjections{Reader: mgr.GetClient(), Config: o.Config, VirtualNodes: o.VirtualNodes,
		Namespaces: namespaces, Recorder: mgr.GetEventRecorder("canarymesh-injector"), Log: log}
	if err := missed.SetupWithManager(mgr); err != nil {
		return nil, fmt.Errorf("injector: %w", err)
	}
	if o.ProxyToken != "" && o.Config.ProxyTokenSecret != "" {
		tokens := &TokenSecrets{Reader: mgr.GetAPIReader(), Writer: mgr.GetClient(), Name: o.Config.ProxyTokenSecret, Token: o.ProxyToken, Log: log}
		if err := tokens.SetupWithManager(mgr); err != nil {
			return nil, fmt.Errorf("injector: %w", err)
		}
	}
	return &Injector{Certs: certs, Handler: h, Missed: missed, Server: srv}, nil
}

// certRenewer runs CertManager.Start on every replica, leader or not: each serves
// webhooks and needs the current certificate.
type certRenewer struct {
	m        *CertManager
	interval time.Duration
}

func (r certRenewer) Start(ctx context.Context) error { return r.m.Start(ctx, r.interval) }
func (certRenewer) NeedLeaderElection() bool          { return false }

var _ manager.LeaderElectionRunnable = certRenewer{}
