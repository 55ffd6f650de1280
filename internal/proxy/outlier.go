package proxy

import (
	"time"

	"github.com/canarymesh/canarymesh/internal/mesh/snapshot"
)

// maxEjectionTime caps BaseEjectionDuration × times ejected, as Envoy's max_ejection_time
// does by default.
const maxEjectionTime = 300 * time.Second

// outlierConfig is App Mesh's outlierDetection as Envoy implements it: maxServerErrors
// consecutive 5xx (a success resets the count; connect failures, resets and timeouts
// count as 5xx) eject an endpoint for baseEjectionDuration × the times it has been
// ejected; that multiplier drops by one for every interval the endpoint stays in.
type outlierConfig struct {
	maxErrors  int32
	interval   time.Duration
	base       time.Duration
	maxPercent int
}

func compileOutlier(o *snapshot.OutlierDetection) *outlierConfig {
	if o == nil || o.MaxServerErrors <= 0 || o.BaseEjectionDuration <= 0 {
		return nil
	}
	return &outlierConfig{maxErrors: int32(o.MaxServerErrors), interval: o.Interval,
		base: o.BaseEjectionDuration, maxPercent: o.MaxEjectionPercent}
}

// observe feeds one response code of an endpoint to outlier detection. The common case,
// a success on an endpoint with no error streak, is two atomic loads.
func (u *upstream) observe(ep *endpoint, code int) {
	oc := u.outlier.Load()
	if oc == nil || ep == nil {
		return
	}
	if code < 500 || code > 599 {
		if ep.consecutive5xx.Load() != 0 {
			ep.consecutive5xx.Store(0)
		}
		return
	}
	if ep.consecutive5xx.Add(1) >= oc.maxErrors {
		u.eject(ep, oc)
	}
}

// eject takes an endpoint out of rotation unless that would eject more than
// maxEjectionPercent of the cluster's endpoints.
func (u *upstream) eject(ep *endpoint, oc *outlierConfig) {
	now := u.p.now()
	u.mu.Lock()
	defer u.mu.Unlock()
	if ep.ejected.Load() || u.endpoints[ep.addr] != ep || u.ctx.Err() != nil {
		return
	}
	ep.consecutive5xx.Store(0)
	if (u.ejected+1)*100 > oc.maxPercent*len(u.endpoints) {
		u.stats.ejectionsOverflow.Add(1)
		return
	}
	if !ep.lastReturn.IsZero() && oc.interval > 0 {
		ep.timesEjected = max(0, ep.timesEjected-int(now.Sub(ep.lastReturn)/oc.interval))
	}
	ep.timesEjected++
	ep.ejected.Store(true)
	u.ejected++
	u.stats.ejectionsActive.Add(1)
	u.stats.ejectionsTotal.Add(1)
	d := min(oc.base*time.Duration(ep.timesEjected), max(oc.base, maxEjectionTime))
	ep.ejectTimer = time.AfterFunc(d, func() { u.unEject(ep) })
	u.p.log.Info("endpoint ejected", "cluster", u.stats.name, "endpoint", ep.addr,
		"for", d, "timesEjected", ep.timesEjected)
	u.rebuildLocked()
}

func (u *upstream) unEject(ep *endpoint) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.endpoints[ep.addr] != ep || !ep.ejected.Swap(false) {
		return
	}
	u.ejected--
	u.stats.ejectionsActive.Add(-1)
	ep.lastReturn = u.p.now()
	ep.consecutive5xx.Store(0)
	u.p.log.Info("endpoint returned", "cluster", u.stats.name, "endpoint", ep.addr)
	u.rebuildLocked()
}
