package loadtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// maxOutput bounds the command output kept for logs and answers.
const maxOutput = 64 << 10

// handleTask is POST /: Flagger's webhook with metadata.type and metadata.cmd.
func (s *Service) handleTask(w http.ResponseWriter, r *http.Request) {
	p, ok := decodePayload(w, r)
	if !ok {
		return
	}
	if len(p.Metadata) == 0 {
		reply(w, http.StatusBadRequest, "metadata not found in payload")
		return
	}
	cmd := strings.TrimSpace(p.Metadata["cmd"])
	if cmd == "" {
		reply(w, http.StatusBadRequest, "cmd not found in metadata")
		return
	}
	timeout, err := s.taskTimeout(p.Metadata)
	if err != nil {
		reply(w, http.StatusBadRequest, err.Error())
		return
	}
	switch typ := p.Metadata["type"]; typ {
	case "", TaskCmd:
		s.startCmd(w, p, cmd, timeout)
	case TaskBash:
		s.runBash(w, r, p, cmd, timeout)
	default:
		reply(w, http.StatusBadRequest, fmt.Sprintf(
			"unknown task type %q: this load tester runs %q (hey, or any command with --allow-shell) and %q (with --allow-shell)",
			typ, TaskCmd, TaskBash))
	}
}

// taskTimeout is the service's timeout, shortened by metadata.timeout if given.
func (s *Service) taskTimeout(md map[string]string) (time.Duration, error) {
	v, ok := md["timeout"]
	if !ok || v == "" {
		return s.opts.Timeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("metadata.timeout %q: want a positive duration such as 30s", v)
	}
	return min(d, s.opts.Timeout), nil
}

// startCmd starts a `cmd` task in the background and answers 202 at once, as
// flagger-loadtester does. hey commands run on our generator; anything else needs a
// shell. While a task with the same command runs for the same canary, another is not
// started: Flagger calls rollout hooks every interval, and one `hey -z 1m` is enough.
func (s *Service) startCmd(w http.ResponseWriter, p Payload, cmd string, timeout time.Duration) {
	kind, run := kindShell, func(ctx context.Context) error { return s.shell(ctx, p, "sh", cmd) }
	if IsHey(cmd) {
		cfg, err := ParseHey(cmd)
		if err != nil {
			reply(w, http.StatusBadRequest, err.Error())
			return
		}
		logOutput, _ := strconv.ParseBool(p.Metadata["logCmdOutput"])
		kind, run = kindHey, func(ctx context.Context) error { return s.hey(ctx, p, cmd, cfg, logOutput) }
	} else if !s.opts.AllowShell {
		reply(w, http.StatusForbidden, errShellRefused.Error())
		return
	}
	if !s.startOnce(p.canary()+"\n"+cmd, kind, timeout, run) {
		s.stats.skipped[kind].Add(1)
		s.log.Info("command skipped, the same one is running", "canary", p.canary(), "cmd", cmd)
		reply(w, http.StatusAccepted, "already running")
		return
	}
	s.log.Info("command started", "canary", p.canary(), "cmd", cmd)
	reply(w, http.StatusAccepted, "started")
}

// startOnce runs fn in the background unless a task with the same key is running.
func (s *Service) startOnce(key string, kind int, timeout time.Duration, fn func(context.Context) error) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running[key] || s.ctx.Err() != nil {
		return false
	}
	s.running[key] = true
	s.stats.started[kind].Add(1)
	s.wg.Go(func() {
		ctx, cancel := context.WithTimeout(s.ctx, timeout)
		defer cancel()
		if err := fn(ctx); err != nil {
			s.stats.failed[kind].Add(1)
		}
		s.mu.Lock()
		delete(s.running, key)
		s.mu.Unlock()
	})
	return true
}

// hey runs a hey command on the generator and logs its summary.
func (s *Service) hey(ctx context.Context, p Payload, cmd string, cfg Config, logOutput bool) error {
	res, err := Run(ctx, cfg)
	if res == nil {
		s.log.Error("command failed", "canary", p.canary(), "cmd", cmd, "err", err)
		return err
	}
	attrs := []any{"canary", p.canary(), "cmd", cmd, "requests", res.Requests, "errors", res.Errors,
		"rps", strconv.FormatFloat(res.RPS, 'f', 1, 64), "p99", res.Percentile(99), "statusCodes", res.StatusCodes}
	if errors.Is(err, context.DeadlineExceeded) {
		attrs = append(attrs, "stopped", "task timeout")
	} else if err != nil {
		attrs = append(attrs, "stopped", err.Error())
	}
	if logOutput {
		var b bytes.Buffer
		_ = res.Report(&b)
		attrs = append(attrs, "output", b.String())
	}
	s.log.Info("command finished", attrs...)
	if res.Errors > 0 && res.Requests == 0 {
		return errors.New("every request failed")
	}
	return nil
}

// shell runs a `cmd` task that is not hey through `sh -c`, in the background.
func (s *Service) shell(ctx context.Context, p Payload, sh, cmd string) error {
	out, err := runCommand(ctx, sh, cmd)
	if err != nil {
		s.log.Error("command failed", "canary", p.canary(), "cmd", cmd, "err", err, "output", out)
		return err
	}
	attrs := []any{"canary", p.canary(), "cmd", cmd}
	if v, _ := strconv.ParseBool(p.Metadata["logCmdOutput"]); v {
		attrs = append(attrs, "output", out)
	}
	s.log.Info("command finished", attrs...)
	return nil
}

// runBash runs a `bash` task while Flagger waits: 200 when it exits 0 (with its output
// if metadata.returnCmdOutput is true), 500 with the error and output otherwise.
func (s *Service) runBash(w http.ResponseWriter, r *http.Request, p Payload, cmd string, timeout time.Duration) {
	if !s.opts.AllowShell {
		reply(w, http.StatusForbidden, errShellRefused.Error())
		return
	}
	s.stats.started[kindBash].Add(1)
	s.log.Info("bash command", "canary", p.canary(), "cmd", cmd)
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	out, err := runCommand(ctx, "bash", cmd)
	if err != nil {
		s.stats.failed[kindBash].Add(1)
		s.log.Error("command failed", "canary", p.canary(), "cmd", cmd, "err", err, "output", out)
		reply(w, http.StatusInternalServerError, fmt.Sprintf("command failed: %v\n%s", err, out))
		return
	}
	s.log.Info("command finished", "canary", p.canary(), "cmd", cmd)
	if v, _ := strconv.ParseBool(p.Metadata["returnCmdOutput"]); v {
		reply(w, http.StatusOK, out)
		return
	}
	reply(w, http.StatusOK, "OK")
}

// runCommand runs `shell -c cmd` and returns its combined output, cut at maxOutput.
// WaitDelay stops waiting for pipes that children of a killed shell still hold open.
func runCommand(ctx context.Context, shell, cmd string) (string, error) {
	c := exec.CommandContext(ctx, shell, "-c", cmd)
	out := &limitedBuffer{max: maxOutput}
	c.Stdout, c.Stderr = out, out
	c.WaitDelay = 2 * time.Second
	err := c.Run()
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return out.String(), err
}

// limitedBuffer keeps the first max bytes written and drops the rest.
type limitedBuffer struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		b.truncated = true
		b.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *limitedBuffer) String() string {
	if b.truncated {
		return b.buf.String() + "\n[output truncated]"
	}
	return b.buf.String()
}
