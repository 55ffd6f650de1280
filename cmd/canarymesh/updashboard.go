package main

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/spf13/pflag"

	"github.com/canarymesh/canarymesh/internal/dashboard"
	"github.com/canarymesh/canarymesh/internal/metrics/builtin"
	"github.com/canarymesh/canarymesh/internal/store"
)

// dashboardFlags switch the web dashboard `up` serves on the API listener.
type dashboardFlags struct {
	enabled       bool
	readOnly      bool
	anonymousRead bool
	// d is the running dashboard, shared by the copies of upFlags, so the proxies
	// started later can hand it their traffic windows.
	d *dashboard.Dashboard
}

func addDashboardFlags(fl *pflag.FlagSet, f *dashboardFlags) {
	fl.BoolVar(&f.enabled, "dashboard", true, "serve the web dashboard at /ui/ on the API listener (log in with the API token)")
	fl.BoolVar(&f.readOnly, "dashboard-read-only", false, "dashboard without actions (promote, abort, retry, pause, resume) for anyone")
	fl.BoolVar(&f.anonymousRead, "dashboard-anonymous-read", false, "dashboard views without a login; actions still need one")
}

// withDashboard puts the dashboard in front of the API handler, when switched on, and
// keeps its canary history until ctx ends.
func withDashboard(ctx context.Context, f *dashboardFlags, st store.Store, token, apiURL string, log *slog.Logger, api http.Handler) (http.Handler, error) {
	if !f.enabled {
		return api, nil
	}
	d, err := dashboard.New(dashboard.Options{Store: st, Token: token, APIURL: apiURL,
		ReadOnly: f.readOnly, AnonymousRead: f.anonymousRead, Log: log})
	if err != nil {
		return nil, err
	}
	f.d = d
	go func() { _ = d.Run(ctx) }()
	return d.Handler(api), nil
}

// setWindows gives the dashboard's mesh graph the proxies' traffic windows.
func (f *dashboardFlags) setWindows(w builtin.WindowSource) {
	if f.d != nil {
		f.d.SetWindows(w)
	}
}
