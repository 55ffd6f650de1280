package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/canarymesh/canarymesh/internal/demoapp"
)

// defaultDemoListen is $PORT on loopback when a supervisor gave one, else podinfo's :9898.
func defaultDemoListen() string {
	if p := os.Getenv("PORT"); p != "" {
		return "127.0.0.1:" + p
	}
	return ":9898"
}

func newDemoAppCommand(g *globals) *cobra.Command {
	var (
		listen string
		opts   demoapp.Options
	)
	cmd := &cobra.Command{
		Use:   "demo-app",
		Short: "Run the podinfo-like demo service",
		Long: `Run the podinfo-like service the demo releases. It answers with its version,
message, colour and logo (GET /, /version), has podinfo's probes and test endpoints
(/healthz, /readyz, /status/{code}, /delay/{seconds}, POST /token, /headers, /echo,
/env) and Prometheus metrics at /metrics. --error-rate and --delay stage a bad release.
PODINFO_UI_COLOR, PODINFO_UI_LOGO and PODINFO_UI_MESSAGE set the page when the flags
do not.`,
		Example: `  canarymesh demo-app --version 3.1.1
  canarymesh demo-app --version 3.1.2 --error-rate 0.5 --delay 200ms`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.ErrorRate < 0 || opts.ErrorRate > 1 {
				return fmt.Errorf("--error-rate %g is not a fraction from 0 to 1", opts.ErrorRate)
			}
			if opts.Delay < 0 {
				return fmt.Errorf("--delay %v is negative", opts.Delay)
			}
			opts.Log = g.logger()
			return demoapp.Run(cmd.Context(), listen, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", defaultDemoListen(), "address to listen on; 127.0.0.1:$PORT when PORT is set")
	f.StringVar(&opts.Version, "version", demoapp.DefaultVersion, "version the app reports")
	f.StringVar(&opts.Revision, "revision", "", "revision (commit) the app reports")
	f.StringVar(&opts.Message, "message", "", "message shown (default $PODINFO_UI_MESSAGE, else a greeting with the version)")
	f.StringVar(&opts.Color, "color", "", "page colour (default $PODINFO_UI_COLOR, else "+demoapp.DefaultColor+")")
	f.StringVar(&opts.Logo, "logo", "", "logo image URL (default $PODINFO_UI_LOGO)")
	f.Float64Var(&opts.ErrorRate, "error-rate", 0, "fraction of requests (0..1) answered with 500")
	f.DurationVar(&opts.Delay, "delay", 0*time.Second, "delay added to every request but the probes and /metrics")
	return cmd
}
