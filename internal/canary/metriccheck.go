package canary

import (
	"context"
	"errors"
	"fmt"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/metrics"
	"github.com/canarymesh/canarymesh/internal/metrics/builtin"
	"github.com/canarymesh/canarymesh/internal/store"
)

// MeshMetrics measures a Canary's metric checks: the built-in ones from the proxies'
// windows of the canary's virtual node, the others through their MetricTemplate.
type MeshMetrics struct {
	Store store.Store
	// Windows are the proxies' traffic windows; nil when no proxy runs in this process,
	// which fails every built-in check with a reason saying so.
	Windows builtin.WindowSource
}

var _ MetricChecker = (*MeshMetrics)(nil)

// Check measures one metric. It never judges: thresholds and the noData policy are
// Decide's.
func (m *MeshMetrics) Check(ctx context.Context, cd *v1alpha1.Canary, mc *v1alpha1.CanaryMetric) MetricResult {
	r := MetricResult{Name: mc.Name}
	if tr := mc.ThresholdRange; tr != nil {
		r.Min, r.Max = tr.Min, tr.Max
	}
	var p metrics.Provider
	var query string
	switch {
	case mc.TemplateRef != nil:
		r.Err = m.templateProvider(ctx, cd, mc.TemplateRef)
		return r
	case mc.Query != "":
		r.Err = fmt.Sprintf("provider %q is not available yet (metric %s has a query)", "prometheus", mc.Name)
		return r
	case mc.IsBuiltin():
		_, _, canaryNode := cd.GetServiceNames()
		p = &builtin.Provider{Source: m.Windows, Cluster: cd.Namespace + "/" + canaryNode, Interval: mc.GetInterval()}
		query = mc.Name
	default:
		r.Err = fmt.Sprintf("unknown metric %q: the built-in metrics are %s and %s; any other needs a templateRef",
			mc.Name, v1alpha1.MetricRequestSuccessRate, v1alpha1.MetricRequestDuration)
		return r
	}
	v, err := p.Query(ctx, query)
	switch {
	case errors.Is(err, metrics.ErrNoData):
		r.NoData = true
	case err != nil:
		r.Err = err.Error()
	default:
		r.Value = v
	}
	return r
}

// templateProvider resolves a MetricTemplate. Its providers (prometheus, web) are not
// wired in yet, so every template check fails, saying so, rather than passing unmeasured.
func (m *MeshMetrics) templateProvider(ctx context.Context, cd *v1alpha1.Canary, ref *v1alpha1.CrossNamespaceObjectReference) string {
	ns := ref.Namespace
	if ns == "" {
		ns = cd.Namespace
	}
	obj, err := m.Store.Get(ctx, store.Key{Kind: "MetricTemplate", Namespace: ns, Name: ref.Name})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Sprintf("MetricTemplate %s/%s not found", ns, ref.Name)
	}
	if err != nil {
		return fmt.Sprintf("MetricTemplate %s/%s: %v", ns, ref.Name, err)
	}
	mt, ok := obj.(*v1alpha1.MetricTemplate)
	if !ok {
		return fmt.Sprintf("MetricTemplate %s/%s: store returned a %T", ns, ref.Name, obj)
	}
	return fmt.Sprintf("provider %q is not available yet (MetricTemplate %s/%s)", mt.Spec.Provider.Type, ns, ref.Name)
}
