// Package inject is Canarymesh's sidecar injector for Kubernetes: a mutating admission
// webhook that adds the proxy (`canarymesh proxy`) and the init container that redirects
// the pod's traffic to it, the certificate the webhook serves with, a check that reports
// pods that missed injection, and the same mutation offline for YAML
// (`canarymesh inject`).
//
//	kube-apiserver ──AdmissionReview (pod CREATE, TLS)──▶ Handler ──▶ Config.Decide (pure)
//	                                                        │  namespace labels, pod annotations,
//	                                                        │  VirtualNodes of the namespace
//	                          ◀── allowed + JSON patch ─────┘  or refused with the reason
//	CertManager: Secret {CA, serving pair} ─▶ TLS listener, caBundle ─▶ Mutating- and
//	             ValidatingWebhookConfiguration (the validator, internal/kube/validate)
//	MissedInjections: pod appears without the proxy though Decide says inject ─▶ Warning event
//	InjectManifests: YAML documents ─▶ Decide per pod template ─▶ YAML
//
// # Who is injected
//
// A pod is injected when its namespace is labelled canarymesh.dev/inject=enabled or, for
// clusters moving from App Mesh, appmesh.k8s.aws/sidecarInjectorWebhook=enabled; a pod
// annotation with either name and the value enabled or disabled overrides the namespace
// either way. Pods on the host's network and pods that already run the proxy are left
// alone, so a re-invoked webhook changes nothing.
//
// The pod's VirtualNode is the one named by its canarymesh.dev/virtual-node (or App Mesh's
// appmesh.k8s.aws/virtualNode) annotation, else the one whose podSelector matches its
// labels — several matches refuse the pod with App Mesh's message, "found multiple
// matching VirtualNodes for pod NS/NAME: NS/A,NS/B" — else, for nodes imported from
// appmesh.k8s.aws/v1beta1 (which have no podSelector), the node named as the pod's
// Deployment, StatefulSet, DaemonSet or Job. A pod no node selects but a VirtualGateway's
// podSelector does gets that gateway's proxy (`--node VirtualGateway/NS/NAME`, no traffic
// redirection; several gateways refuse it the same way). A pod nothing selects is not
// injected, as with App Mesh's controller.
//
// The proxy runs as a native sidecar — an init container with restartPolicy Always,
// after the redirection's init container — so it is up before the application starts,
// and a Job's pod still completes when its application exits.
//
// # Traffic redirection
//
// App Mesh's conventions and annotations carry over: the proxy listens for redirected
// inbound traffic on 15000 and outbound on 15001 and runs as UID 1337, whose traffic is
// not redirected; inbound traffic to the application ports (appmesh.k8s.aws/ports, else
// the VirtualNode's listener ports, else the containers' ports) is redirected; outbound
// TCP is redirected except to port 22 (appmesh.k8s.aws/egressIgnoredPorts) and to
// appmesh.k8s.aws/egressIgnoredIPs; appmesh.k8s.aws/ignoredUID, ignoredGID,
// proxyIngressPort, proxyEgressPort, cpuRequest and memoryRequest tune the rest. The init
// container receives the settings as App Mesh's APPMESH_* variables and runs
// `canarymesh inject init`, which loads the iptables rules with iptables-restore; it
// needs NET_ADMIN. The annotation canarymesh.dev/proxy-mode: explicit injects without an
// init container and without NET_ADMIN: the application containers get HTTP_PROXY and
// NO_PROXY pointing at the egress listener, and inbound traffic is not intercepted. NET_ADMIN
// is only allowed where the Pod Security level is "privileged"; the proxy container itself
// meets "restricted", so explicit mode runs anywhere.
//
// # Certificates
//
// CertManager creates a CA and a serving certificate with crypto/x509 (ECDSA P-256),
// keeps them in a Secret shared by every replica, renews each when a third of its
// lifetime remains (keeping the previous CA in the bundle until it expires), serves the
// current pair from memory, and writes the CA bundle into the Mutating- and
// ValidatingWebhookConfigurations it owns, again whenever a re-apply wiped it. No
// cert-manager, no scripts.
//
// # Wiring
//
// The controller calls Setup once, before starting its manager:
//
//	inj, err := inject.Setup(ctx, mgr, inject.Options{
//		Config: inject.Config{
//			Image:            "ghcr.io/canarymesh/canarymesh:v1.2.3",
//			ControlPlane:     "canarymesh-controller.canarymesh-system.svc:7481",
//			ProxyTokenSecret: "canarymesh-proxy-token", // the proxies read their token here
//		},
//		ProxyToken:  streamToken,             // written into that Secret per namespace
//		Namespace:   podNamespace,            // where the certificate Secret lives
//		ServiceName: "canarymesh-controller", // the webhook Service
//		Port:        9443,
//		// WebhookConfigurations: []string{"canarymesh-sidecar-injector"} by default
//		// ValidatingWebhookConfigurations: []string{"canarymesh-validator"} by default
//		Webhooks: map[string]http.Handler{validate.WebhookPath: validator}, // same server
//	})
//
// Setup runs its own webhook server (the manager's default one stays unused) and needs
// the manager's scheme to know api/v1alpha1, unless Options.VirtualNodes is given.
// WebhookConfiguration builds the matching MutatingWebhookConfiguration.
package inject
