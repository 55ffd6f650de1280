package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/canarymesh/canarymesh/internal/controlplane"
	"github.com/canarymesh/canarymesh/internal/store/bolt"
)

// Files `up` keeps in the data directory.
const (
	tokenFile  = "token"  // the API token, mode 0600, made on first start
	serverFile = "server" // the URL the API listens on, for the CLI to find
)

func newUpCommand(g *globals) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the standalone control plane on this machine",
		Long: `Run the standalone control plane: the embedded store in the data directory and
the API that apply, get, describe and delete talk to. A token is made in the data
directory on first start; the CLI reads it from there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runUp(cmd.Context(), g, listen)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:7480", "address the API listens on")
	return cmd
}

func runUp(ctx context.Context, g *globals, listen string) error {
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

	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	url := "http://" + ln.Addr().String()
	if err := writeFileAtomic(filepath.Join(g.dataDir, serverFile), []byte(url+"\n"), 0o600); err != nil {
		return err
	}
	api := controlplane.NewServer(st, token, buildVersion(), log)
	srv := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	rec := &controlplane.StatusReconciler{Store: st, Log: log}
	go func() { _ = rec.Run(ctx) }()
	log.Info("control plane up", "api", url, "dataDir", g.dataDir, "version", buildVersion())
	fmt.Fprintf(os.Stderr, "canarymesh is up: API at %s, data in %s\n", url, g.dataDir)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
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
