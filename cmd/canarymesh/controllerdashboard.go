package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/spf13/pflag"

	"github.com/canarymesh/canarymesh/internal/controlplane"
	"github.com/canarymesh/canarymesh/internal/kube/controller"
)

// controllerDashboardFlags switch on the web dashboard in Kubernetes mode, where it
// reads and acts on the cluster's objects through the same API as standalone.
type controllerDashboardFlags struct {
	listen string
	dashboardFlags
}

func addControllerDashboardFlags(fl *pflag.FlagSet, f *controllerDashboardFlags) {
	fl.StringVar(&f.listen, "dashboard-listen", "", `address serving the web dashboard at /ui/ and the Canarymesh API it uses (log in with the push stream's token); empty: off`)
	fl.BoolVar(&f.readOnly, "dashboard-read-only", false, "dashboard without actions (promote, abort, retry, pause, resume) for anyone")
	fl.BoolVar(&f.anonymousRead, "dashboard-anonymous-read", false, "dashboard views without a login; actions still need one")
}

// setupDashboard serves the API over the cluster's store with the dashboard in front,
// on every replica: reads need no leader, and actions are annotations the leader's
// canary controller picks up.
func setupDashboard(f *controllerDashboardFlags, token string) func(p controller.Parts) error {
	return func(p controller.Parts) error {
		ln, err := net.Listen("tcp", f.listen)
		if err != nil {
			return err
		}
		log := p.Log.With("component", "dashboard")
		api := controlplane.NewServer(p.Store, token, buildVersion(), log)
		f.enabled = true
		handler, err := withDashboard(p.Context, &f.dashboardFlags, p.Store, token, "http://"+ln.Addr().String(), log, api.Handler())
		if err != nil {
			ln.Close()
			return err
		}
		log.Info("dashboard listening", "url", "http://"+ln.Addr().String()+"/ui/")
		return p.Manager.Add(everyReplica(func(ctx context.Context) error {
			srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		}))
	}
}

// everyReplica is a manager runnable that runs whether or not this replica leads.
type everyReplica func(ctx context.Context) error

func (r everyReplica) Start(ctx context.Context) error { return r(ctx) }

// NeedLeaderElection is false: every replica serves.
func (everyReplica) NeedLeaderElection() bool { return false }
