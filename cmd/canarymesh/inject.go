package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/canarymesh/canarymesh/internal/kube/inject"
)

type injectFlags struct {
	files            []string
	virtualNode      string
	mesh             string
	namespace        string
	image            string
	initImage        string
	pullPolicy       string
	controlPlane     string
	proxyToken       string
	proxyTokenSecret string
	egressIgnoredIPs []string
}

// defaultImage is the release's own image, so injected proxies match the CLI.
func defaultImage() string {
	tag := buildVersion()
	if tag == "dev" {
		tag = "latest"
	}
	return "ghcr.io/canarymesh/canarymesh:" + tag
}

func newInjectCommand(_ *globals) *cobra.Command {
	var f injectFlags
	cmd := &cobra.Command{
		Use:   "inject -f FILE|DIR|- [--virtual-node NAME] [--mesh NAME]",
		Short: "Add the Canarymesh proxy to workloads in YAML, offline",
		Long: `Add the sidecar proxy (and the init container that redirects traffic to it) to every
Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job and CronJob in the input, the way
the in-cluster injector would, and print the result as YAML. Other documents, and Lists'
other items, are printed unchanged; one line per workload on stderr says what was done.

Each workload's VirtualNode is, in order: --virtual-node; the pod template's
canarymesh.dev/virtual-node or appmesh.k8s.aws/virtualNode annotation; a VirtualNode in the
input whose podSelector matches the template's labels (App Mesh v1beta2) or, without
podSelector, that is named as the workload (App Mesh v1beta1); else the workload's name.
Templates annotated canarymesh.dev/inject: disabled (or App Mesh's
appmesh.k8s.aws/sidecarInjectorWebhook: disabled) and already injected ones are left alone.
App Mesh's annotations tune the redirection: appmesh.k8s.aws/ports, egressIgnoredPorts,
egressIgnoredIPs, ignoredUID, ignoredGID, proxyIngressPort, proxyEgressPort; and
canarymesh.dev/proxy-mode: explicit sets HTTP_PROXY instead, without NET_ADMIN.

  canarymesh inject -f deployment.yaml | kubectl apply -f -`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInject(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVarP(&f.files, "filename", "f", nil, "file, directory (its .yaml, .yml and .json files) or - (stdin); repeatable")
	fl.StringVar(&f.virtualNode, "virtual-node", "", "the VirtualNode (in each workload's namespace) of every workload")
	fl.StringVar(&f.mesh, "mesh", "", "record this mesh in the canarymesh.dev/mesh annotation")
	fl.StringVarP(&f.namespace, "namespace", "n", "", "namespace of documents that name none (default \"default\")")
	fl.StringVar(&f.image, "image", defaultImage(), "the proxy's image (runs `canarymesh proxy`)")
	fl.StringVar(&f.initImage, "init-image", "", "the init container's image (runs `canarymesh inject init`; needs iptables-restore); --image if empty")
	fl.StringVar(&f.pullPolicy, "image-pull-policy", "", "Always, IfNotPresent or Never (default: the cluster's)")
	fl.StringVar(&f.controlPlane, "control-plane", "canarymesh-controller.canarymesh-system.svc:7481", "the controller's push stream, host:port as seen from pods")
	fl.StringVar(&f.proxyToken, "proxy-token", "", "the push stream's token, written into the pod spec (prefer --proxy-token-secret)")
	fl.StringVar(&f.proxyTokenSecret, "proxy-token-secret", "canarymesh-proxy-token", "a Secret in the workload's namespace whose key \"token\" holds the push stream's token")
	fl.StringSliceVar(&f.egressIgnoredIPs, "egress-ignored-ips", nil, "addresses or CIDRs never intercepted, for every workload")
	_ = cmd.MarkFlagRequired("filename")
	cmd.AddCommand(newInjectInitCommand())
	return cmd
}

func runInject(cmd *cobra.Command, f injectFlags) error {
	switch corev1.PullPolicy(f.pullPolicy) {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return fmt.Errorf("--image-pull-policy %q: expected Always, IfNotPresent or Never", f.pullPolicy)
	}
	secret := f.proxyTokenSecret
	if f.proxyToken != "" && !cmd.Flags().Changed("proxy-token-secret") {
		secret = ""
	}
	srcs, err := readInjectSources(f.files, cmd.InOrStdin())
	if err != nil {
		return err
	}
	out, notes, err := inject.InjectManifests(srcs, inject.ManifestOptions{
		Config: inject.Config{
			Image: f.image, InitImage: f.initImage, ImagePullPolicy: corev1.PullPolicy(f.pullPolicy),
			ControlPlane: f.controlPlane, ProxyToken: f.proxyToken, ProxyTokenSecret: secret,
			EgressIgnoredIPs: f.egressIgnoredIPs,
		},
		VirtualNode: f.virtualNode, Mesh: f.mesh, Namespace: f.namespace,
	})
	if err != nil {
		return err
	}
	for _, n := range notes {
		fmt.Fprintln(cmd.ErrOrStderr(), n)
	}
	_, err = cmd.OutOrStdout().Write(out)
	return err
}

// readInjectSources reads files, directories (their manifest files in lexical order)
// and "-".
func readInjectSources(paths []string, stdin io.Reader) ([]inject.Source, error) {
	var srcs []inject.Source
	for _, p := range paths {
		if p == "-" {
			b, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("read stdin: %w", err)
			}
			srcs = append(srcs, inject.Source{Name: "-", Data: b})
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		files := []string{p}
		if st.IsDir() {
			entries, err := os.ReadDir(p)
			if err != nil {
				return nil, err
			}
			files = files[:0]
			for _, e := range entries {
				switch strings.ToLower(filepath.Ext(e.Name())) {
				case ".yaml", ".yml", ".json":
					if !e.IsDir() {
						files = append(files, filepath.Join(p, e.Name()))
					}
				}
			}
			sort.Strings(files)
			if len(files) == 0 {
				return nil, fmt.Errorf("%s: no .yaml, .yml or .json files", p)
			}
		}
		for _, file := range files {
			b, err := os.ReadFile(file)
			if err != nil {
				return nil, err
			}
			srcs = append(srcs, inject.Source{Name: file, Data: b})
		}
	}
	return srcs, nil
}

func newInjectInitCommand() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "init [--dry-run]",
		Short: "Redirect the pod's traffic to its proxy (the injected init container runs this)",
		Long: `Install the pod's iptables rules with iptables-restore: inbound TCP to the application
ports goes to the proxy's ingress port, outbound TCP to its egress port, except traffic of
the ignored UID/GID and to ignored ports and addresses. The settings come from App Mesh's
variables: APPMESH_APP_PORTS, APPMESH_ENVOY_INGRESS_PORT (15000), APPMESH_ENVOY_EGRESS_PORT
(15001), APPMESH_IGNORE_UID (1337), APPMESH_IGNORE_GID, APPMESH_EGRESS_IGNORED_PORTS,
APPMESH_EGRESS_IGNORED_IP. Needs NET_ADMIN in the pod's network namespace.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := inject.RedirectFromEnv(os.Getenv)
			if err != nil {
				return err
			}
			rules := r.IPTablesRules()
			if dryRun {
				_, err := io.WriteString(cmd.OutOrStdout(), rules)
				return err
			}
			out, err := inject.ApplyIPTables(cmd.Context(), rules)
			if err != nil {
				return err
			}
			fmt.Fprint(cmd.ErrOrStderr(), string(bytes.TrimSpace(out))+"\n")
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the iptables-restore input instead of applying it")
	return cmd
}
