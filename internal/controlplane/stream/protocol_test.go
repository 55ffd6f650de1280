package stream

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// A push made from a snapshot's encoding is byte for byte the JSON of the Push message,
// so proxies decode it as before.
func TestPushFromEncodingIsThePushJSON(t *testing.T) {
	for _, s := range []*snapshot.Snapshot{testSnapshot(testNode, 1), benchSnapshot(testNode, 123456789)} {
		enc, err := snapshot.Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(Push{Snapshot: s})
		if err != nil {
			t.Fatal(err)
		}
		if got := encodePush(s, enc).data; !bytes.Equal(got, want) {
			t.Errorf("version %d:\n got %s\nwant %s", s.Version, got, want)
		}
	}
}
