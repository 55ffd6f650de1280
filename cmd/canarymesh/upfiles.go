package main

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/api/v1alpha1/manifest"
	"github.com/canarymesh/canarymesh/internal/controlplane"
)

// manifestWatcher applies a directory of manifests and applies it again whenever a file
// in it changes: GitOps on one machine. Each round applies the whole directory at once
// (all or nothing), as `canarymesh apply -R -f DIR` would; a bad edit is reported and
// the running configuration stays as it was. Objects whose documents were removed are
// left in place (there is no pruning), as with kubectl apply.
type manifestWatcher struct {
	dir    string
	client *controlplane.Client
	out    io.Writer
	every  time.Duration
	last   [32]byte
}

func (w *manifestWatcher) run(ctx context.Context) {
	if w.every == 0 {
		w.every = time.Second
	}
	for {
		if sum, err := dirHash(w.dir); err != nil {
			fmt.Fprintf(w.out, "canarymesh up -f: %v\n", err)
		} else if sum != w.last {
			// A bad edit is reported once; the next edit tries again.
			w.apply(ctx)
			w.last = sum
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.every):
		}
	}
}

// apply reads and applies the directory; it reports what changed, or why nothing did.
func (w *manifestWatcher) apply(ctx context.Context) {
	res, err := manifest.ReadPaths([]string{w.dir}, nil, true, manifest.Options{})
	if err != nil {
		fmt.Fprintf(w.out, "canarymesh up -f %s: nothing applied:\n%v\n", w.dir, err)
		return
	}
	objs := make([]v1alpha1.Object, len(res.Items))
	for i, it := range res.Items {
		objs[i] = it.Object
	}
	resp, err := w.client.Apply(ctx, objs, false)
	if err != nil {
		if rerr := reportApplyError(w.out, res, err); rerr == err {
			fmt.Fprintf(w.out, "canarymesh up -f %s: %v\n", w.dir, err)
		}
		return
	}
	for _, r := range resp.Results {
		if r.Action != controlplane.ActionUnchanged {
			fmt.Fprintf(w.out, "%s/%s %s (from %s)\n", strings.ToLower(r.Kind), r.Name, r.Action, w.dir)
		}
	}
}

// dirHash fingerprints the manifests under dir: names and contents.
func dirHash(dir string) ([32]byte, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case ".yaml", ".yml", ".json":
			if !d.IsDir() {
				files = append(files, p)
			}
		}
		return nil
	})
	if err != nil {
		return [32]byte{}, err
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return [32]byte{}, err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", f, len(b))
		h.Write(b)
	}
	var sum [32]byte
	copy(sum[:], h.Sum(nil))
	return sum, nil
}
