package canary

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
	"github.com/canarymesh/canarymesh/internal/store"
)

// AnnotationOwner marks the mesh objects a Canary made: "Canary/NAMESPACE/NAME".
const AnnotationOwner = "canarymesh.dev/owner"

// MeshRouter is the Router of this mesh. For a Canary of target podinfo in namespace
// demo it makes what Flagger's App Mesh router makes:
//
//	VirtualNode    podinfo-primary  podSelector app: podinfo-primary, DNS podinfo-primary.demo
//	VirtualNode    podinfo-canary   podSelector app: podinfo,         DNS podinfo-canary.demo
//	VirtualRouter  podinfo          route podinfo-route: podinfo-primary 100, podinfo-canary 0
//	VirtualService podinfo          podinfo.demo         → router podinfo
//	VirtualService podinfo-canary   podinfo-canary.demo  → node podinfo-canary
//	VirtualService podinfo-primary  podinfo-primary.demo → node podinfo-primary
//
// The DNS names satisfy App Mesh's validation; the compiler finds the endpoints through
// the workloads the selectors match.
type MeshRouter struct {
	Store store.Store
	Log   *slog.Logger
	// Selector, when set, gives the label the virtual nodes select on, the canary's
	// value of it and the primary's: a Deployment target's selector label, whose
	// primary value is the canary's with -primary, as Flagger names it. Unset, the
	// target is a Workload in Store, whose primary value is <target>-primary.
	Selector func(ctx context.Context, cd *v1alpha1.Canary) (key, canaryValue, primaryValue string, err error)
}

var _ Router = (*MeshRouter)(nil)

// maxRouterAttempts bounds the retries of a write that lost a race (the status
// reconciler writes the same objects' status).
const maxRouterAttempts = 10

func owner(cd *v1alpha1.Canary) string { return "Canary/" + cd.Namespace + "/" + cd.Name }

func (r *MeshRouter) log() *slog.Logger {
	if r.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return r.Log
}

// Initialize makes every mesh object of the Canary exist as it should, keeping the
// weights and A/B routes the router has now.
func (r *MeshRouter) Initialize(ctx context.Context, cd *v1alpha1.Canary) error {
	objs, err := r.desired(ctx, cd)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if err := r.ensure(ctx, cd, o); err != nil {
			return err
		}
	}
	return nil
}

// SetWeights sets the weighted route's weights, its mirror to the canary and the
// session-affinity cookies and routes (Canarymesh route extensions; see Affinity). A
// gRPC Canary cannot mirror: its weights are set, and ErrMirrorUnsupported says so.
func (r *MeshRouter) SetWeights(ctx context.Context, cd *v1alpha1.Canary, w SetWeights) error {
	rt, err := newRoutes(cd)
	if err != nil {
		return err
	}
	var unsupported error
	err = r.modifyRouter(ctx, cd, func(vr *v1alpha1.VirtualRouter) (bool, error) {
		changed, err := rt.shape(vr, w, cd)
		if errors.Is(err, ErrMirrorUnsupported) {
			unsupported, err = err, nil
		}
		return changed, err
	})
	if err != nil {
		return err
	}
	return unsupported
}

// SetMatch replaces the A/B routes with one per match (none for an empty match).
func (r *MeshRouter) SetMatch(ctx context.Context, cd *v1alpha1.Canary, match []v1alpha1.HTTPMatchRequest) error {
	rt, err := newRoutes(cd)
	if err != nil {
		return err
	}
	want, err := rt.matchRoutes(match)
	if err != nil {
		return err
	}
	return r.modifyRouter(ctx, cd, func(vr *v1alpha1.VirtualRouter) (bool, error) {
		var keep []v1alpha1.Route
		for _, route := range vr.Spec.Routes {
			if !rt.isMatchRoute(route.Name) {
				keep = append(keep, route)
			}
		}
		next := append(append([]v1alpha1.Route{}, want...), keep...)
		if equality.Semantic.DeepEqual(next, vr.Spec.Routes) {
			return false, nil
		}
		vr.Spec.Routes = next
		return true, nil
	})
}

