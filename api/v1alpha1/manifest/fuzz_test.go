package manifest

import (
	"encoding/json"
	"os"
	"testing"

	"sigs.k8s.io/yaml"
)

func writeFile(t testing.TB, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// FuzzDecode feeds the decoder arbitrary input, seeded with every seed manifest. It must
// never panic; whatever it accepts must be valid, and must decode again to the same
// objects when written back out as our own YAML.
func FuzzDecode(f *testing.F) {
	for _, p := range seedFiles(f) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: a}\n---\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Decode("fuzz.yaml", data, Options{})
		if err != nil {
			if _, ok := err.(Errors); !ok {
				t.Fatalf("error of type %T, want Errors: %v", err, err)
			}
			return
		}
		for _, it := range res.Items {
			out, err := yaml.Marshal(it.Object)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Decode("again.yaml", out, Options{})
			if err != nil {
				t.Fatalf("accepted input does not decode again:\n%s\n%v", out, err)
			}
			if len(again.Items) != 1 {
				t.Fatalf("re-decode gave %d items", len(again.Items))
			}
			a, _ := json.Marshal(it.Object)
			b, _ := json.Marshal(again.Items[0].Object)
			if string(a) != string(b) {
				t.Fatalf("round trip changed the object:\n%s\n%s", a, b)
			}
		}
	})
}
