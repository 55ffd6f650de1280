package proxy

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReplayBody(t *testing.T) {
	b := newReplayBody(strings.NewReader("hello, world"))
	first := b.attempt()
	buf := make([]byte, 5)
	if n, _ := first.Read(buf); string(buf[:n]) != "hello" {
		t.Fatalf("first attempt read %q", buf[:n])
	}
	if !b.replayable() {
		t.Fatal("a small body must stay replayable")
	}
	second := b.attempt()
	if _, err := first.Read(buf); !errors.Is(err, errStaleAttempt) {
		t.Fatalf("a superseded attempt must fail, got %v", err)
	}
	all, err := io.ReadAll(second)
	if err != nil || string(all) != "hello, world" {
		t.Fatalf("the retry got %q %v, want the whole body from the start", all, err)
	}
	third, _ := io.ReadAll(b.attempt())
	if string(third) != "hello, world" {
		t.Fatalf("a later retry got %q", third)
	}
}

func TestReplayBodyTooLarge(t *testing.T) {
	b := newReplayBody(bytes.NewReader(make([]byte, maxReplay+10)))
	if n, _ := io.Copy(io.Discard, b.attempt()); n != maxReplay+10 {
		t.Fatalf("the first attempt streamed %d bytes", n)
	}
	if b.replayable() {
		t.Fatal("a body beyond the replay buffer must not be replayable")
	}
	if _, err := b.attempt().Read(make([]byte, 1)); !errors.Is(err, errReplayLost) {
		t.Fatalf("replaying a lost body must fail, got %v", err)
	}
}
