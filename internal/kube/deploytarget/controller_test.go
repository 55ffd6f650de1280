package deploytarget_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/hooks"
	"github.com/canarymesh/canarymesh/internal/kube/deploytarget"
	"github.com/canarymesh/canarymesh/internal/loadtest"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/bolt"
)

// release is the canary controller of internal/canary driving Deployments in a real API
// server through this Target, its Canaries and mesh objects in the bolt store. The
// analysis is judged by a real load-tester service (internal/loadtest, Flagger's
// flagger-loadtester API) over HTTP: a rollout webhook to its /gate/approve, and a
// rollback webhook to its /rollback/check, which the test opens to make a release fail.
type release struct {
	t      *testing.T
	c      *cluster
	ns     string
	st     store.Store
	tester string // the load tester's URL

	mu     sync.Mutex
	phases []v1alpha1.CanaryPhase
}

func startRelease(t *testing.T, c *cluster, ns string) *release {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := bolt.Open(ctx, t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	lt := loadtest.NewService(loadtest.ServiceOptions{})
	srv := httptest.NewServer(lt)
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("DEPLOYTARGET_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	ctrl := &canary.Controller{
		Store:    st,
		Target:   &deploytarget.Target{Client: c.cs, Log: log},
		Router:   &canary.MeshRouter{Store: st, Log: log},
		Hooks:    &hooks.Caller{},
		Recorder: &hooks.Recorder{Store: st, Source: "canary-controller"},
		Log:      log,
	}
	r := &release{t: t, c: c, ns: ns, st: st, tester: srv.URL}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = ctrl.Run(ctx) }()
	go func() { defer wg.Done(); r.follow(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		srv.Close()
		lt.Close()
		_ = st.Close()
	})
	return r
}

// follow records every phase the Canary is stored with, in order.
func (r *release) follow(ctx context.Context) {
	ch, err := r.st.Watch(ctx, store.Filter{Kind: "Canary"}, 0)
	if err != nil {
		r.t.Error(err)
		return
	}
	for ev := range ch {
		cd, ok := ev.Object.(*v1alpha1.Canary)
		if !ok {
			continue
		}
		r.mu.Lock()
		if p := cd.Status.Phase; p != "" && (len(r.phases) == 0 || r.phases[len(r.phases)-1] != p) {
			r.phases = append(r.phases, p)
		}
		r.mu.Unlock()
	}
}

func (r *release) seen() []v1alpha1.CanaryPhase {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.phases)
}

func (r *release) createCanary() {
	r.t.Helper()
	m := &v1alpha1.Mesh{ObjectMeta: metav1.ObjectMeta{Name: "flaggerdemo"}}
	m.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Mesh"))
	m.Default()
	if _, err := r.st.Create(context.Background(), m); err != nil {
		r.t.Fatal(err)
	}
	cd := newCanary(r.ns)
	cd.UID = ""
	cd.Spec.AutoscalerRef = nil
	cd.Spec.Service.MeshName = "flaggerdemo"
	cd.Spec.RevertOnDeletion = true
	cd.Spec.Analysis.Webhooks = []v1alpha1.CanaryWebhook{
		{Name: "rollback-gate", Type: v1alpha1.WebhookRollback, URL: r.tester + "/rollback/check"},
		{Name: "acceptance", Type: v1alpha1.WebhookRollout, URL: r.tester + "/gate/approve"},
	}
	cd.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("Canary"))
	cd.Default()
	if _, err := r.st.Create(context.Background(), cd); err != nil {
		r.t.Fatal(err)
	}
}

func (r *release) canary() *v1alpha1.Canary {
	r.t.Helper()
	o, err := r.st.Get(context.Background(), store.Key{Kind: "Canary", Namespace: r.ns, Name: "podinfo"})
	if err != nil {
		r.t.Fatal(err)
	}
	return o.(*v1alpha1.Canary)
}

// waitPhase waits for the Canary to reach phase, as stored and as followed.
func (r *release) waitPhase(phase v1alpha1.CanaryPhase) {
	r.t.Helper()
	eventually(r.t, "canary "+string(phase), func() (bool, string) {
		cd := r.canary()
		seen := r.seen() // the watch may lag the read
		return cd.Status.Phase == phase && len(seen) > 0 && seen[len(seen)-1] == phase, fmt.Sprintf("phase %s: %s (seen %v)", cd.Status.Phase, cd.Status.Message, r.seen())
	})
}

