// Package deploytarget is the canary Target of Kubernetes mode: it releases a Deployment
// the way Flagger's deployment controller does, so a Flagger user finds the objects
// where they were.
//
// For a Canary whose targetRef is the Deployment podinfo (selector app: podinfo), with
// spec.service.port 9898 and autoscalerRef podinfo:
//
//	Deployment podinfo-primary   copy of podinfo; selector and pod label app: podinfo-primary,
//	                             ConfigMaps and Secrets it uses read from their -primary copies
//	HPA        podinfo-primary   copy of the HPA podinfo, scaling podinfo-primary (autoscaling/v2)
//	ConfigMap  <cm>-primary      copy of every tracked ConfigMap (and Secret <s>-primary)
//	Service    podinfo           apex, selects app: podinfo-primary
//	Service    podinfo-primary   selects app: podinfo-primary
//	Service    podinfo-canary    selects app: podinfo (the target's own pods)
//
// After initialisation the target is scaled to zero; a new revision scales it up for the
// analysis, a promotion copies its pod template (and the ConfigMaps and Secrets it
// references) into the primary, and a rollback scales it to zero again.
//
// A revision is the hash of the target's pod template together with the contents of the
// ConfigMaps and Secrets it references through env, envFrom and volumes (projected ones
// too), so changing a ConfigMap is a release, as in Flagger. An object annotated
// flagger.app/config-tracking: disabled (or canarymesh.dev/config-tracking: disabled) is
// not tracked and not copied.
//
// The selector label is the first of app, name and app.kubernetes.io/name (Flagger's
// defaults) found in the target's spec.selector.matchLabels; the primary's value is the
// target's value with -primary appended.
//
// Generated objects carry the canarymesh.dev/owner annotation of the Canary. When the
// Canaries live in the API server (OwnerReferences set), they are also owned by the
// Canary, so Kubernetes' garbage collector removes them with it, as Flagger's are;
// Finalize removes them explicitly otherwise, and gives the apex Service back to the
// target.
//
// The package talks to the API server with client-go's typed clientset: the objects are
// all built-in kinds, and no cache is needed for the few reads of a canary run.
package deploytarget
