// Command canarymesh is Canarymesh's one binary: the standalone control plane (up), the
// CLI that talks to it (apply, get, describe, delete), and, as later commands, the proxy,
// the canary controller and the load tester. This package holds flags and wiring only.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/canarymesh/canarymesh/internal/controlplane"
)

// version is set at build time with -ldflags "-X main.version=..."; otherwise the
// module version or "dev".
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// globals are the flags every command shares.
type globals struct {
	dataDir  string
	server   string
	token    string
	logLevel string
}

func (g *globals) logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// defaultDataDir is $CANARYMESH_DATA_DIR, else ~/.canarymesh.
func defaultDataDir() string {
	if d := os.Getenv("CANARYMESH_DATA_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ".canarymesh"
	}
	return filepath.Join(home, ".canarymesh")
}

// client finds the server and token: flags, then environment, then the data directory
// that `canarymesh up` wrote them to.
func (g *globals) client() (*controlplane.Client, error) {
	server, token := g.server, g.token
	if server == "" {
		server = os.Getenv("CANARYMESH_SERVER")
	}
	if token == "" {
		token = os.Getenv("CANARYMESH_TOKEN")
	}
	if server == "" {
		b, err := os.ReadFile(filepath.Join(g.dataDir, serverFile))
		if err != nil {
			return nil, fmt.Errorf("no control plane found: start one with `canarymesh up`, or pass --server / set CANARYMESH_SERVER (%v)", err)
		}
		server = strings.TrimSpace(string(b))
	}
	if token == "" {
		b, err := os.ReadFile(filepath.Join(g.dataDir, tokenFile))
		if err != nil {
			return nil, fmt.Errorf("no token found: pass --token or set CANARYMESH_TOKEN (%v)", err)
		}
		token = strings.TrimSpace(string(b))
	}
	return controlplane.NewClient(server, token), nil
}

func newRootCommand() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "canarymesh",
		Short:         "A self-hosted service mesh with automated canary releases",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.dataDir, "data-dir", defaultDataDir(), "data directory of the standalone control plane (env CANARYMESH_DATA_DIR)")
	pf.StringVar(&g.server, "server", "", "control-plane URL (env CANARYMESH_SERVER; default: read from the data directory)")
	pf.StringVar(&g.token, "token", "", "API token (env CANARYMESH_TOKEN; default: read from the data directory)")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.AddCommand(
		newUpCommand(g),
		newApplyCommand(g),
		newGetCommand(g),
		newDescribeCommand(g),
		newDeleteCommand(g),
		newVersionCommand(g),
		newLoadtestCommand(g),
		newLoadtesterCommand(g),
		newEventsCommand(g),
		newProxyCommand(g),
		newDemoCommand(g),
		newDemoAppCommand(g),
		newLogsCommand(g),
		newPromoteCommand(g),
		newAbortCommand(g),
		newRetryCommand(g),
		newPauseCommand(g),
		newResumeCommand(g),
		newControllerCommand(g),
		newInjectCommand(g),
	)
	return root
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCommand().ExecuteContext(ctx); err != nil {
		var code exitCode
		if !errors.As(err, &code) {
			fmt.Fprintln(os.Stderr, "error:", err)
			code = 1
		}
		stop()
		os.Exit(int(code))
	}
}

// exitCode ends the process with a code after the command printed its own message.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
