package controlplane

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/canarymesh/canarymesh/internal/controlplane/stream"
	"github.com/canarymesh/canarymesh/internal/store"
)

// Propagation tells when the connected proxies run the mesh as the store holds it: the
// canary controller waits for it before scaling a canary down (canary.Propagation).
type Propagation struct {
	Sync *MeshSync
	// Proxies lists the proxy connections (stream.Server.Proxies).
	Proxies func() []stream.ProxyStatus
	// Poll is how often the acknowledgements are looked at (default 20ms).
	Poll time.Duration
}

// WaitApplied returns once MeshSync has compiled the store at its current revision or
// later and every connected proxy has acknowledged its node's latest snapshot; or, when
// ctx ends first, an error naming the proxies still behind.
func (p *Propagation) WaitApplied(ctx context.Context) error {
	_, rev, err := p.Sync.Store.List(ctx, store.Filter{Kind: "Mesh"})
	if err != nil {
		return fmt.Errorf("store revision: %w", err)
	}
	poll := p.Poll
	if poll <= 0 {
		poll = 20 * time.Millisecond
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		behind := p.behind(rev)
		if len(behind) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for store revision %d: %s: %w", rev, strings.Join(behind, "; "), context.Cause(ctx))
		case <-t.C:
		}
	}
}

// behind describes what has not caught up with revision rev: the compile, or proxies.
func (p *Propagation) behind(rev uint64) []string {
	if c := p.Sync.Compiled(); c < rev {
		return []string{fmt.Sprintf("mesh compiled at revision %d", c)}
	}
	var out []string
	for _, ps := range p.Proxies() {
		if !ps.Connected {
			continue
		}
		snap := p.Sync.Snapshot(ps.Node)
		if snap == nil || ps.AckedVersion >= snap.Version {
			continue
		}
		why := fmt.Sprintf("proxy %s (%s) runs version %d, not %d", ps.ID, ps.Node, ps.AckedVersion, snap.Version)
		if ps.NackVersion >= snap.Version && ps.LastNack != "" {
			why += " (rejected: " + ps.LastNack + ")"
		}
		out = append(out, why)
	}
	return out
}
