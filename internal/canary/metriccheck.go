package canary

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/common/model"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/metrics"
	"github.com/canarymesh/canarymesh/internal/metrics/builtin"
	"github.com/canarymesh/canarymesh/internal/metrics/prometheus"
	"github.com/canarymesh/canarymesh/internal/metrics/web"
	"github.com/canarymesh/canarymesh/internal/store"
)

// MeshMetrics measures a Canary's metric checks: the built-in ones from the proxies'
// windows of the canary's virtual node (or from Prometheus when a metrics server is
// set), the others through their MetricTemplate's provider or the default Prometheus.
type MeshMetrics struct {
	Store store.Store
	// Windows are the proxies' traffic windows; nil when no proxy runs in this process,
	// which fails every built-in check with a reason saying so unless a metrics server
	// answers them.
	Windows builtin.WindowSource
	// MetricsServer is the default Prometheus (Flagger's -metrics-server), used when the
	// Canary names none in spec.metricsServer: the built-in checks run Flagger's App
	// Mesh queries against it, inline queries run there, and so do templates of type
	// prometheus without an address. Empty: built-in checks read Windows.
	MetricsServer string
	// Secrets gives the credentials a template's secretRef names; nil refuses such a
	// template, saying so.
	Secrets metrics.SecretSource
	// Now is the clock windows are cut against (time.Now when nil).
	Now func() time.Time
}

var _ MetricChecker = (*MeshMetrics)(nil)

