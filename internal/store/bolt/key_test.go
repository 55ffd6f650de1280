package bolt

import (
	"bytes"
	"slices"
	"testing"

	"github.com/canarymesh/canarymesh/internal/store"
)

// The key layout must keep one kind, and one kind in one namespace, a contiguous range
// that a prefix scan finds, in kind, namespace, name order.
func TestKeyLayoutPrefixScans(t *testing.T) {
	keys := []store.Key{
		{Kind: "VirtualNode", Namespace: "b", Name: "x"},
		{Kind: "Mesh", Name: "m"},
		{Kind: "VirtualNode", Namespace: "a", Name: "y"},
		{Kind: "VirtualNodeX", Namespace: "a", Name: "a"},
		{Kind: "VirtualNode", Namespace: "ab", Name: "a"},
		{Kind: "VirtualNode", Namespace: "a", Name: "x-1"},
		{Kind: "VirtualNode", Namespace: "a", Name: "x"},
	}
	var encoded [][]byte
	for _, k := range keys {
		encoded = append(encoded, encodeKey(k))
		if back, ok := decodeKey(encodeKey(k)); !ok || back != k {
			t.Errorf("decodeKey(encodeKey(%v)) = %v", k, back)
		}
	}
	slices.SortFunc(encoded, bytes.Compare)
	scan := func(m matcher) []string {
		var out []string
		for _, b := range encoded {
			if bytes.HasPrefix(b, m.prefix()) && m.match(mustDecode(t, b).Kind, mustDecode(t, b).Namespace) {
				out = append(out, mustDecode(t, b).String())
			}
		}
		return out
	}
	for _, tc := range []struct {
		m    matcher
		want []string
	}{
		{matcher{}, []string{"Mesh/m", "VirtualNode/a/x", "VirtualNode/a/x-1", "VirtualNode/a/y", "VirtualNode/ab/a", "VirtualNode/b/x", "VirtualNodeX/a/a"}},
		{matcher{kind: "VirtualNode"}, []string{"VirtualNode/a/x", "VirtualNode/a/x-1", "VirtualNode/a/y", "VirtualNode/ab/a", "VirtualNode/b/x"}},
		{matcher{kind: "VirtualNode", namespace: "a"}, []string{"VirtualNode/a/x", "VirtualNode/a/x-1", "VirtualNode/a/y"}},
		{matcher{namespace: "a"}, []string{"VirtualNode/a/x", "VirtualNode/a/x-1", "VirtualNode/a/y", "VirtualNodeX/a/a"}},
	} {
		if got := scan(tc.m); !slices.Equal(got, tc.want) {
			t.Errorf("scan %+v = %v, want %v", tc.m, got, tc.want)
		}
	}
}

func mustDecode(t *testing.T, b []byte) store.Key {
	t.Helper()
	k, ok := decodeKey(b)
	if !ok {
		t.Fatalf("malformed key %q", b)
	}
	return k
}

func TestNewUIDIsRandom(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		u := newUID()
		if len(u) != 36 || seen[u] {
			t.Fatalf("uid %q: wrong length or repeated", u)
		}
		seen[u] = true
	}
}
