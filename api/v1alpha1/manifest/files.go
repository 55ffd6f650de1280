package manifest

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// ReadPaths decodes every file named, walking directories (recursively when recursive
// is set) for .yaml, .yml and .json files in lexical order; "-" reads stdin. Problems
// from every file are gathered and returned together; any problem means no Result.
//
// When one object is defined twice, the later definition wins, as with kubectl apply
// of a directory, and a notice says so.
func ReadPaths(paths []string, stdin io.Reader, recursive bool, opts Options) (*Result, error) {
	var files []string
	for _, p := range paths {
		if p == "-" {
			files = append(files, p)
			continue
		}
		st, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		found, err := manifestFiles(p, recursive)
		if err != nil {
			return nil, err
		}
		if len(found) == 0 {
			return nil, fmt.Errorf("%s: no .yaml, .yml or .json files", p)
		}
		files = append(files, found...)
	}
	out := &Result{}
	var errs Errors
	for _, f := range files {
		var data []byte
		var err error
		if f == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(f)
		}
		if err != nil {
			return nil, err
		}
		res, err := Decode(f, data, opts)
		if err != nil {
			if e, ok := err.(Errors); ok {
				errs = append(errs, e...)
				continue
			}
			return nil, err
		}
		out.Notices = append(out.Notices, res.Notices...)
		out.Items = append(out.Items, res.Items...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	out.dedupe()
	return out, nil
}

func manifestFiles(dir string, recursive bool) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != dir && !recursive {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			files = append(files, p)
		}
		return nil
	})
	sort.Strings(files)
	return files, err
}

// dedupe keeps the last definition of each object.
func (r *Result) dedupe() {
	last := map[string]int{}
	for i, it := range r.Items {
		last[identity(it.Object)] = i
	}
	kept := r.Items[:0]
	for i, it := range r.Items {
		id := identity(it.Object)
		if j := last[id]; j != i {
			later := r.Items[j]
			r.Notices = append(r.Notices, fmt.Sprintf("%s:%d: %s is defined again at %s:%d; the later definition wins",
				it.File, it.Line, id, later.File, later.Line))
			continue
		}
		kept = append(kept, it)
	}
	r.Items = kept
}

func identity(o v1alpha1.Object) string {
	return o.GetObjectKind().GroupVersionKind().Kind + " " + nameOf(o)
}