// modifyRouter applies f to the apex router and writes it back (compare-and-swap,
// reading again on conflict). A missing router is made first.
func (r *MeshRouter) modifyRouter(ctx context.Context, cd *v1alpha1.Canary, f func(vr *v1alpha1.VirtualRouter) (bool, error)) error {
	apex, _, _ := cd.GetServiceNames()
	key := store.Key{Kind: "VirtualRouter", Namespace: cd.Namespace, Name: apex}
	for range maxRouterAttempts {
		obj, err := r.Store.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			if err := r.Initialize(ctx, cd); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		vr, ok := obj.(*v1alpha1.VirtualRouter)
		if !ok {
			return fmt.Errorf("%s: store returned a %T", key, obj)
		}
		if err := checkOwner(cd, vr); err != nil {
			return err
		}
		changed, err := f(vr)
		if err != nil || !changed {
			return err
		}
		if errs := vr.Validate(); len(errs) > 0 {
			return fmt.Errorf("%s: %v", key, errs)
		}
		_, err = r.Store.Update(ctx, vr)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("%s: %w (gave up after %d attempts)", key, store.ErrConflict, maxRouterAttempts)
}

// checkOwner refuses an object another Canary made. One without an owner is adopted.
func checkOwner(cd *v1alpha1.Canary, o v1alpha1.Object) error {
	if got := o.GetAnnotations()[AnnotationOwner]; got != "" && got != owner(cd) {
		return fmt.Errorf("%s %s/%s belongs to %s, not to %s", o.GetObjectKind().GroupVersionKind().Kind,
			o.GetNamespace(), o.GetName(), got, owner(cd))
	}
	return nil
}

// ensure creates want, or brings an existing object's spec in line with it.
func (r *MeshRouter) ensure(ctx context.Context, cd *v1alpha1.Canary, want v1alpha1.Object) error {
	key, err := store.KeyOf(want)
	if err != nil {
		return err
	}
	for range maxRouterAttempts {
		cur, err := r.Store.Get(ctx, key)
		if errors.Is(err, store.ErrNotFound) {
			_, err = r.Store.Create(ctx, want)
			if errors.Is(err, store.ErrExists) {
				continue
			}
			if err == nil {
				r.log().InfoContext(ctx, "mesh object created", "canary", cd.Namespace+"/"+cd.Name, "object", key.String())
			}
			return err
		}
		if err != nil {
			return err
		}
		if err := checkOwner(cd, cur); err != nil {
			return err
		}
		next, changed, err := merged(cd, cur, want)
		if err != nil || !changed {
			return err
		}
		_, err = r.Store.Update(ctx, next)
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return fmt.Errorf("%s: %w (gave up after %d attempts)", key, store.ErrConflict, maxRouterAttempts)
}

// merged is cur with want's spec and the owner annotation, its status kept; a router
// keeps its weights and A/B routes.
func merged(cd *v1alpha1.Canary, cur, want v1alpha1.Object) (v1alpha1.Object, bool, error) {
	next, ok := cur.DeepCopyObject().(v1alpha1.Object)
	if !ok {
		return nil, false, fmt.Errorf("%s: deep copy is not an object", cur.GetName())
	}
	switch n := next.(type) {
	case *v1alpha1.VirtualNode:
		n.Spec = want.(*v1alpha1.VirtualNode).Spec
	case *v1alpha1.VirtualService:
		n.Spec = want.(*v1alpha1.VirtualService).Spec
	case *v1alpha1.VirtualRouter:
		rt, err := newRoutes(cd)
		if err != nil {
			return nil, false, err
		}
		c := cur.(*v1alpha1.VirtualRouter)
		n.Spec = want.(*v1alpha1.VirtualRouter).Spec
		pw, cw := rt.currentWeights(c)
		rt.setWeights(n, pw, cw)
		rt.keepShape(c, n)
		if err := rt.keepMatch(c, n, cd); err != nil {
			return nil, false, err
		}
	default:
		return nil, false, fmt.Errorf("%s: not a mesh object the router makes", cur.GetName())
	}
	ann := next.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[AnnotationOwner] = owner(cd)
	next.SetAnnotations(ann)
	return next, !equality.Semantic.DeepEqual(cur, next), nil
}

// desired are the mesh objects of a Canary, as Initialize makes them.
func (r *MeshRouter) desired(ctx context.Context, cd *v1alpha1.Canary) ([]v1alpha1.Object, error) {
	if cd.Spec.Service.Port <= 0 {
		return nil, fmt.Errorf("spec.service.port: %d is not a port", cd.Spec.Service.Port)
	}
	rt, err := newRoutes(cd)
	if err != nil {
		return nil, err
	}
	mesh, err := r.meshRef(ctx, cd)
	if err != nil {
		return nil, err
	}
	key, canaryValue, primaryValue, err := r.selector(ctx, cd)
	if err != nil {
		return nil, err
	}
	apex, primary, canary := cd.GetServiceNames()
	ns := cd.Namespace
	pm := v1alpha1.PortMapping{Port: v1alpha1.PortNumber(cd.Spec.Service.Port), Protocol: protocol(cd)}
	vr := &v1alpha1.VirtualRouter{Spec: v1alpha1.VirtualRouterSpec{
		Listeners: []v1alpha1.VirtualRouterListener{{PortMapping: pm}},
		Routes:    []v1alpha1.Route{rt.mainRoute(100, 0)}, MeshRef: mesh}}
	vr.Name = apex
	objs := []v1alpha1.Object{
		node(primary, pm, map[string]string{key: primaryValue}, primary+"."+ns, backends(cd), mesh),
		node(canary, pm, map[string]string{key: canaryValue}, canary+"."+ns, backends(cd), mesh),
		vr,
		service(apex, ns, &v1alpha1.VirtualServiceProvider{VirtualRouter: &v1alpha1.VirtualRouterServiceProvider{
			VirtualRouterRef: &v1alpha1.VirtualRouterReference{Name: apex}}}, mesh),
		service(canary, ns, nodeProvider(canary), mesh),
		service(primary, ns, nodeProvider(primary), mesh),
	}
	for _, o := range objs {
		o.SetNamespace(ns)
		o.SetAnnotations(map[string]string{AnnotationOwner: owner(cd)})
		kind, _ := v1alpha1.KindOf(o)
		o.GetObjectKind().SetGroupVersionKind(kind.GroupVersionKind())
		if d, ok := o.(v1alpha1.Defaulter); ok {
			d.Default()
		}
		if v, ok := o.(v1alpha1.Validator); ok {
			if errs := v.Validate(); len(errs) > 0 {
				return nil, fmt.Errorf("%s %s/%s: %v", kind.Kind, ns, o.GetName(), errs)
			}
		}
	}
	return objs, nil
}

func node(name string, pm v1alpha1.PortMapping, selector map[string]string, dns string, bs []v1alpha1.Backend, mesh *v1alpha1.MeshReference) *v1alpha1.VirtualNode {
	vn := &v1alpha1.VirtualNode{Spec: v1alpha1.VirtualNodeSpec{
		PodSelector:      &metav1.LabelSelector{MatchLabels: selector},
		Listeners:        []v1alpha1.Listener{{PortMapping: pm}},
		ServiceDiscovery: &v1alpha1.ServiceDiscovery{DNS: &v1alpha1.DNSServiceDiscovery{Hostname: dns}},
		Backends:         bs,
		MeshRef:          mesh,
	}}
	vn.Name = name
	return vn
}

func service(name, ns string, p *v1alpha1.VirtualServiceProvider, mesh *v1alpha1.MeshReference) *v1alpha1.VirtualService {
	aws := name + "." + ns
	vs := &v1alpha1.VirtualService{Spec: v1alpha1.VirtualServiceSpec{AWSName: &aws, Provider: p, MeshRef: mesh}}
	vs.Name = name
	return vs
}

func nodeProvider(name string) *v1alpha1.VirtualServiceProvider {
	return &v1alpha1.VirtualServiceProvider{VirtualNode: &v1alpha1.VirtualNodeServiceProvider{
		VirtualNodeRef: &v1alpha1.VirtualNodeReference{Name: name}}}
}

// backends are spec.service.backends: an ARN, an App Mesh name (with a dot), or the
// name of a VirtualService in the Canary's namespace.
func backends(cd *v1alpha1.Canary) []v1alpha1.Backend {
	var out []v1alpha1.Backend
	for _, b := range cd.Spec.Service.Backends {
		var vs v1alpha1.VirtualServiceBackend
		switch {
		case strings.HasPrefix(b, "arn:"):
			arn := b
			vs.VirtualServiceARN = &arn
		case strings.Contains(b, "."):
			vs.VirtualServiceName = b
		default:
			vs.VirtualServiceRef = &v1alpha1.VirtualServiceReference{Name: b}
		}
		out = append(out, v1alpha1.Backend{VirtualService: vs})
	}
	return out
}

// selectorLabels are the labels the primary's copy renames, in Flagger's order.
var selectorLabels = []string{"app", "name", "app.kubernetes.io/name"}

// selector returns the label the virtual nodes select on, the target's value of it and
// the primary's: Selector's answer when set; else the first of app, name,
// app.kubernetes.io/name that the target Workload carries, and <target>-primary for the
// primary. A Workload with none of them is refused, as Flagger refuses such a
// Deployment: no virtual node could select its instances, so the canary would get no
// traffic. (While the target does not exist yet, app with its name stands in.)
func (r *MeshRouter) selector(ctx context.Context, cd *v1alpha1.Canary) (key, canaryValue, primaryValue string, err error) {
	if r.Selector != nil {
		return r.Selector(ctx, cd)
	}
	name := cd.Spec.TargetRef.Name
	primaryValue = name + "-primary"
	obj, err := r.Store.Get(ctx, store.Key{Kind: "Workload", Namespace: cd.Namespace, Name: name})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "app", name, primaryValue, nil
	case err != nil:
		return "", "", "", err
	}
	w, ok := obj.(*v1alpha1.Workload)
	if !ok {
		return "app", name, primaryValue, nil
	}
	for _, k := range selectorLabels {
		if v, ok := w.Spec.Labels[k]; ok {
			return k, v, primaryValue, nil
		}
	}
	return "", "", "", fmt.Errorf("target Workload %s/%s: spec.labels has none of %s, by which the %s-canary virtual node selects its instances: add one, e.g. app: %s",
		w.Namespace, w.Name, strings.Join(selectorLabels, ", "), name, name)
}

// meshRef names spec.service.meshName, or else the one Mesh whose namespaceSelector
// matches the Canary's namespace, as the API resolves it for applied objects.
func (r *MeshRouter) meshRef(ctx context.Context, cd *v1alpha1.Canary) (*v1alpha1.MeshReference, error) {
	if name := cd.Spec.Service.MeshName; name != "" {
		obj, err := r.Store.Get(ctx, store.Key{Kind: "Mesh", Name: name})
		switch {
		case errors.Is(err, store.ErrNotFound):
			return &v1alpha1.MeshReference{Name: name}, nil
		case err != nil:
			return nil, err
		}
		return &v1alpha1.MeshReference{Name: name, UID: obj.GetUID()}, nil
	}
	var nsLabels map[string]string
	if obj, err := r.Store.Get(ctx, store.Key{Kind: "Namespace", Name: cd.Namespace}); err == nil {
		if ns, ok := obj.(*corev1.Namespace); ok {
			nsLabels = ns.Labels
		}
	}
	meshes, _, err := r.Store.List(ctx, store.Filter{Kind: "Mesh"})
	if err != nil {
		return nil, err
	}
	var found *v1alpha1.MeshReference
	for _, o := range meshes {
		m, ok := o.(*v1alpha1.Mesh)
		if !ok || m.Spec.NamespaceSelector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(m.Spec.NamespaceSelector)
		if err != nil || !sel.Matches(labels.Set(nsLabels)) {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("namespace %s matches more than one Mesh (%s, %s): set spec.service.meshName", cd.Namespace, found.Name, m.Name)
		}
		found = &v1alpha1.MeshReference{Name: m.Name, UID: m.UID}
	}
	return found, nil
}
