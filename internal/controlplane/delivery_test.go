package controlplane

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

func metricTemplate(ns, name, typ, address, query string) *v1alpha1.MetricTemplate {
	o := &v1alpha1.MetricTemplate{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	o.Spec.Provider = v1alpha1.MetricTemplateProvider{Type: typ, Address: address}
	o.Spec.Query = query
	o.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("MetricTemplate"))
	return o
}

func alertProvider(ns, name, typ, address string) *v1alpha1.AlertProvider {
	o := &v1alpha1.AlertProvider{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}
	o.Spec = v1alpha1.AlertProviderSpec{Type: typ, Address: address}
	o.GetObjectKind().SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("AlertProvider"))
	return o
}

func TestMetricTemplateReady(t *testing.T) {
	const q = `sum(rate(requests{namespace="{{ namespace }}",pod=~"{{ target }}-.*"}[{{ interval }}]))`
	withSecret := metricTemplate("shop", "t", "prometheus", "", q)
	withSecret.Spec.Provider.SecretRef = &v1alpha1.SecretReference{Name: "prom-auth"}
	tests := []struct {
		name       string
		mt         *v1alpha1.MetricTemplate
		wantReason string // "" for Ready=True
		msgHas     string
	}{
		{"prometheus, canary's metrics server", metricTemplate("shop", "t", "prometheus", "", q), "", "provider type prometheus is supported"},
		{"prometheus with an address", metricTemplate("shop", "t", "prometheus", "http://prom:9090", q), "", ""},
		{"web", metricTemplate("shop", "t", "web", "https://kpi.example/api", `$.value`), "", "provider type web"},
		{"secretRef is read when used", withSecret, "", ""},
		{"a Flagger provider", metricTemplate("shop", "t", "datadog", "", q), ReasonUnknownProvider, `spec.provider.type "datadog"`},
		{"no provider", metricTemplate("shop", "t", "", "", q), ReasonUnknownProvider, "expected one of prometheus, web"},
		{"query does not parse", metricTemplate("shop", "t", "prometheus", "", `up{ns="{{ namespace "}`), ReasonInvalidQuery, "spec.query: query template does not parse"},
		{"query calls an unknown function", metricTemplate("shop", "t", "prometheus", "", `{{ args.x }}`), ReasonInvalidQuery, `function "args" not defined`},
		{"empty query", metricTemplate("shop", "t", "prometheus", "", " "), ReasonInvalidQuery, "spec.query is empty"},
		{"web without an address", metricTemplate("shop", "t", "web", "", `$.value`), ReasonMissingAddress, "spec.provider.address is required"},
		{"address not a URL", metricTemplate("shop", "t", "prometheus", "prom:9090", q), ReasonInvalidAddress, `spec.provider.address "prom:9090"`},
		{"the first problem is the reason", metricTemplate("shop", "t", "graphite", "", "{{"), ReasonUnknownProvider, "; spec.query:"},
	}
	for _, tt := range tests {
		tt.mt.Generation = 4
		got := deliveryConditions(tt.mt)
		if len(got) != 1 || got[0].Type != v1alpha1.ConditionReady || got[0].ObservedGeneration != 4 {
			t.Fatalf("%s: conditions %+v", tt.name, got)
		}
		checkReady(t, tt.name, got[0], tt.wantReason, tt.msgHas)
	}
}

func TestAlertProviderReady(t *testing.T) {
	fromSecret := alertProvider("shop", "a", "slack", "")
	fromSecret.Spec.SecretRef = &v1alpha1.SecretReference{Name: "slack-url"}
	badProxy := alertProvider("shop", "a", "msteams", "https://teams.example/hook")
	badProxy.Spec.Proxy = "proxy:3128"
	tests := []struct {
		name       string
		ap         *v1alpha1.AlertProvider
		wantReason string
		msgHas     string
	}{
		{"slack", alertProvider("shop", "a", "slack", "https://hooks.slack.com/services/x"), "", "type slack is supported"},
		{"every type", alertProvider("shop", "a", "generic", "http://receiver:8080/events"), "", ""},
		{"gchat", alertProvider("shop", "a", "gchat", "https://chat.example/hook"), "", ""},
		{"address from a secret", fromSecret, "", ""},
		{"unknown type", alertProvider("shop", "a", "pagerduty", "https://events.example"), ReasonUnknownType, `spec.type "pagerduty" is not one of slack, msteams`},
		{"no address", alertProvider("shop", "a", "discord", ""), ReasonMissingAddress, "neither spec.address nor spec.secretRef.name"},
		{"address not a URL", alertProvider("shop", "a", "slack", "hooks.slack.com"), ReasonInvalidAddress, `spec.address "hooks.slack.com"`},
		{"proxy not a URL", badProxy, ReasonInvalidAddress, `spec.proxy "proxy:3128"`},
	}
	for _, tt := range tests {
		tt.ap.Generation = 2
		got := deliveryConditions(tt.ap)
		if len(got) != 1 || got[0].Type != v1alpha1.ConditionReady || got[0].ObservedGeneration != 2 {
			t.Fatalf("%s: conditions %+v", tt.name, got)
		}
		checkReady(t, tt.name, got[0], tt.wantReason, tt.msgHas)
	}
}

