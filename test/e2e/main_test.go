// Package e2e runs the canarymesh binary as users do: built from source, started with
// `up`, driven through the CLI, killed and restarted.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// binary is the canarymesh binary built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "canarymesh-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "canarymesh")
	build := exec.Command("go", "build", "-o", binary, "../../cmd/canarymesh")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building canarymesh:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running `canarymesh up`.
type server struct {
	t       *testing.T
	dataDir string
	cmd     *exec.Cmd
	log     interface {
		io.Writer
		String() string
	}
}

// startServer runs `canarymesh up` on a free port with dataDir and waits until it answers.
func startServer(t *testing.T, dataDir string) *server {
	t.Helper()
	_ = os.Remove(filepath.Join(dataDir, "server"))
	s := &server{t: t, dataDir: dataDir, log: &bytes.Buffer{}}
	s.cmd = exec.Command(binary, "up", "--data-dir", dataDir, "--listen", "127.0.0.1:0")
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			_ = s.cmd.Process.Kill()
			_ = s.cmd.Wait()
		}
		if t.Failed() {
			t.Logf("server log:\n%s", s.log)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(filepath.Join(dataDir, "server")); err == nil {
			if _, _, err := s.cli("version"); err == nil {
				return s
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("canarymesh up did not become ready; log:\n%s", s.log)
	return nil
}

// kill ends the server with SIGKILL: no shutdown code runs.
func (s *server) kill() {
	s.t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		s.t.Fatal(err)
	}
	_ = s.cmd.Wait()
}

// cli runs a canarymesh command against this server's data directory.
func (s *server) cli(args ...string) (string, string, error) {
	return run(s.dataDir, "", args...)
}

func run(dataDir, stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"--data-dir", dataDir}, args...)...)
	cmd.Env = append(os.Environ(), "CANARYMESH_SERVER=", "CANARYMESH_TOKEN=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	return out.String(), errb.String(), err
}

// mustCLI runs a command that must succeed and returns its standard output.
func (s *server) mustCLI(args ...string) string {
	s.t.Helper()
	out, errOut, err := s.cli(args...)
	if err != nil {
		s.t.Fatalf("canarymesh %s: %v\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), err, out, errOut)
	}
	return out
}
