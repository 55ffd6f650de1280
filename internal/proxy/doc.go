// Package proxy is Canarymesh's data plane: it runs one node's snapshot.Snapshot —
// listeners, routes and clusters — with App Mesh's semantics as Envoy implements them,
// and reports what it does with Envoy's metric names so that Flagger's queries and
// existing dashboards work unchanged.
//
//	Update(snapshot) ─▶ compile (validate, regexes, host tables, weighted schedules)
//	                    ─▶ open new sockets ─▶ apply upstreams ─▶ swap each listener's
//	                       atomic pointer ─▶ close what the snapshot dropped
//
//	request ─▶ listener ─▶ front end: plain HTTP/1.1 on a plain listener ─▶ fast path
//	              │                      (fast.go; everything else ─▶ net/http server)
//	              ▼
//	           config := pointer.Load()      (once; the request keeps it)
//	              │
//	              ├─ ingress ──────────────▶ the local application's route
//	              └─ egress / gateway ─▶ host table (Host) ─▶ first matching route
//	                                        └─ gateway route: rewrite, then the virtual
//	                                           service's host and routes
//	          ─▶ weighted pick (smooth WRR schedule, one atomic add)
//	          ─▶ upstream: pick endpoint (round robin over healthy, not ejected)
//	                       ─▶ pool limit ─▶ attempt ─▶ retry? (policy, body replayable)
//	          ─▶ stream the response (flush as it arrives, trailers, 101 → splice)
//	          ─▶ account: cluster / route / listener atomics, the node's window,
//	                      outlier detection, access log (channel to a writer goroutine)
//
// The engine — matching (match.go), picking (pick.go), upstream state, outlier
// detection, health checks, DNS, metrics and windows — knows nothing of net/http's
// server side. Two front ends drive it and account requests the same way (tally in
// exchange.go): net/http's (exchange.go, forward.go, upgrade.go), which serves TLS,
// HTTP/2, h2c, gRPC and upgrades, and the HTTP/1.1 fast path (fast*.go), which serves
// plain keep-alive HTTP/1.1 to HTTP/1.1 clusters with its own connection loop, an
// in-place parser and upstream connections pooled per endpoint, without allocating.
// A connection it does not take goes to net/http with the bytes read so far, so every
// request net/http served before is served as before. Mesh TLS (tls.go) — listeners
// that terminate it, clusters that originate it — is net/http's alone. Route matching, the weighted
// pick and the endpoint pick do not allocate (see the benchmarks).
//
// Two Canarymesh extensions of App Mesh routes serve canary releases: a route's mirror
// copies a share of its requests to another cluster and discards the answers
// (mirror.go: asynchronous, bounded, counted on the mirror's cluster; such routes are
// served by net/http), and a target's Set-Cookie values are added to every response it
// serves (session affinity; both front ends, the fast path without allocating).
//
// Upstream state (connections, ejections, health, counters) is keyed by cluster and
// survives snapshots that keep the cluster; counters are never reset.
//
// The package must not import Kubernetes or the API types: only the snapshot.
package proxy
