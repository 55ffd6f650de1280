// Package grafana holds Canarymesh's Grafana dashboards: canarymesh-canary.json shows a
// canary's traffic per version, success rate, P50/P99, weight and phase over time, from
// the proxies' canarymesh_route_* series and the controller's canarymesh_canary_* ones.
// Import it in Grafana (Dashboards → Import) or load it with Grafana's dashboard sidecar.
package grafana

import _ "embed"

// CanaryDashboard is canarymesh-canary.json.
//
//go:embed canarymesh-canary.json
var CanaryDashboard []byte
