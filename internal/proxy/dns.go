package proxy

import (
	"context"
	"net"
	"reflect"
	"slices"
	"strconv"
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// DNS clusters (serviceDiscovery.dns): the hostname is resolved when the snapshot is
// applied and again every Options.DNSRefresh. ENDPOINTS uses every address, LOADBALANCER
// the first. A failed resolution keeps the last good addresses.

// firstResolveTimeout bounds the resolution done while a snapshot is applied.
const firstResolveTimeout = 2 * time.Second

// lookupFunc resolves a hostname to addresses.
type lookupFunc func(ctx context.Context, host string) ([]string, error)

// applyDNS starts, restarts or stops the resolver loop for use's DNS settings. The first
// resolution of a new hostname happens here, so the snapshot serves at once.
func (u *upstream) applyDNS(use *clusterUse) {
	spec := use.cluster.DNS
	u.mu.Lock()
	if reflect.DeepEqual(spec, u.dnsSpec) {
		u.mu.Unlock()
		return
	}
	if u.dnsStop != nil {
		u.dnsStop()
		u.dnsStop = nil
	}
	u.dnsSpec = spec
	if spec == nil || spec.Hostname == "" {
		if u.dnsAddrs != nil {
			u.dnsAddrs = nil
			u.reconcileLocked()
		}
		u.mu.Unlock()
		return
	}
	port := spec.Port
	if port == 0 {
		port = use.cluster.Port
	}
	ctx, cancel := context.WithCancel(u.ctx)
	u.dnsStop = cancel
	u.mu.Unlock()
	w := &dnsWatcher{u: u, spec: *spec, port: port, lookup: u.p.lookup, refresh: u.p.dnsRefresh}
	w.resolveOnce(ctx)
	go w.loop(ctx)
}

type dnsWatcher struct {
	u       *upstream
	spec    snapshot.DNSDiscovery
	port    int
	lookup  lookupFunc
	refresh time.Duration
	// failing is the last resolution error logged, so a name that keeps failing is
	// reported once, not at every refresh; empty while resolution works.
	failing string
}

func (w *dnsWatcher) loop(ctx context.Context) {
	t := time.NewTicker(w.refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.resolveOnce(ctx)
		}
	}
}

func (w *dnsWatcher) resolveOnce(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, firstResolveTimeout)
	defer cancel()
	ips, err := w.lookup(rctx, w.spec.Hostname)
	if ctx.Err() != nil {
		return
	}
	if err != nil || len(ips) == 0 {
		why := "no addresses"
		if err != nil {
			why = err.Error()
		}
		if why != w.failing {
			w.u.p.log.Warn("DNS resolution failed; keeping the last addresses, and retrying quietly", "cluster", w.u.stats.name,
				"hostname", w.spec.Hostname, "error", why)
			w.failing = why
		}
		return
	}
	if w.failing != "" {
		w.u.p.log.Info("DNS resolution works again", "cluster", w.u.stats.name, "hostname", w.spec.Hostname)
		w.failing = ""
	}
	addrs := dnsAddresses(ips, w.port, w.spec.ResponseType)
	u := w.u
	u.mu.Lock()
	defer u.mu.Unlock()
	if ctx.Err() != nil || slices.Equal(addrs, u.dnsAddrs) {
		return
	}
	u.dnsAddrs = addrs
	u.reconcileLocked()
}

// dnsAddresses turns resolved IPs into host:port endpoints: all of them (deduplicated, in
// resolver order) for ENDPOINTS, the first for LOADBALANCER.
func dnsAddresses(ips []string, port int, responseType string) []string {
	var out []string
	p := strconv.Itoa(port)
	for _, ip := range ips {
		a := net.JoinHostPort(ip, p)
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
		if responseType == "LOADBALANCER" {
			break
		}
	}
	return out
}
