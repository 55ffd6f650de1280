package workload

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/canary"
	"github.com/canarymesh/canarymesh/internal/store"
	"github.com/canarymesh/canarymesh/internal/store/bolt"
)

func openStore(t *testing.T) *bolt.Store {
	t.Helper()
	st, err := bolt.Open(context.Background(), t.TempDir(), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func testCanary(target string) *v1alpha1.Canary {
	cd := &v1alpha1.Canary{Spec: v1alpha1.CanarySpec{TargetRef: v1alpha1.LocalObjectReference{Kind: "Workload", Name: target}}}
	cd.Name, cd.Namespace = target, testNS
	return cd
}

func getWorkload(t *testing.T, st store.Store, name string) *v1alpha1.Workload {
	t.Helper()
	obj, err := st.Get(context.Background(), store.Key{Kind: "Workload", Namespace: testNS, Name: name})
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*v1alpha1.Workload)
}

// initialized is a store with target podinfo (2 replicas on fixed port 9898) and the
// primary Initialize made of it.
type initialized struct {
	st      *bolt.Store
	tg      *WorkloadTarget
	cd      *v1alpha1.Canary
	target  *v1alpha1.Workload
	primary *v1alpha1.Workload
}

func initialize(t *testing.T) initialized {
	t.Helper()
	ctx := context.Background()
	st := openStore(t)
	in := initialized{st: st, tg: &WorkloadTarget{Store: st}, cd: testCanary("podinfo")}
	if err := in.tg.Initialize(ctx, in.cd); !errors.Is(err, ErrTargetNotFound) {
		t.Fatalf("Initialize without a target: %v, want ErrTargetNotFound", err)
	}
	wl := appWorkload(t, "podinfo", 2, "3.1.0")
	wl.Spec.Port = 9898
	wl.Labels = map[string]string{"team": "web"}
	wl.Spec.ReadinessProbe.HTTPGet.Port = 9898
	if _, err := st.Create(ctx, wl); err != nil {
		t.Fatal(err)
	}
	in.target = getWorkload(t, st, "podinfo")
	if err := in.tg.Initialize(ctx, in.cd); err != nil {
		t.Fatal(err)
	}
	in.primary = getWorkload(t, st, "podinfo-primary")
	return in
}

func TestTargetInitialize(t *testing.T) {
	ctx := context.Background()
	in := initialize(t)
	primary, target := in.primary, in.target
	// The primary is a copy with its own selector label and role.
	if got := primary.Spec.Labels; got["app"] != "podinfo-primary" || got[LabelRole] != "primary" {
		t.Errorf("primary instance labels %v", got)
	}
	if primary.Labels["team"] != "web" || primary.Labels[LabelRole] != "primary" {
		t.Errorf("primary object labels %v", primary.Labels)
	}
	if primary.GetReplicas() != 2 || primary.Spec.Port != 0 || primary.Spec.ReadinessProbe.HTTPGet.Port != 0 {
		t.Errorf("primary replicas %d port %d probe port %d; want 2 and free ports", primary.GetReplicas(), primary.Spec.Port, primary.Spec.ReadinessProbe.HTTPGet.Port)
	}
	if !equality.Semantic.DeepEqual(primary.Spec.Command, target.Spec.Command) || !equality.Semantic.DeepEqual(primary.Spec.Env, target.Spec.Env) {
		t.Errorf("primary does not run the target's command and env")
	}
	if rev, _ := in.tg.PrimaryRevision(ctx, in.cd); rev != target.Revision() {
		t.Errorf("PrimaryRevision = %q, want %q", rev, target.Revision())
	}
	if got := getWorkload(t, in.st, "podinfo"); got.ResourceVersion != target.ResourceVersion {
		t.Error("Initialize changed the target")
	}
	// Again: nothing changes.
	if err := in.tg.Initialize(ctx, in.cd); err != nil {
		t.Fatal(err)
	}
	if again := getWorkload(t, in.st, "podinfo-primary"); again.ResourceVersion != primary.ResourceVersion {
		t.Error("a second Initialize rewrote the primary")
	}
}

func TestTargetScaleCanary(t *testing.T) {
	ctx := context.Background()
	in := initialize(t)
	rev, err := in.tg.Revision(ctx, in.cd)
	if err != nil || rev != in.target.Revision() {
		t.Fatalf("Revision = %q, %v", rev, err)
	}
	// Parking the canary keeps its revision and remembers its count.
	if err := in.tg.ScaleCanary(ctx, in.cd, 0); err != nil {
		t.Fatal(err)
	}
	parked := getWorkload(t, in.st, "podinfo")
	if parked.GetReplicas() != 0 || parked.Revision() != rev || parked.Annotations[AnnotationCanaryReplicas] != "2" {
		t.Errorf("parked: replicas %d revision %s annotations %v", parked.GetReplicas(), parked.Revision(), parked.Annotations)
	}
	if err := in.tg.ScaleCanary(ctx, in.cd, RestoreReplicas); err != nil {
		t.Fatal(err)
	}
	if got := getWorkload(t, in.st, "podinfo"); got.GetReplicas() != 2 || got.Annotations[AnnotationCanaryReplicas] != "" {
		t.Errorf("restored: replicas %d annotations %v", got.GetReplicas(), got.Annotations)
	}
	if err := in.tg.ScaleCanary(ctx, in.cd, 3); err != nil {
		t.Fatal(err)
	}
	if got := getWorkload(t, in.st, "podinfo"); got.GetReplicas() != 3 {
		t.Errorf("ScaleCanary(3): replicas %d", got.GetReplicas())
	}
	if err := in.tg.ScaleCanary(ctx, in.cd, -5); err == nil {
		t.Error("ScaleCanary(-5) succeeded")
	}
}

func TestTargetPromoteAndRollback(t *testing.T) {
	ctx := context.Background()
	in := initialize(t)
	// A new version of the target is a new revision; Promote copies it.
	modify(t, in.st, "podinfo", func(w *v1alpha1.Workload) { w.Spec.Env[1].Value = "3.1.1" })
	newRev, _ := in.tg.Revision(ctx, in.cd)
	if newRev == in.target.Revision() {
		t.Fatal("a changed env did not change the revision")
	}
	if err := in.tg.Promote(ctx, in.cd); err != nil {
		t.Fatal(err)
	}
	promoted := getWorkload(t, in.st, "podinfo-primary")
	if promoted.Spec.Env[1].Value != "3.1.1" || promoted.GetReplicas() != 2 || promoted.Annotations[AnnotationPromotedRevision] != newRev {
		t.Errorf("promoted: env %v replicas %d annotations %v", promoted.Spec.Env, promoted.GetReplicas(), promoted.Annotations)
	}
	if promoted.Spec.Labels["app"] != "podinfo-primary" || promoted.Spec.Port != 0 {
		t.Errorf("promotion lost the primary's labels or port: %v %d", promoted.Spec.Labels, promoted.Spec.Port)
	}
	// Rollback parks the canary.
	if err := in.tg.Rollback(ctx, in.cd); err != nil {
		t.Fatal(err)
	}
	if got := getWorkload(t, in.st, "podinfo"); got.GetReplicas() != 0 || got.Annotations[AnnotationCanaryReplicas] != "2" {
		t.Errorf("after rollback: replicas %d annotations %v", got.GetReplicas(), got.Annotations)
	}
}

func TestInitializeRefusesAForeignPrimary(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	for _, name := range []string{"podinfo", "podinfo-primary"} {
		if _, err := st.Create(ctx, appWorkload(t, name, 1, "1")); err != nil {
			t.Fatal(err)
		}
	}
	err := (&WorkloadTarget{Store: st}).Initialize(ctx, testCanary("podinfo"))
	if err == nil || !strings.Contains(err.Error(), "not a primary") {
		t.Errorf("Initialize over a user's workload: %v", err)
	}
	cd := testCanary("podinfo")
	cd.Spec.TargetRef.Kind = "Deployment"
	if err := (&WorkloadTarget{Store: st}).Initialize(ctx, cd); err == nil {
		t.Error("a Deployment target was accepted")
	}
}

func modify(t *testing.T, st store.Store, name string, f func(w *v1alpha1.Workload)) {
	t.Helper()
	w := getWorkload(t, st, name)
	f(w)
	if _, err := st.Update(context.Background(), w); err != nil {
		t.Fatal(err)
	}
}

func TestWorkloadReady(t *testing.T) {
	base := appWorkload(t, "podinfo", 4, "1")
	base.Generation = 2
	rev := base.Revision()
	inst := func(ready bool, r string) v1alpha1.WorkloadInstance {
		return v1alpha1.WorkloadInstance{Ready: ready, Revision: r}
	}
	tests := []struct {
		name      string
		observed  int64
		replicas  int32
		instances []v1alpha1.WorkloadInstance
		threshold int
		ready     bool
		msg       string
	}{
		{"all ready", 2, 4, []v1alpha1.WorkloadInstance{inst(true, rev), inst(true, rev), inst(true, rev), inst(true, rev)}, 100, true, ""},
		{"three of four at 100%", 2, 4, []v1alpha1.WorkloadInstance{inst(true, rev), inst(true, rev), inst(true, rev), inst(false, rev)}, 100, false, "3 of 4"},
		{"three of four at 75%", 2, 4, []v1alpha1.WorkloadInstance{inst(true, rev), inst(true, rev), inst(true, rev), inst(false, rev)}, 75, true, ""},
		{"old revision does not count", 2, 4, []v1alpha1.WorkloadInstance{inst(true, "old"), inst(true, rev), inst(true, rev), inst(true, rev)}, 100, false, "3 of 4"},
		{"not observed yet", 1, 4, []v1alpha1.WorkloadInstance{inst(true, rev), inst(true, rev), inst(true, rev), inst(true, rev)}, 100, false, "observed"},
		{"scaled to zero", 2, 0, nil, 100, false, "scaled to zero"},
		{"crash loop waits", 2, 1, []v1alpha1.WorkloadInstance{inst(false, rev)}, 100, false, "CrashLoop"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := base.DeepCopy()
			w.Spec.Replicas = &tc.replicas
			w.Status.ObservedGeneration = tc.observed
			w.Status.Instances = tc.instances
			if tc.name == "crash loop waits" {
				w.Status.Conditions = []metav1.Condition{{Type: ConditionProgressing, Status: "False", Reason: ReasonCrashLoop, Message: "exit status 3"}}
			}
			ready, msg, err := workloadReady(w, tc.threshold)
			if err != nil || ready != tc.ready || !strings.Contains(msg, tc.msg) {
				t.Errorf("= %v %q %v, want %v %q", ready, msg, err, tc.ready, tc.msg)
			}
		})
	}
}

