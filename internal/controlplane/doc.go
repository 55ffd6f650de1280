// Package controlplane serves Canarymesh's control-plane API in standalone mode: the
// Kubernetes-like REST API the CLI uses (list, get, create, update, delete, watch, and a
// batch apply that stores a whole input or none of it), token authentication, and the
// status reconciler that tells users which references do not resolve yet and whether
// their MetricTemplates and AlertProviders can be used as written.
//
// Paths follow Kubernetes' conventions so that users' habits and tools carry over:
//
//	/apis/canarymesh.dev/v1alpha1/namespaces/{ns}/{plural}[/{name}[/status]]
//	/apis/canarymesh.dev/v1alpha1/{plural}[/{name}]     cluster-scoped kinds; list across namespaces
//	/api/v1/namespaces[/{name}]
//	/apis/canarymesh.dev/v1alpha1/apply                  POST: batch apply (all or nothing)
//
// A list or get with ?watch=true streams newline-delimited JSON events
// ({"type":"ADDED","object":{...}}) from ?resourceVersion=N onwards.
package controlplane
