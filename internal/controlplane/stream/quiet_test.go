package stream

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// lockedBuffer is a log sink the client's goroutine and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A proxy that starts before its control plane (as in canarymesh up) waits without
// warnings for its first few attempts; one that keeps failing is then warned about.
func TestFirstConnectionFailuresAreQuiet(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every attempt is refused
	var logged lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, err := Dial(ctx, addr, ClientOptions{Node: testNode, Token: testToken,
		Logger: slog.New(slog.NewTextHandler(&logged, nil)), Backoff: Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx, func(*snapshot.Snapshot) error { return nil })
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logged.String(), "control plane stream ended") && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	out := logged.String()
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < startupQuietFailures+1 {
		t.Fatalf("%d log lines, want at least %d:\n%s", len(lines), startupQuietFailures+1, out)
	}
	for i, l := range lines[:startupQuietFailures] {
		if !strings.Contains(l, "level=INFO") || !strings.Contains(l, "waiting for the control plane") {
			t.Errorf("line %d of the first failures is not a quiet wait: %s", i+1, l)
		}
	}
	if l := lines[startupQuietFailures]; !strings.Contains(l, "level=WARN") {
		t.Errorf("failure %d was not warned about: %s", startupQuietFailures+1, l)
	}
}