// A command that does not exist will not start without a new revision: Ready says so
// with canary.ErrStuck, and the analysis rolls back at once.
func TestWorkloadReadyStuck(t *testing.T) {
	w := appWorkload(t, "podinfo", 1, "1")
	w.Generation = 1
	w.Status.ObservedGeneration = 1
	for _, reason := range []string{ReasonCommandNotFound, ReasonWorkingDirNotFound} {
		w.Status.Conditions = []metav1.Condition{{Type: ConditionProgressing, Status: "False", Reason: reason, Message: "no such file"}}
		ready, _, err := workloadReady(w, 100)
		if ready || !errors.Is(err, canary.ErrStuck) || !strings.Contains(err.Error(), reason) {
			t.Errorf("%s: ready %v, err %v; want canary.ErrStuck naming the reason", reason, ready, err)
		}
	}
}

// TestTargetWithSupervisor: the primary Initialize makes is run by the supervisor and
// becomes ready; a promotion rolls it to the canary's version.
func TestTargetWithSupervisor(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	tg := &WorkloadTarget{Store: h.st}
	cd := testCanary("podinfo")
	h.create(appWorkload(t, "podinfo", 1, "3.1.0"))
	if err := tg.Initialize(ctx, cd); err != nil {
		t.Fatal(err)
	}
	waitReady := func(role Role) {
		waitFor(t, 30*time.Second, func() (bool, string) {
			ok, msg, err := tg.Ready(ctx, cd, role)
			if err != nil {
				t.Fatal(err)
			}
			return ok, msg
		})
	}
	waitReady(RolePrimary)
	waitReady(RoleCanary)

	h.edit("podinfo", func(w *v1alpha1.Workload) { w.Spec.Env[1].Value = "3.1.1" })
	waitReady(RoleCanary)
	if err := tg.Promote(ctx, cd); err != nil {
		t.Fatal(err)
	}
	waitReady(RolePrimary)
	p := h.get("podinfo-primary")
	if body, err := fetch(p.Status.Instances[0].Port, "/version"); err != nil || !strings.Contains(body, `"3.1.1"`) {
		t.Errorf("primary after promotion: %q, %v", body, err)
	}
	if err := tg.Rollback(ctx, cd); err != nil {
		t.Fatal(err)
	}
	h.waitStatus("podinfo", 30*time.Second, func(w *v1alpha1.Workload) bool {
		return w.Status.ObservedGeneration == w.Generation && len(w.Status.Instances) == 0
	})
	if ok, msg, _ := tg.Ready(ctx, cd, RoleCanary); ok || !strings.Contains(msg, "scaled to zero") {
		t.Errorf("parked canary Ready = %v %q", ok, msg)
	}
}

// A command that does not exist is reported by Ready as stuck (canary.ErrStuck), with
// the supervisor's reason.
func TestReadyReportsMissingCommand(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil)
	tg := &WorkloadTarget{Store: h.st}
	cd := testCanary("broken")
	one := int32(1)
	w := &v1alpha1.Workload{Spec: v1alpha1.WorkloadSpec{Command: []string{"/nonexistent/podinfo"}, Replicas: &one}}
	w.Name, w.Namespace = "broken", testNS
	h.create(w)
	waitFor(t, 30*time.Second, func() (bool, string) {
		ok, msg, err := tg.Ready(ctx, cd, RoleCanary)
		if err == nil {
			return false, msg
		}
		return !ok && errors.Is(err, canary.ErrStuck) && strings.Contains(err.Error(), ReasonCommandNotFound), err.Error()
	})
}
