package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/canarymesh/canarymesh/internal/loadtest"
)

func newLoadtestCommand(_ *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "loadtest [hey flags] URL",
		Short: "Send HTTP load with hey's flags and print hey's summary",
		Long: `Send HTTP load the way hey does, with hey's flags, and print hey's summary:
totals, a response time histogram, latency percentiles, status codes and errors.
No hey binary is needed. --rate switches to an open model: a fixed request rate
whatever the response times, with latency counted from each request's scheduled time.

Examples:
  canarymesh loadtest -z 1m -q 10 -c 2 http://podinfo-canary.demo:9898/
  canarymesh loadtest -n 1000 -c 20 -m POST -H "Content-Type: application/json" -d '{}' http://127.0.0.1:9898/token
  canarymesh loadtest --rate 500 -c 100 -z 30s http://127.0.0.1:9898/

` + loadtest.Usage,
		// hey's flags are Go-style (-disable-keepalive, -host), which cobra's flags are not.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, every, err := loadtest.ParseArgs(args)
			if errors.Is(err, loadtest.ErrHelp) {
				fmt.Fprint(cmd.OutOrStdout(), cmd.Long)
				return nil
			}
			if err != nil {
				return fmt.Errorf("%w (see canarymesh loadtest -h)", err)
			}
			if every > 0 {
				cfg.ProgressInterval = every
				cfg.Progress = func(p loadtest.Progress) { fmt.Fprintln(cmd.ErrOrStderr(), p) }
			}
			res, err := loadtest.Run(cmd.Context(), cfg)
			if res == nil {
				return err
			}
			if rerr := res.Report(cmd.OutOrStdout()); rerr != nil {
				return rerr
			}
			if err != nil { // interrupted: the summary above is of what was sent
				return exitCode(130)
			}
			return nil
		},
	}
}

func newLoadtesterCommand(g *globals) *cobra.Command {
	var (
		listen     string
		allowShell bool
		timeout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "loadtester",
		Short: "Serve the flagger-loadtester compatible webhook API: hey load, gates, shell tasks",
		Long: `Serve Flagger's load-tester API, so Canary webhooks written for flagger-loadtester
work unchanged: POST / with metadata.cmd "hey ..." runs load in the background on the
built-in generator (the same command for the same canary runs once at a time);
metadata.type "bash" runs a shell command and answers with its outcome, only with
--allow-shell. Manual gates: /gate/approve, /gate/halt, /gate/check, /gate/open,
/gate/close, /rollback/check, /rollback/open, /rollback/close. Also /healthz, /metrics.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := loadtest.ServiceOptions{AllowShell: allowShell, Logger: g.logger(), Timeout: timeout}
			return runLoadtester(cmd.Context(), listen, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", ":9090", "address to serve the API on")
	f.BoolVar(&allowShell, "allow-shell", false, "run bash tasks and non-hey cmd tasks (anyone who can reach the API can then run commands)")
	f.DurationVar(&timeout, "timeout", loadtest.DefaultTaskTimeout, "longest a task may run")
	return cmd
}

func runLoadtester(ctx context.Context, listen string, opts loadtest.ServiceOptions) error {
	log := opts.Logger
	svc := loadtest.NewService(opts)
	defer svc.Close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: svc, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("load tester up", "listen", ln.Addr().String(), "allowShell", opts.AllowShell, "timeout", opts.Timeout)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		// bash tasks still answering: closing their connections cancels them
		log.Warn("closing requests still in progress", slog.Any("err", err))
		return srv.Close()
	}
	return nil
}
