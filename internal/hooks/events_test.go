package hooks

import (
	"context"
	"testing"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/bolt"
)

func TestRecorderCountsRepeatsAndPrunes(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(ctx, t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := time.Unix(1000, 0)
	r := &Recorder{Store: st, Source: "canary-controller", Now: func() time.Time { clock = clock.Add(time.Second); return clock }, MaxPerObject: 3}
	cd := canary()
	cd.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Canary"))
	for i := 0; i < 3; i++ {
		if err := r.Record(ctx, cd, v1alpha1.EventTypeWarning, "Synced", "Halt advancement podinfo.demo: success rate 90% < 99%"); err != nil {
			t.Fatal(err)
		}
	}
	for _, msg := range []string{"weight 5", "weight 10", "weight 15"} {
		if err := r.Record(ctx, cd, v1alpha1.EventTypeNormal, "Synced", "Advance podinfo.demo canary "+msg); err != nil {
			t.Fatal(err)
		}
	}
	objs, _, err := st.List(ctx, store.Filter{Kind: "Event", Namespace: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	evs := For(objs, "Canary", "podinfo")
	if len(evs) != 3 {
		t.Fatalf("kept %d events, want 3", len(evs))
	}
	if evs[0].Message != "Advance podinfo.demo canary weight 5" || evs[2].Message != "Advance podinfo.demo canary weight 15" {
		t.Errorf("kept the wrong ones: %q … %q", evs[0].Message, evs[2].Message)
	}
	// The repeated warning was pruned as the oldest; recording it again starts at 1.
	if err := r.Record(ctx, cd, v1alpha1.EventTypeWarning, "Synced", "x"); err != nil {
		t.Fatal(err)
	}
	if err := r.Record(ctx, cd, v1alpha1.EventTypeWarning, "Synced", "x"); err != nil {
		t.Fatal(err)
	}
	objs, _, _ = st.List(ctx, store.Filter{Kind: "Event", Namespace: "demo"})
	evs = For(objs, "Canary", "podinfo")
	last := evs[len(evs)-1]
	if last.Message != "x" || last.Count != 2 || last.Source != "canary-controller" || !last.LastTimestamp.After(last.FirstTimestamp.Time) {
		t.Errorf("repeat not counted: %+v", last)
	}
}

// Given events written by an earlier Recorder (an earlier process), a new Recorder
// learns them from the store on its first event and still keeps MaxPerObject.
func TestRecorderLearnsEarlierEvents(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(ctx, t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := time.Unix(1000, 0)
	now := func() time.Time { clock = clock.Add(time.Second); return clock }
	cd := canary()
	cd.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Canary"))
	first := &Recorder{Store: st, Now: now, MaxPerObject: 3}
	for _, msg := range []string{"one", "two", "three"} {
		if err := first.Record(ctx, cd, v1alpha1.EventTypeNormal, "Synced", msg); err != nil {
			t.Fatal(err)
		}
	}
	second := &Recorder{Store: st, Now: now, MaxPerObject: 3}
	if err := second.Record(ctx, cd, v1alpha1.EventTypeNormal, "Synced", "four"); err != nil {
		t.Fatal(err)
	}
	objs, _, err := st.List(ctx, store.Filter{Kind: "Event", Namespace: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	evs := For(objs, "Canary", "podinfo")
	if len(evs) != 3 || evs[0].Message != "two" || evs[2].Message != "four" {
		var got []string
		for _, ev := range evs {
			got = append(got, ev.Message)
		}
		t.Fatalf("kept %v, want two, three, four", got)
	}
}

// Events of the same second (the stored times have no finer grain) come out in the
// order they were recorded, not in the order of their names.
func TestForKeepsTheOrderWithinOneSecond(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(ctx, t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clock := time.Unix(1000, 0)
	r := &Recorder{Store: st, Source: "canary-controller", Now: func() time.Time { clock = clock.Add(time.Millisecond); return clock }}
	cd := canary()
	cd.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Canary"))
	msgs := []string{
		"New Workload detected, starting initialization of podinfo.demo",
		"Initialization done! podinfo.demo",
		"New revision detected! Scaling up podinfo.demo",
		"Starting canary analysis for podinfo.demo",
		"Advance podinfo.demo canary weight 10",
		"Rolling back podinfo.demo failed checks threshold reached 3",
		"Canary failed! Scaling down podinfo.demo",
	}
	for _, m := range msgs {
		if err := r.Record(ctx, cd, v1alpha1.EventTypeNormal, "Synced", m); err != nil {
			t.Fatal(err)
		}
	}
	objs, _, err := st.List(ctx, store.Filter{Kind: "Event", Namespace: "demo"})
	if err != nil {
		t.Fatal(err)
	}
	evs := For(objs, "Canary", "podinfo")
	if len(evs) != len(msgs) {
		t.Fatalf("got %d events, want %d", len(evs), len(msgs))
	}
	for i, e := range evs {
		if e.Message != msgs[i] {
			t.Errorf("event %d is %q, want %q", i, e.Message, msgs[i])
		}
	}
}
