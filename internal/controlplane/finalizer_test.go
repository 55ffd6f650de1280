package controlplane

import (
	"context"
	"errors"
	"testing"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// Given a Mesh with a finalizer, when it is deleted through the API, then it stays,
// marked with a deletionTimestamp; an apply leaves the finalizer in place; a PUT that
// removes the last finalizer removes the object.
func TestDeleteWaitsForFinalizers(t *testing.T) {
	c, st, _ := newTestAPI(t)
	ctx := context.Background()
	m := mesh("m", nil)
	m.Finalizers = []string{"example.dev/cleanup"}
	if _, err := c.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, kind(t, "mesh"), "", "m"); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, kind(t, "mesh"), "", "m")
	if err != nil {
		t.Fatalf("a mesh with a finalizer is gone at once: %v", err)
	}
	if got.GetDeletionTimestamp() == nil {
		t.Fatal("no deletionTimestamp after DELETE")
	}
	// A second DELETE changes nothing; an apply keeps the finalizer and the mark.
	if err := c.Delete(ctx, kind(t, "mesh"), "", "m"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, []v1alpha1.Object{mesh("m", nil)}, false); err != nil {
		t.Fatal(err)
	}
	got, err = c.Get(ctx, kind(t, "mesh"), "", "m")
	if err != nil || len(got.GetFinalizers()) != 1 || got.GetDeletionTimestamp() == nil {
		t.Fatalf("after apply: finalizers %v, deletionTimestamp %v, err %v", got.GetFinalizers(), got.GetDeletionTimestamp(), err)
	}

	got.SetFinalizers(nil)
	if _, err := c.Update(ctx, got, false); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(ctx, store.Key{Kind: "Mesh", Name: "m"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after the last finalizer went: %v, want not found", err)
	}
}

// Given objects without finalizers, DELETE removes them at once, and a PUT of an object
// not being deleted may drop its finalizers without removing it.
func TestFinalizersOnlyHoldDeletion(t *testing.T) {
	c, _, _ := newTestAPI(t)
	ctx := context.Background()
	m := mesh("m", nil)
	m.Finalizers = []string{"example.dev/cleanup"}
	if _, err := c.Create(ctx, m); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, kind(t, "mesh"), "", "m")
	if err != nil {
		t.Fatal(err)
	}
	got.SetFinalizers(nil)
	if _, err := c.Update(ctx, got, false); err != nil {
		t.Fatal(err)
	}
	got, err = c.Get(ctx, kind(t, "mesh"), "", "m")
	if err != nil || len(got.GetFinalizers()) != 0 || got.GetDeletionTimestamp() != nil {
		t.Fatalf("after dropping the finalizer: %v, %v, %v", got.GetFinalizers(), got.GetDeletionTimestamp(), err)
	}
	if err := c.Delete(ctx, kind(t, "mesh"), "", "m"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, kind(t, "mesh"), "", "m"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after DELETE: %v, want not found", err)
	}
}
