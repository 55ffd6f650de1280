// Package web is the MetricTemplate provider "web", Argo Rollouts' web metric: it sends
// a GET (or a POST with a body) to a URL with the template's headers and picks the value
// out of the JSON answer with a JSONPath expression (k8s.io/client-go/util/jsonpath,
// the syntax kubectl -o jsonpath uses). For KPIs that live behind a plain HTTP API.
//
// The MetricTemplate's rendered query is the JSONPath ({$.data.successRate}), or a small
// YAML document for a POST:
//
//	jsonPath: "{$.result}"
//	method: POST
//	body: '{"service": "podinfo"}'
package web
