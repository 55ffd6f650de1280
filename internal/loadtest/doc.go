// Package loadtest is Canarymesh's load generator and its load-tester service.
//
// The generator speaks hey's language (-z, -n, -c, -q, -m, -H, -d, -T, -t, ...) so the
// `hey ...` commands written in Flagger webhooks run unchanged, and prints hey's summary.
// It adds an open-model mode (--rate): requests leave on a fixed schedule whatever the
// server's response times, at most -c in flight, and latency is measured from the time a
// request was due, not the time it left, so a stalled server cannot hide its stall
// (coordinated omission).
//
//	Config ─▶ Run ─▶ workers (closed: -c loops, each throttled to -q)
//	                 dispatcher + -c senders (open: --rate schedule)
//	             ─▶ collector (HDR histogram, status codes, errors) ─▶ Result.Report
//
// Why hand-written on net/http with hdrhistogram-go rather than fortio's runner: fortio
// counts a failed request as status -1 and drops the error text, while hey's "Error
// distribution" (connection refused, timeouts) is what a canary user reads; its QPS is a
// total where hey's -q is per worker; and its output is not hey's. The runner loops are a
// few dozen lines; the hard part, bounded-memory percentiles over hour-long runs, is the
// HDR histogram's, which has no runtime dependencies.
//
// The service (NewService) answers Flagger's webhooks as flagger-loadtester does: `cmd`
// tasks in the background, deduplicated per canary while running; `bash` tasks
// synchronously; and the manual gates (/gate/..., /rollback/...). Shell commands run only
// when the operator allowed them.
package loadtest
