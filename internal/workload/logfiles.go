package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"
)

// ErrNoLogs: no instance of that workload has written output in the data directory.
var ErrNoLogs = errors.New("no logs found")

// LogFileOptions select what OpenLogFiles reads.
type LogFileOptions struct {
	// Instance is the index to read; -1 reads every instance, each line prefixed with
	// [name-index].
	Instance int
	// Follow keeps reading as the files grow, until ctx ends or the reader is closed.
	Follow bool
	// PollInterval between checks for new output when following (default 250ms).
	PollInterval time.Duration
}

// OpenLogFiles reads the log files the supervisor of another process (canarymesh up)
// writes in dataDir: the rotated file first, then the current one.
func OpenLogFiles(ctx context.Context, dataDir, ns, name string, opts LogFileOptions) (io.ReadCloser, error) {
	if opts.PollInterval <= 0 {
		opts.PollInterval = 250 * time.Millisecond
	}
	indexes, err := logIndexes(dataDir, ns, name)
	if err != nil {
		return nil, err
	}
	if opts.Instance >= 0 {
		if !slices.Contains(indexes, opts.Instance) {
			return nil, fmt.Errorf("workload %s/%s instance %d: %w in %s", ns, name, opts.Instance, ErrNoLogs, filepath.Join(dataDir, "logs", ns))
		}
		indexes = []int{opts.Instance}
	}
	if len(indexes) == 0 {
		return nil, fmt.Errorf("workload %s/%s: %w in %s", ns, name, ErrNoLogs, filepath.Join(dataDir, "logs", ns))
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, i := range indexes {
		prefix := ""
		if opts.Instance < 0 {
			prefix = fmt.Sprintf("[%s-%d] ", name, i)
		}
		lw := &lineWriter{prefix: []byte(prefix), mu: &mu, out: pw}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer lw.Flush()
			tailFile(ctx, LogPath(dataDir, ns, name, i), lw, opts)
		}()
	}
	go func() {
		wg.Wait()
		pw.Close()
	}()
	return &pipeReader{PipeReader: pr, stop: cancel}, nil
}

// logIndexes lists the instance indexes that have a log file, in order.
func logIndexes(dataDir, ns, name string) ([]int, error) {
	entries, err := os.ReadDir(filepath.Join(dataDir, "logs", ns))
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(name) + `-(\d+)\.log$`)
	var out []int
	for _, e := range entries {
		if m := re.FindStringSubmatch(e.Name()); m != nil {
			i, err := strconv.Atoi(m[1])
			if err == nil {
				out = append(out, i)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// tailFile copies path.1 and path to w and, when following, what is appended to path
// later; a rotation (the file replaced or shorter than what was read) starts the new
// file from its beginning.
func tailFile(ctx context.Context, path string, w io.Writer, opts LogFileOptions) {
	if b, err := os.ReadFile(path + ".1"); err == nil {
		if _, err := w.Write(b); err != nil {
			return
		}
	}
	var f *os.File
	var off int64
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for {
		if f == nil {
			f, _ = os.Open(path)
			off = 0
		}
		if f != nil {
			n, err := io.Copy(w, f)
			off += n
			if err != nil {
				return // the reader was closed, or the file cannot be read
			}
		}
		if !opts.Follow {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(opts.PollInterval):
		}
		if rotated(f, path, off) {
			f.Close()
			f = nil
		}
	}
}

// rotated reports whether path no longer names the open file f, or was truncated.
func rotated(f *os.File, path string, off int64) bool {
	if f == nil {
		return true
	}
	cur, err := os.Stat(path)
	if err != nil {
		return false
	}
	open, err := f.Stat()
	if err != nil {
		return true
	}
	return !os.SameFile(cur, open) || cur.Size() < off
}