// openRollback asks the load tester to roll the canary back at its next check.
func (r *release) openRollback() {
	r.t.Helper()
	body := fmt.Sprintf(`{"name":"podinfo","namespace":%q}`, r.ns)
	resp, err := http.Post(r.tester+"/rollback/open", "application/json", bytes.NewBufferString(body))
	if err != nil {
		r.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		r.t.Fatalf("open the rollback gate: %d %s", resp.StatusCode, b)
	}
}

func (r *release) events() []string {
	objs, _, err := r.st.List(context.Background(), store.Filter{Kind: "Event", Namespace: r.ns})
	if err != nil {
		r.t.Fatal(err)
	}
	var out []string
	for _, o := range objs {
		if e, ok := o.(*v1alpha1.Event); ok {
			out = append(out, e.Reason+": "+e.Message)
		}
	}
	return out
}

// isSubsequence reports whether want appears in got in order.
func isSubsequence(want, got []v1alpha1.CanaryPhase) bool {
	i := 0
	for _, p := range got {
		if i < len(want) && p == want[i] {
			i++
		}
	}
	return i == len(want)
}

func testControllerRelease(t *testing.T, c *cluster) {
	const ns = "release"
	ctx := context.Background()
	c.namespace(t, ns)
	r := startRelease(t, c, ns)

	// A Canary whose Deployment does not exist yet: a warning event, nothing made.
	r.createCanary()
	eventually(t, "TargetNotFound event", func() (bool, string) {
		ev := r.events()
		return slices.ContainsFunc(ev, func(e string) bool { return strings.HasPrefix(e, "TargetNotFound:") }), fmt.Sprint(ev)
	})
	if cd := r.canary(); !strings.Contains(cd.Status.Message, "not found") {
		t.Errorf("status message with the target missing: %q", cd.Status.Message)
	}

	// The Deployment arrives: the first deploy is initialised, not analysed.
	c.app(t, ns, 2)
	r.waitPhase(v1alpha1.CanaryPhaseInitialized)
	eventually(t, "target parked", func() (bool, string) {
		d := c.deployment(t, ns, "podinfo")
		return replicas(d) == 0, fmt.Sprintf("replicas %d", replicas(d))
	})
	for _, kind := range []string{"VirtualNode", "VirtualRouter"} {
		objs, _, err := r.st.List(ctx, store.Filter{Kind: kind, Namespace: ns})
		if err != nil || len(objs) == 0 {
			t.Errorf("%s objects of the canary: %d, %v", kind, len(objs), err)
		}
	}
	for name, want := range map[string]string{"podinfo-primary": "podinfo-primary", "podinfo-canary": "podinfo"} {
		o, err := r.st.Get(ctx, store.Key{Kind: "VirtualNode", Namespace: ns, Name: name})
		if err != nil {
			t.Errorf("virtual node %s: %v", name, err)
			continue
		}
		if sel := o.(*v1alpha1.VirtualNode).Spec.PodSelector; sel == nil || sel.MatchLabels["app"] != want {
			t.Errorf("virtual node %s selects %v, want app: %s (the pods' label)", name, sel, want)
		}
	}

	// A new version that passes: Progressing, then promoted.
	c.updateDeployment(t, ns, "podinfo", func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:6.0.1"
	})
	r.waitPhase(v1alpha1.CanaryPhaseSucceeded)
	if want := []v1alpha1.CanaryPhase{v1alpha1.CanaryPhaseInitializing, v1alpha1.CanaryPhaseInitialized,
		v1alpha1.CanaryPhaseProgressing, v1alpha1.CanaryPhasePromoting, v1alpha1.CanaryPhaseSucceeded}; !isSubsequence(want, r.seen()) {
		t.Errorf("phases %v, want %v in order", r.seen(), want)
	}
	if cd := r.canary(); cd.Status.CanaryWeight != 0 || cd.Status.FailedChecks != 0 {
		t.Errorf("after success: weight %d, failedChecks %d", cd.Status.CanaryWeight, cd.Status.FailedChecks)
	}
	if img := c.deployment(t, ns, "podinfo-primary").Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/stefanprodan/podinfo:6.0.1" {
		t.Errorf("primary runs %s after the promotion", img)
	}
	eventually(t, "target parked after promotion", func() (bool, string) {
		d := c.deployment(t, ns, "podinfo")
		return replicas(d) == 0, fmt.Sprintf("replicas %d", replicas(d))
	})

	// A ConfigMap change that the rollback gate rejects: Failed, the primary keeps the old
	// configuration and the target is parked.
	r.openRollback()
	c.updateConfigMap(t, ns, "podinfo-config", func(cm *corev1.ConfigMap) { cm.Data["PODINFO_UI_COLOR"] = "#ff0000" })
	r.waitPhase(v1alpha1.CanaryPhaseFailed)
	seen := r.seen()
	if want := []v1alpha1.CanaryPhase{v1alpha1.CanaryPhaseSucceeded, v1alpha1.CanaryPhaseProgressing, v1alpha1.CanaryPhaseFailed}; !isSubsequence(want, seen) {
		t.Errorf("phases %v, want %v in order", seen, want)
	}
	cm, err := c.cs.CoreV1().ConfigMaps(ns).Get(ctx, "podinfo-config-primary", metav1.GetOptions{})
	if err != nil || cm.Data["PODINFO_UI_COLOR"] != "#34577c" {
		t.Errorf("primary ConfigMap after the failed release = %v, %v", cm.Data, err)
	}
	eventually(t, "target parked after rollback", func() (bool, string) {
		d := c.deployment(t, ns, "podinfo")
		return replicas(d) == 0, fmt.Sprintf("replicas %d", replicas(d))
	})
	if ev := r.events(); !slices.ContainsFunc(ev, func(e string) bool { return strings.Contains(strings.ToLower(e), "rollback") }) {
		t.Errorf("no rollback event among %v", ev)
	}

	// Deleted with revertOnDeletion: the finalizer holds the Canary until the target
	// runs again with its own replicas.
	if cd := r.canary(); !slices.Contains(cd.Finalizers, canary.FinalizerRevert) {
		t.Fatalf("finalizers %v, want %s", cd.Finalizers, canary.FinalizerRevert)
	}
	err = r.st.Txn(ctx, func(tx store.Tx) error {
		_, _, err := store.DeleteOrMark(tx, store.Key{Kind: "Canary", Namespace: ns, Name: "podinfo"}, "", time.Now())
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "canary gone", func() (bool, string) {
		_, err := r.st.Get(ctx, store.Key{Kind: "Canary", Namespace: ns, Name: "podinfo"})
		return errors.Is(err, store.ErrNotFound), fmt.Sprintf("%v (seen %v)", err, r.seen())
	})
	// Terminated is the status of the write that removes the Canary: it is told by an event.
	if !isSubsequence([]v1alpha1.CanaryPhase{v1alpha1.CanaryPhaseFailed, v1alpha1.CanaryPhaseTerminating}, r.seen()) {
		t.Errorf("phases %v, want Terminating after Failed", r.seen())
	}
	eventually(t, "Terminated event", func() (bool, string) { // recorded once the removal is written
		ev := r.events()
		return slices.ContainsFunc(ev, func(e string) bool { return strings.HasPrefix(e, "Terminated:") }), fmt.Sprint(ev)
	})
	d := c.deployment(t, ns, "podinfo")
	if replicas(d) != 2 || d.Status.ReadyReplicas != 2 {
		t.Errorf("target after the revert: replicas %d, ready %d; want 2 and 2", replicas(d), d.Status.ReadyReplicas)
	}
	// The controller finalizes the target: the primary and its Services go, the apex
	// stays and selects the target's pods.
	eventually(t, "primary removed", func() (bool, string) {
		_, err := c.cs.AppsV1().Deployments(ns).Get(ctx, "podinfo-primary", metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	for _, name := range []string{"podinfo-primary", "podinfo-canary"} {
		if _, err := c.cs.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("service %s after finalization: %v, want not found", name, err)
		}
	}
	apex, err := c.cs.CoreV1().Services(ns).Get(ctx, "podinfo", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("apex service after finalization: %v", err)
	}
	if sel := apex.Spec.Selector["app"]; sel != "podinfo" {
		t.Errorf("apex selects app=%q, want the target's podinfo", sel)
	}
}