func checkReady(t *testing.T, name string, c metav1.Condition, wantReason, msgHas string) {
	t.Helper()
	wantStatus := metav1.ConditionTrue
	if wantReason != "" {
		wantStatus = metav1.ConditionFalse
	} else {
		wantReason = "Ready"
	}
	if c.Status != wantStatus || c.Reason != wantReason || !strings.Contains(c.Message, msgHas) {
		t.Errorf("%s: got %s %s %q; want %s %s, message with %q", name, c.Status, c.Reason, c.Message, wantStatus, wantReason, msgHas)
	}
}

// MetricTemplates and AlertProviders get a Ready condition and observedGeneration, and
// a change of spec is observed again.
func TestDeliveryObjectsGetStatus(t *testing.T) {
	c, st, _ := newTestAPI(t)
	ctx := context.Background()
	r := &StatusReconciler{Store: st, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: func() time.Time { return time.Unix(1000, 0) }}

	mt := metricTemplate("shop", "error-rate", "prometheus", "http://prom:9090", `sum(rate(x{ns="{{ namespace }}"}[{{ interval }}]))`)
	ap := alertProvider("shop", "on-call", "slack", "https://hooks.slack.com/services/x")
	if _, err := c.Apply(ctx, []v1alpha1.Object{mt, ap}, false); err != nil {
		t.Fatal(err)
	}
	// Stored without the API's validation, as a cluster without the admission webhook
	// would keep it.
	if _, err := st.Create(ctx, metricTemplate("shop", "latency", "datadog", "", "avg:latency{*}")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range []store.Key{{Kind: "MetricTemplate", Namespace: "shop", Name: "error-rate"}, {Kind: "AlertProvider", Namespace: "shop", Name: "on-call"}} {
		gen, ready := deliveryReady(t, st, k)
		if gen != 1 || ready == nil || ready.Status != metav1.ConditionTrue || ready.ObservedGeneration != 1 {
			t.Errorf("%s: observedGeneration %d, Ready %+v", k, gen, ready)
		}
	}
	if _, ready := deliveryReady(t, st, store.Key{Kind: "MetricTemplate", Namespace: "shop", Name: "latency"}); ready == nil ||
		ready.Status != metav1.ConditionFalse || ready.Reason != ReasonUnknownProvider {
		t.Errorf("unknown provider: Ready %+v", ready)
	}

	// A second pass with nothing changed writes nothing.
	_, rv1, _ := st.List(ctx, store.Filter{})
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, rv2, _ := st.List(ctx, store.Filter{}); rv1 != rv2 {
		t.Errorf("an idle reconcile wrote: resourceVersion %d → %d", rv1, rv2)
	}

	mt.Spec.Query = `sum(rate(y{ns="{{ namespace }}"}[{{ interval }}]))`
	if _, err := c.Apply(ctx, []v1alpha1.Object{mt}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	gen, ready := deliveryReady(t, st, store.Key{Kind: "MetricTemplate", Namespace: "shop", Name: "error-rate"})
	if gen != 2 || ready == nil || ready.Status != metav1.ConditionTrue || ready.ObservedGeneration != 2 {
		t.Errorf("after a spec change: observedGeneration %d, Ready %+v", gen, ready)
	}
}

func deliveryReady(t *testing.T, st store.Store, k store.Key) (int64, *metav1.Condition) {
	t.Helper()
	o, err := st.Get(context.Background(), k)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := deliveryStatus(o)
	if !ok {
		t.Fatalf("%s: no delivery status", k)
	}
	if o.GetGeneration() != s.ObservedGeneration {
		t.Errorf("%s: generation %d, observedGeneration %d", k, o.GetGeneration(), s.ObservedGeneration)
	}
	return s.ObservedGeneration, apimeta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReady)
}
