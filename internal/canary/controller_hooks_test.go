package canary_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/hooks"
)

// hookServer is a real HTTP server standing in for the load tester and a gate: it keeps
// every payload by path, and /gate answers 403 until it is opened.
type hookServer struct {
	*httptest.Server
	mu       sync.Mutex
	payloads map[string][]hooks.Payload
	open     atomic.Bool
}

func newHookServer(t *testing.T) *hookServer {
	s := &hookServer{payloads: map[string][]hooks.Payload{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p hooks.Payload
		if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.payloads[r.URL.Path] = append(s.payloads[r.URL.Path], p)
		s.mu.Unlock()
		if r.URL.Path == "/gate" && !s.open.Load() {
			http.Error(w, "promotion not approved", http.StatusForbidden)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *hookServer) got(path string) []hooks.Payload {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hooks.Payload(nil), s.payloads[path]...)
}

// Given a Canary with pre-rollout, rollout, confirm-promotion, post-rollout and event
// webhooks on real servers, when a healthy revision reaches maxWeight, then every hook
// got Flagger's payload; the closed gate holds the release in WaitingPromotion, without
// a promotion, until it opens.
func TestWebhooksAndConfirmPromotionGate(t *testing.T) {
	h := newHarness(t)
	srv := newHookServer(t)
	h.windows.set("demo/podinfo-canary", healthy)
	cd := seedCanary()
	cmd := "hey -z 1m -q 10 -c 2 http://podinfo-canary.demo:9898/"
	cd.Spec.Analysis.Webhooks = []v1alpha1.CanaryWebhook{
		{Name: "acceptance-test", Type: v1alpha1.WebhookPreRollout, URL: srv.URL + "/pre", Timeout: "5s",
			Metadata: map[string]string{"type": "bash", "cmd": "curl -sd 'test' http://podinfo-canary.demo:9898/token | grep token"}},
		{Name: "load-test", URL: srv.URL + "/load", Timeout: "5s", Metadata: map[string]string{"cmd": cmd}},
		{Name: "gate", Type: v1alpha1.WebhookConfirmPromotion, URL: srv.URL + "/gate"},
		{Name: "cleanup", Type: v1alpha1.WebhookPostRollout, URL: srv.URL + "/post"},
		{Name: "events", Type: v1alpha1.WebhookEvent, URL: srv.URL + "/events"},
	}
	h.initialized(cd)

	h.release("3.1.1")
	rev := h.workload("podinfo").Revision()
	h.until("WaitingPromotion", 30, func() bool { return h.canary().Status.Phase == v1alpha1.CanaryPhaseWaitingPromotion })
	for range 4 {
		h.tick()
	}
	if p := h.canary().Status.Phase; p != v1alpha1.CanaryPhaseWaitingPromotion || h.target.promotions.Load() != 0 {
		t.Fatalf("with the gate closed: phase %s, %d promotions", p, h.target.promotions.Load())
	}
	if _, c := h.weights(); c != 60 {
		t.Errorf("canary weight %d while waiting for promotion, want 60 (maxWeight)", c)
	}
	srv.open.Store(true)
	h.until("Succeeded", 20, func() bool { return h.canary().Status.Phase == v1alpha1.CanaryPhaseSucceeded })
	if n := h.target.promotions.Load(); n != 1 {
		t.Errorf("%d promotions, want 1", n)
	}

	pre := srv.got("/pre")
	if len(pre) != 1 || pre[0].Name != "podinfo" || pre[0].Namespace != "demo" || pre[0].Phase != "Progressing" ||
		pre[0].Checksum != rev || pre[0].Metadata["type"] != "bash" {
		t.Errorf("pre-rollout payloads: %+v (want exactly one, before any traffic)", pre)
	}
	load := srv.got("/load")
	if len(load) < 3 || load[0].Metadata["cmd"] != cmd {
		t.Errorf("rollout payloads: %d, first %+v", len(load), load)
	}
	if gate := srv.got("/gate"); len(gate) < 2 {
		t.Errorf("confirm-promotion asked %d times, want it asked again while closed", len(gate))
	}
	if post := srv.got("/post"); len(post) != 1 || post[0].Phase != "Succeeded" {
		t.Errorf("post-rollout payloads: %+v", post)
	}
	var sawNewRevision bool
	for _, p := range srv.got("/events") {
		if p.Metadata["eventType"] == "" || p.Metadata["timestamp"] == "" {
			t.Errorf("event payload without eventType or timestamp: %+v", p)
		}
		sawNewRevision = sawNewRevision || strings.HasPrefix(p.Metadata["eventMessage"], "New revision detected!")
	}
	if !sawNewRevision {
		t.Error("the event webhook never got the New revision event")
	}
	hooksStatus := h.canary().Status.LastWebhooks
	if len(hooksStatus) != 4 {
		t.Errorf("lastWebhooks: %+v", hooksStatus)
	}
}

// Given two alerts, one at info and one at error severity, on generic providers backed
// by a real server, when a release fails, then the info alert gets every message
// (info, warn, error) and the error alert only the failure.
func TestAlertsFilteredBySeverity(t *testing.T) {
	h := newHarness(t)
	srv := newHookServer(t)
	h.windows.set("demo/podinfo-canary", failing)
	for _, name := range []string{"all", "errors"} {
		h.create(&v1alpha1.AlertProvider{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
			Spec: v1alpha1.AlertProviderSpec{Type: v1alpha1.AlertProviderGeneric, Address: srv.URL + "/" + name}})
	}
	cd := seedCanary()
	cd.Spec.Analysis.Alerts = []v1alpha1.CanaryAlert{
		{Name: "everything", Severity: v1alpha1.AlertSeverityInfo, ProviderRef: v1alpha1.CrossNamespaceObjectReference{Name: "all"}},
		{Name: "failures", Severity: v1alpha1.AlertSeverityError, ProviderRef: v1alpha1.CrossNamespaceObjectReference{Name: "errors"}},
	}
	h.initialized(cd)
	h.release("3.1.2")
	h.until("Failed", 30, func() bool { return h.canary().Status.Phase == v1alpha1.CanaryPhaseFailed })

	severities := func(path string) map[string]int {
		out := map[string]int{}
		for _, p := range srv.got(path) {
			if p.Name != "podinfo" || p.Namespace != ns || p.Metadata["Target"] != "Workload/podinfo.demo" {
				t.Errorf("%s: alert payload %+v", path, p)
			}
			out[p.Metadata["eventType"]]++
		}
		return out
	}
	all, errs := severities("/all"), severities("/errors")
	if all["info"] < 2 || all["warn"] < 1 || all["error"] != 1 {
		t.Errorf("info alert got %v, want every severity", all)
	}
	if len(errs) != 1 || errs["error"] != 1 {
		t.Errorf("error alert got %v, want the one failure only", errs)
	}
}
