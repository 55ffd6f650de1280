package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/canarymesh/canarymesh/internal/controlplane/stream"
	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
	"github.com/canarymesh/canarymesh/internal/proxy"
)

type proxyFlags struct {
	node          string
	controlPlane  string
	ingressListen string
	egressListen  string
	gatewayHost   string
	adminListen   string
}

func newProxyCommand(g *globals) *cobra.Command {
	var f proxyFlags
	cmd := &cobra.Command{
		Use:   "proxy --node NS/NAME [--control-plane ADDR] [--token T]",
		Short: "Run one proxy as a separate sidecar process, fed by the control plane",
		Long: `Run the proxy of one mesh node beside its application. It connects to the control
plane's push stream, applies every snapshot it is sent (or rejects it with the reason),
and keeps serving its last snapshot while the control plane is away.

--node takes NS/NAME for a virtual node, VirtualGateway/NS/NAME for a gateway, or egress.
Ports follow App Mesh's Envoy: ingress 15000, egress 15001, admin (stats) 9901.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runProxy(cmd.Context(), g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.node, "node", "", "the node: NS/NAME (a virtual node), VirtualGateway/NS/NAME, or egress")
	fl.StringVar(&f.controlPlane, "control-plane", "", "push stream address host:port (default: read from the data directory)")
	fl.StringVar(&f.ingressListen, "ingress-listen", "127.0.0.1:15000", "address of the first ingress listener (more bind ephemeral ports)")
	fl.StringVar(&f.egressListen, "egress-listen", "127.0.0.1:15001", "address of the egress listener")
	fl.StringVar(&f.gatewayHost, "gateway-host", "0.0.0.0", "host gateway listeners bind on, at their declared ports")
	fl.StringVar(&f.adminListen, "admin-listen", "127.0.0.1:9901", "address serving /stats/prometheus")
	_ = cmd.MarkFlagRequired("node")
	return cmd
}

// nodeName turns the --node flag into the control plane's node name.
func nodeName(s string) (string, error) {
	switch parts := strings.Split(s, "/"); {
	case s == snapshot.EgressNode:
		return s, nil
	case len(parts) == 2 && parts[0] != "" && parts[1] != "":
		return "VirtualNode/" + s, nil
	case len(parts) == 3 && (parts[0] == "VirtualNode" || parts[0] == "VirtualGateway") && parts[1] != "" && parts[2] != "":
		return s, nil
	}
	return "", fmt.Errorf("--node %q: expected NS/NAME, VirtualGateway/NS/NAME or egress", s)
}

func runProxy(ctx context.Context, g *globals, f proxyFlags) error {
	log := g.logger()
	node, err := nodeName(f.node)
	if err != nil {
		return err
	}
	target, token, err := proxyTarget(g, f)
	if err != nil {
		return err
	}
	// The first ingress listener keeps --ingress-listen for the proxy's whole life, so
	// its socket survives snapshot changes.
	var mu sync.Mutex
	firstIngress := ""
	bind := func(l snapshot.Listener) string {
		switch l.Kind {
		case snapshot.Egress:
			return f.egressListen
		case snapshot.Gateway:
			return net.JoinHostPort(f.gatewayHost, fmt.Sprint(l.Port))
		}
		mu.Lock()
		defer mu.Unlock()
		if firstIngress == "" {
			firstIngress = l.Name
		}
		if l.Name == firstIngress {
			return f.ingressListen
		}
		return "127.0.0.1:0"
	}
	p := proxy.New(proxy.Options{Logger: log, Bind: bind})
	defer p.Close()
	c, err := stream.Dial(ctx, target, stream.ClientOptions{Node: node, Token: token, Logger: log, ProxyVersion: buildVersion()})
	if err != nil {
		return err
	}
	defer c.Close()
	admin, err := net.Listen("tcp", f.adminListen)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("/stats/prometheus", p.Metrics())
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if p.Version() == 0 {
			http.Error(w, "no snapshot yet", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "LIVE version %d\n", p.Version())
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(admin) }()
	defer srv.Close()
	log.Info("proxy starting", "node", node, "controlPlane", target, "admin", admin.Addr().String())
	err = c.Run(ctx, p.Update)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// proxyTarget finds the push stream and token: flags, environment, then the data
// directory of a local `canarymesh up`.
func proxyTarget(g *globals, f proxyFlags) (string, string, error) {
	target, token := f.controlPlane, g.token
	if token == "" {
		token = os.Getenv("CANARYMESH_TOKEN")
	}
	if target == "" {
		b, err := os.ReadFile(filepath.Join(g.dataDir, streamFile))
		if err != nil {
			return "", "", fmt.Errorf("no control plane given: pass --control-plane host:port (%v)", err)
		}
		target = strings.TrimSpace(string(b))
	}
	if token == "" {
		b, err := os.ReadFile(filepath.Join(g.dataDir, tokenFile))
		if err != nil {
			return "", "", fmt.Errorf("no token given: pass --token or set CANARYMESH_TOKEN (%v)", err)
		}
		token = strings.TrimSpace(string(b))
	}
	return target, token, nil
}
