package workload

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestRing(t *testing.T) {
	r := ring{buf: make([]byte, 8)}
	r.write([]byte("abc"))
	if got, next, lost := r.since(0); string(got) != "abc" || next != 3 || lost != 0 {
		t.Fatalf("since(0) = %q %d %d", got, next, lost)
	}
	r.write([]byte("defghij")) // 10 bytes written, 8 kept: "cdefghij"
	if got, next, lost := r.since(0); string(got) != "cdefghij" || next != 10 || lost != 2 {
		t.Fatalf("since(0) after wrap = %q %d %d", got, next, lost)
	}
	if got, _, lost := r.since(7); string(got) != "hij" || lost != 0 {
		t.Fatalf("since(7) = %q lost %d", got, lost)
	}
	r.write([]byte("0123456789ABCDEF")) // larger than the ring
	if got, next, _ := r.since(10); string(got) != "89ABCDEF" || next != 26 {
		t.Fatalf("since(10) after a big write = %q %d", got, next)
	}
	if got, next, _ := r.since(26); len(got) != 0 || next != 26 {
		t.Fatalf("since(end) = %q %d", got, next)
	}
}

func TestSinkRotatesAtSizeCap(t *testing.T) {
	path := LogPath(t.TempDir(), "ns", "app", 0)
	s := newSink(path, 1024, 100, slog.New(slog.DiscardHandler))
	line := strings.Repeat("x", 39) + "\n" // 40 bytes
	for range 6 {
		s.Write([]byte(line))
	}
	s.close()
	cur, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(path + ".1")
	if err != nil {
		t.Fatal(err)
	}
	if len(cur) > 100 || len(old) > 100 || len(cur)+len(old) != 80+80 {
		// 6 lines of 40 bytes with a cap of 100: files of 80, 80 and 80 bytes, the
		// oldest of which was dropped at the second rotation.
		t.Errorf("current %d bytes, rotated %d bytes", len(cur), len(old))
	}
}

func TestLineWriterPrefixesWholeLines(t *testing.T) {
	var out bytes.Buffer
	var mu sync.Mutex
	lw := &lineWriter{prefix: []byte("[a-0] "), mu: &mu, out: &out}
	lw.Write([]byte("one\ntw"))
	if out.String() != "[a-0] one\n" {
		t.Errorf("a partial line was written: %q", out.String())
	}
	lw.Write([]byte("o\nthr"))
	lw.Flush()
	if want := "[a-0] one\n[a-0] two\n[a-0] thr\n"; out.String() != want {
		t.Errorf("got %q, want %q", out.String(), want)
	}
}

// lineReader reads lines of a log stream in the background.
type lineReader struct {
	lines chan string
	seen  []string
}

func newLineReader(r io.Reader) *lineReader {
	lr := &lineReader{lines: make(chan string, 1024)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lr.lines <- sc.Text()
		}
		close(lr.lines)
	}()
	return lr
}

// until reads lines until one contains want, boundedly, and returns that line.
func (lr *lineReader) until(t *testing.T, want string) string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case l, ok := <-lr.lines:
			if !ok {
				t.Fatalf("reader ended before %q; saw:\n%s", want, strings.Join(lr.seen, "\n"))
			}
			lr.seen = append(lr.seen, l)
			if strings.Contains(l, want) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %q within 30s; saw:\n%s", want, strings.Join(lr.seen, "\n"))
		}
	}
}

func TestLogsCaptured(t *testing.T) {
	h := newHarness(t, nil)
	h.create(appWorkload(t, "podinfo", 2, "3.1.0"))
	w := h.waitStatus("podinfo", 30*time.Second, allReady)

	// From memory, every instance, prefixed.
	rc, err := h.sup.Logs(testNS, "podinfo", false)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[podinfo-0] hello from instance 0 version 3.1.0", "[podinfo-1] hello from instance 1 version 3.1.0", "[podinfo-0] [canarymesh]"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("Logs lacks %q:\n%s", want, b)
		}
	}
	if _, err := h.sup.Logs(testNS, "nope", false); err == nil {
		t.Error("Logs of an unknown workload succeeded")
	}

	// From the files, as `canarymesh logs` reads them.
	rc, err = OpenLogFiles(context.Background(), h.dir, testNS, "podinfo", LogFileOptions{Instance: 1})
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(rc)
	rc.Close()
	if !strings.HasPrefix(string(b), "[canarymesh]") || !strings.Contains(string(b), "hello from instance 1") || strings.Contains(string(b), "instance 0") {
		t.Errorf("instance 1's file:\n%s", b)
	}
	if _, err := OpenLogFiles(context.Background(), h.dir, testNS, "podinf", LogFileOptions{Instance: -1}); err == nil {
		t.Error("a name prefix matched another workload's files")
	}

	// Following, from memory and from the files: a kill shows in both.
	mem, err := h.sup.Logs(testNS, "podinfo", true)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	memLines := newLineReader(mem)
	files, err := OpenLogFiles(context.Background(), h.dir, testNS, "podinfo", LogFileOptions{Instance: -1, Follow: true, PollInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer files.Close()
	fileLines := newLineReader(files)
	memLines.until(t, "hello from instance 1")
	fileLines.until(t, "hello from instance 1")
	if err := syscall.Kill(int(w.Status.Instances[0].PID), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if l := memLines.until(t, "signal: killed"); !strings.HasPrefix(l, "[podinfo-0] [canarymesh]") {
		t.Errorf("the kill was reported as %q", l)
	}
	if l := fileLines.until(t, "signal: killed"); !strings.HasPrefix(l, "[podinfo-0] [canarymesh]") {
		t.Errorf("the kill was reported in the file as %q", l)
	}
}
