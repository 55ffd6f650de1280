package bolt_test

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/bolt"
)

// writerDirEnv tells the test binary, started again as a child, to run as the writer.
const writerDirEnv = "CANARYMESH_BOLT_WRITER_DIR"

// TestHelperWriter is the child process of TestKillNineLosesNothingAcknowledged: it
// writes until it is killed and prints every write the store acknowledged.
func TestHelperWriter(t *testing.T) {
	dir := os.Getenv(writerDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestKillNineLosesNothingAcknowledged")
	}
	ctx := t.Context()
	s, err := bolt.Open(ctx, dir, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, mesh("counter")); err != nil {
		t.Fatal(err)
	}
	// Bounded, so a child whose parent died does not write forever.
	for i, deadline := 0, time.Now().Add(2*time.Minute); time.Now().Before(deadline); i++ {
		name := fmt.Sprintf("m-%d", i)
		var created uint64
		err := s.Txn(ctx, func(tx store.Tx) error {
			obj, err := tx.Create(mesh(name))
			if err != nil {
				return err
			}
			created, _ = strconv.ParseUint(obj.GetResourceVersion(), 10, 64)
			counter, err := tx.Get(meshKey("counter"))
			if err != nil {
				return err
			}
			counter.SetAnnotations(map[string]string{"count": strconv.Itoa(i)})
			_, err = tx.Update(counter)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		// One write per line, so a kill never leaves half a line.
		fmt.Printf("ack %s %d %d\n", name, created, i)
	}
}

func TestKillNineLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWriter$", "-test.count=1")
	cmd.Env = append(os.Environ(), writerDirEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Never hang on a child that stops talking.
	watchdog := time.AfterFunc(wait*3, func() { _ = cmd.Process.Kill() })
	defer watchdog.Stop()

	type ack struct {
		name string
		rev  uint64
		i    int
	}
	var acks []ack
	killed := false
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var a ack
		if _, err := fmt.Sscanf(sc.Text(), "ack %s %d %d", &a.name, &a.rev, &a.i); err != nil {
			continue // the test framework's own lines
		}
		acks = append(acks, a)
		if len(acks) == 200 && !killed {
			// SIGKILL: no deferred Close, no flush, as a crash or an OOM kill.
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			killed = true
		}
	}
	_ = cmd.Wait() // reports the kill
	if !killed {
		t.Fatalf("writer stopped after %d acknowledged writes; stderr:\n%s", len(acks), stderr.String())
	}
	t.Logf("writer killed after %d acknowledged writes", len(acks))

	s := open(t, dir, bolt.Options{})
	ctx := t.Context()
	for _, a := range acks {
		obj, err := s.Get(ctx, meshKey(a.name))
		if err != nil {
			t.Fatalf("acknowledged %s (rv %d) lost: %v", a.name, a.rev, err)
		}
		if got := rv(t, obj); got < a.rev {
			t.Errorf("%s: resourceVersion %d, acknowledged %d", a.name, got, a.rev)
		}
	}
	counter, err := s.Get(ctx, meshKey("counter"))
	if err != nil {
		t.Fatal(err)
	}
	last := acks[len(acks)-1]
	if n, _ := strconv.Atoi(counter.GetAnnotations()["count"]); n < last.i {
		t.Errorf("counter = %d, acknowledged %d", n, last.i)
	}
	// The store goes on from where it was, and its history is whole.
	_, rev, err := s.List(ctx, store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if after := marker(t, s, "after-crash"); after != rev+1 || rev < last.rev {
		t.Errorf("after the crash: revision %d then %d, last acknowledged %d", rev, after, last.rev)
	}
	events, err := s.Watch(ctx, store.Filter{Kind: "Mesh"}, last.rev-1)
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, events); ev.ResourceVersion != last.rev || ev.Object.GetName() != last.name {
		t.Errorf("history after the crash starts with %s@%d, want %s@%d", ev.Object.GetName(), ev.ResourceVersion, last.name, last.rev)
	}
}
