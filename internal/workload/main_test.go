package workload

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/internal/demoapp"
)

// The tests run real processes: this test binary, started again by the supervisor with
// childModeEnv set, becomes one of the programs below instead of running the tests.
const (
	childModeEnv = "WORKLOAD_TEST_CHILD"
	// childVersionEnv is the version the demo app child reports.
	childVersionEnv = "WORKLOAD_TEST_VERSION"
	// childMarkerEnv is a directory where a child records that it got SIGTERM.
	childMarkerEnv = "WORKLOAD_TEST_MARKER_DIR"
)

// Child programs.
const (
	childApp        = "app"         // the demo app on $PORT; records SIGTERM, then shuts down
	childExit       = "exit"        // prints a line and exits with status 3 at once
	childIgnoreTerm = "ignore-term" // ignores SIGTERM and never exits by itself
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childModeEnv); mode != "" {
		os.Exit(runChild(mode))
	}
	os.Exit(m.Run())
}

func runChild(mode string) int {
	inst := os.Getenv(EnvInstance)
	switch mode {
	case childApp:
		fmt.Printf("hello from instance %s version %s\n", inst, os.Getenv(childVersionEnv))
		ctx, cancel := context.WithCancel(context.Background())
		term := make(chan os.Signal, 1)
		signal.Notify(term, syscall.SIGTERM)
		go func() {
			<-term
			if dir := os.Getenv(childMarkerEnv); dir != "" {
				name := fmt.Sprintf("sigterm-%s-%d", inst, os.Getpid())
				_ = os.WriteFile(filepath.Join(dir, name), []byte("SIGTERM\n"), 0o600)
			}
			fmt.Println("got SIGTERM, shutting down")
			cancel()
		}()
		err := demoapp.Run(ctx, "127.0.0.1:"+os.Getenv(EnvPort), demoapp.Options{Version: os.Getenv(childVersionEnv)})
		if err != nil {
			fmt.Fprintln(os.Stderr, "demo app:", err)
			return 1
		}
		return 0
	case childExit:
		fmt.Fprintln(os.Stderr, "crashing on purpose")
		return 3
	case childIgnoreTerm:
		signal.Ignore(syscall.SIGTERM)
		fmt.Println("ignoring SIGTERM")
		time.Sleep(time.Hour)
		return 0
	}
	fmt.Fprintln(os.Stderr, "unknown child mode", mode)
	return 2
}
