// Package stream is the push stream from the control plane to proxies: one long-lived
// gRPC stream per proxy, over which the control plane pushes whole snapshots and the
// proxy acknowledges each version it applied or rejects it with a reason.
//
//	proxy (Client)                              control plane (Server)
//	     │ ── open Stream, authorization: Bearer T ─▶ │ auth → codes.Unauthenticated
//	     │ ── Hello{node, proxyVersion, lastVersion} ─▶ │ register connection
//	     │ ◀───────── headers (connected) ──────────── │
//	     │ ◀──────── Push{snapshot v7} ─────────────── │ only if v7 ≠ what the proxy has
//	     │  apply(v7)                                  │ no further push until it answers
//	     │ ── Ack{7} | Nack{7, reason} ──────────────▶ │ visible in Proxies() and Watch
//	     │ ◀──────── Push{newest} ─────────────────── │ versions set meanwhile are skipped
//	     ⋮                                             ⋮
//	stream breaks → the proxy keeps serving what it runs, reconnects with backoff and
//	jitter, and says lastVersion so an unchanged snapshot is not sent again.
//
// SetSnapshot never waits for a proxy: each connection has a mailbox that holds only the
// newest snapshot of its node, and a proxy gets at most one push it has not answered, so
// a slow proxy skips the versions that were superseded while it was busy.
//
// Messages are Go structs encoded as JSON by a gRPC codec this package registers; the
// service is described by hand, so no generated code is needed. The package imports no
// Kubernetes packages: the proxy process links the client half.
package stream