// Check measures one metric. It never judges: thresholds and the noData policy are
// Decide's. Every way a measurement can fail (an unreachable provider, a query that does
// not parse, several series, an undefined template variable) ends up in Err, which
// fails the check with that reason.
func (m *MeshMetrics) Check(ctx context.Context, cd *v1alpha1.Canary, mc *v1alpha1.CanaryMetric) MetricResult {
	r := MetricResult{Name: mc.Name}
	if tr := mc.ThresholdRange; tr != nil {
		r.Min, r.Max = tr.Min, tr.Max
	}
	var p metrics.Provider
	var err error
	query := ""
	server := m.server(cd)
	switch {
	case mc.TemplateRef != nil:
		p, query, err = m.templateProvider(ctx, cd, mc, server)
		r.Query = query
	case mc.Query != "":
		query, r.Query = mc.Query, mc.Query
		if server == "" {
			err = fmt.Errorf("metric %s has a query but no Prometheus is set: give the Canary spec.metricsServer, or the controller --metrics-server", mc.Name)
			break
		}
		p, err = prometheus.New(prometheus.Options{Address: server})
	case mc.IsBuiltin() && server != "":
		p, query, err = builtinFromPrometheus(cd, mc, server, m.window(cd, mc))
		r.Query = query
	case mc.IsBuiltin():
		_, _, canaryNode := cd.GetServiceNames()
		p = &builtin.Provider{Source: m.Windows, Cluster: cd.Namespace + "/" + canaryNode, Interval: m.window(cd, mc)}
		query = mc.Name
	default:
		err = fmt.Errorf("unknown metric %q: the built-in metrics are %s and %s; any other needs a templateRef",
			mc.Name, v1alpha1.MetricRequestSuccessRate, v1alpha1.MetricRequestDuration)
	}
	if err != nil {
		r.Err = err.Error()
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

// server is the Prometheus of the Canary: its spec.metricsServer, else the default.
func (m *MeshMetrics) server(cd *v1alpha1.Canary) string {
	if cd.Spec.MetricsServer != "" {
		return cd.Spec.MetricsServer
	}
	return m.MetricsServer
}

// window is how far a metric check looks back: the metric's interval, cut short at
// status.canaryReadySince, when the canary under analysis was found ready (whole
// seconds, at least one). Requests that failed before — a load test calling a canary
// still scaled to zero — belong to no revision under analysis and must not fail it.
func (m *MeshMetrics) window(cd *v1alpha1.Canary, mc *v1alpha1.CanaryMetric) time.Duration {
	iv := mc.GetInterval()
	since := cd.Status.CanaryReadySince
	if since == nil {
		return iv
	}
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	up := now.Sub(since.Time)
	if up >= iv {
		return iv
	}
	up = (up + time.Second - 1).Truncate(time.Second)
	return min(max(up, time.Second), iv)
}

// queryModel holds Flagger's template variables for one metric of the Canary; interval
// is the metric's window.
func queryModel(cd *v1alpha1.Canary, mc *v1alpha1.CanaryMetric, window time.Duration) metrics.QueryModel {
	apex, _, _ := cd.GetServiceNames()
	qm := metrics.QueryModel{Name: cd.Name, Namespace: cd.Namespace, Target: cd.Spec.TargetRef.Name, Service: apex,
		Interval: model.Duration(window).String(), Variables: mc.TemplateVariables}
	if cd.Spec.IngressRef != nil {
		qm.Ingress = cd.Spec.IngressRef.Name
	}
	return qm
}

// builtinFromPrometheus is a built-in check answered by Flagger's App Mesh query.
func builtinFromPrometheus(cd *v1alpha1.Canary, mc *v1alpha1.CanaryMetric, server string, window time.Duration) (metrics.Provider, string, error) {
	tmpl, err := prometheus.BuiltinQuery(mc.Name)
	if err != nil {
		return nil, "", err
	}
	q, err := metrics.RenderQuery(tmpl, queryModel(cd, mc, window))
	if err != nil {
		return nil, "", fmt.Errorf("metric %s: %w", mc.Name, err)
	}
	p, err := prometheus.New(prometheus.Options{Address: server})
	return p, q, err
}

// templateProvider resolves a metric's MetricTemplate: its provider, with credentials
// from its secretRef, and its query rendered for the Canary.
func (m *MeshMetrics) templateProvider(ctx context.Context, cd *v1alpha1.Canary, mc *v1alpha1.CanaryMetric, server string) (metrics.Provider, string, error) {
	ref := mc.TemplateRef
	ns := ref.Namespace
	if ns == "" {
		ns = cd.Namespace
	}
	id := ns + "/" + ref.Name
	obj, err := m.Store.Get(ctx, store.Key{Kind: "MetricTemplate", Namespace: ns, Name: ref.Name})
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", fmt.Errorf("MetricTemplate %s not found", id)
	}
	if err != nil {
		return nil, "", fmt.Errorf("MetricTemplate %s: %w", id, err)
	}
	mt, ok := obj.(*v1alpha1.MetricTemplate)
	if !ok {
		return nil, "", fmt.Errorf("MetricTemplate %s: store returned a %T", id, obj)
	}
	query, err := metrics.RenderQuery(mt.Spec.Query, queryModel(cd, mc, m.window(cd, mc)))
	if err != nil {
		return nil, "", fmt.Errorf("MetricTemplate %s: spec.query: %w", id, err)
	}
	sp := &mt.Spec.Provider
	var creds map[string][]byte
	if sp.SecretRef != nil {
		if m.Secrets == nil {
			return nil, query, fmt.Errorf("MetricTemplate %s: spec.provider.secretRef %s: no secret source is configured", id, sp.SecretRef.Name)
		}
		if creds, err = m.Secrets.Secret(ctx, ns, sp.SecretRef.Name); err != nil {
			return nil, query, fmt.Errorf("MetricTemplate %s: spec.provider.secretRef: %w", id, err)
		}
	}
	p, err := newTemplateProvider(sp, server, creds)
	if err != nil {
		return nil, query, fmt.Errorf("MetricTemplate %s: %w", id, err)
	}
	return p, query, nil
}

// newTemplateProvider builds the provider a template names; unknown types are errors.
func newTemplateProvider(sp *v1alpha1.MetricTemplateProvider, server string, creds map[string][]byte) (metrics.Provider, error) {
	headers := http.Header(sp.Headers)
	switch sp.Type {
	case v1alpha1.MetricProviderPrometheus:
		o := prometheus.Options{Address: sp.Address, Headers: headers, InsecureSkipVerify: sp.InsecureSkipVerify}
		if o.Address == "" {
			o.Address = server
		}
		if o.Address == "" {
			return nil, errors.New("spec.provider.address is empty and no metrics server is set (Canary spec.metricsServer or --metrics-server)")
		}
		if creds != nil {
			var err error
			if o, err = o.WithCredentials(creds); err != nil {
				return nil, fmt.Errorf("spec.provider.secretRef: %w", err)
			}
		}
		return prometheus.New(o)
	case v1alpha1.MetricProviderWeb:
		o := web.Options{URL: sp.Address, Headers: headers, InsecureSkipVerify: sp.InsecureSkipVerify}
		if creds != nil {
			o.Token = string(creds[metrics.SecretToken])
			o.Username, o.Password = string(creds[metrics.SecretUsername]), string(creds[metrics.SecretPassword])
		}
		return web.New(o)
	}
	return nil, fmt.Errorf("spec.provider.type %q: this mesh runs %v", sp.Type, v1alpha1.MetricProviders)
}
