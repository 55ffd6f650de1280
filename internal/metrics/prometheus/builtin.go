package prometheus

import (
	"fmt"

	"github.com/canarymesh/canarymesh/api/v1alpha1"
)

// appMeshQueries are the queries Flagger's App Mesh provider runs for the built-in
// checks, with its template variables; the text is Flagger's, so that a Prometheus set
// up for Flagger on App Mesh answers Canarymesh the same. They select the canary's pods
// (the target's, not the primary's: "podinfo-primary-x-y" has one name part too many)
// by the labels App Mesh's Prometheus configuration adds to every scraped series.
var appMeshQueries = map[string]string{
	v1alpha1.MetricRequestSuccessRate: `sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)",envoy_response_code!~"5.*"}[{{ interval }}]))` +
		` / sum(rate(envoy_cluster_upstream_rq{kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])) * 100`,
	v1alpha1.MetricRequestDuration: `histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{kubernetes_namespace="{{ namespace }}",kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"}[{{ interval }}])) by (le))`,
}

// BuiltinQuery returns Flagger's App Mesh query template for a built-in metric
// (request-success-rate in percent, request-duration as the P99 in milliseconds).
func BuiltinQuery(metric string) (string, error) {
	q, ok := appMeshQueries[metric]
	if !ok {
		return "", fmt.Errorf("%q is not a built-in metric (%s, %s)", metric, v1alpha1.MetricRequestSuccessRate, v1alpha1.MetricRequestDuration)
	}
	return q, nil
}
