package results

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A benchmark's section is created, appended, or replaced between its own marks; what
// is around it, other benchmarks' sections included, stays as it was.
func TestUpdateReplacesOnlyItsSection(t *testing.T) {
	path := filepath.Join(t.TempDir(), "RESULTS.md")
	read := func() string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	update := func(name, section string) {
		t.Helper()
		if err := Update(path, name, section); err != nil {
			t.Fatal(err)
		}
	}
	pb, pe := Marks("proxy")
	fb, fe := Marks("fanout")

	update("proxy", "first\n")
	if got, want := read(), "# Benchmark results\n\n"+pb+"\nfirst\n"+pe+"\n"; got != want {
		t.Fatalf("a new file:\n%s\nwant\n%s", got, want)
	}
	if err := os.WriteFile(path, []byte(read()+"\nNotes written by hand.\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	update("fanout", "fan-out\n")
	update("proxy", "second\n")
	want := "# Benchmark results\n\n" + pb + "\nsecond\n" + pe + "\n\nNotes written by hand.\n\n" + fb + "\nfan-out\n" + fe + "\n"
	if got := read(); got != want {
		t.Fatalf("after appending and replacing:\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(pb, "go run ./bench/proxy") {
		t.Errorf("the mark %q does not say which command writes the section", pb)
	}
}
