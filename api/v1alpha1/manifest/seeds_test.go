package manifest

import (
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files from the current output")

const seedDir = "testdata/seeds"

// defective is the seed file with a missing '---': it must fail, naming file and line.
const defective = "case-study/canary/hello_v2.yaml"

func seedFiles(t testing.TB) []string {
	var files []string
	err := filepath.WalkDir(seedDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) == 0 {
		t.Fatalf("reading %s: %v (%d files)", seedDir, err, len(files))
	}
	return files
}

// render is the golden form of a decode: the notices, then each object as stored.
func render(t *testing.T, res *Result) string {
	var b strings.Builder
	for _, n := range res.Notices {
		b.WriteString("# " + n + "\n")
	}
	for _, it := range res.Items {
		data, err := yaml.Marshal(it.Object)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString("---\n")
		b.Write(data)
	}
	return b.String()
}

// Every seed manifest applies, and converts to exactly what its golden file shows.
func TestSeedManifestsConvert(t *testing.T) {
	for _, f := range seedFiles(t) {
		rel, _ := filepath.Rel(seedDir, f)
		if rel == defective {
			continue
		}
		t.Run(rel, func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Decode(filepath.Base(f), data, Options{})
			if err != nil {
				t.Fatalf("seed does not apply:\n%v", err)
			}
			got := render(t, res)
			golden := filepath.Join("testdata", "golden", rel+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("conversion of %s differs from %s (run go test -update if the change is intended)\n--- got\n%s\n--- want\n%s", rel, golden, got, want)
			}
		})
	}
}

// The seed's defective file is refused with its name, the line of the second document's
// first key, and the likely cause.
func TestDefectiveSeedNamesFileAndLine(t *testing.T) {
	f := filepath.Join(seedDir, defective)
	_, err := ReadPaths([]string{f}, nil, false, Options{})
	if err == nil {
		t.Fatal("the defective seed applied")
	}
	msg := err.Error()
	for _, want := range []string{f + ":24:", `key "apiVersion" is defined a second time (first at line 1)`, "'---'"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
}
