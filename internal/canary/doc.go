// Package canary holds the canary analysis and the controller that drives it.
//
// The analysis is a state machine written as one pure function, Decide, of a Canary (its
// spec and last persisted status) and what the controller observed since the last step.
// It returns the new status and the ordered actions that carry it out; the Controller
// persists the status first, then executes the actions, so a restart resumes from the
// persisted status and never repeats a promotion. Decide performs no I/O, starts no
// goroutines and reads no clock: time comes in Observations.Now.
//
// The Controller is the thin adapter around it: it watches Canaries (and the Workloads
// they target), observes through a Target, moves traffic through a Router (MeshRouter,
// the apex VirtualRouter of this mesh), measures metric checks through a MetricChecker
// (MeshMetrics: the proxies' built-in windows), calls webhooks, records events and sends
// alerts. Manual commands arrive as an annotation (RequestCommand) and are consumed in
// the same write as the status they lead to.
//
// The phases are Flagger's:
//
//	"" ──▶ Initializing ──primary ready──▶ Initialized
//	                                           │
//	        new revision (≠ lastAppliedSpec; a return to lastPromotedSpec is only recorded)
//	                                           ▼
//	                    ┌──────────── confirm-rollout hooks? ────────────┐
//	                    ▼ yes                                            ▼ no
//	                 Waiting ──────────── gate opens ──────────────▶ Progressing ◀─┐
//	                                                                   │          │ new revision:
//	   every interval: rollback hooks, then pre-rollout hooks once,    │          │ restart from 0
//	   then rollout hooks and metric checks; a pass moves one step     │ ─────────┘
//	   (stepWeight, stepWeights, iterations), a failure adds to        │
//	   failedChecks; threshold, a rollback hook or the progress        ├──▶ Failed ──retry──▶ …
//	   deadline roll back                                              │
//	                          maxWeight / iterations reached           ▼
//	                 WaitingPromotion ◀── confirm-promotion closed ── (gate)
//	                          │ gate opens                              │ open
//	                          ▼                                         ▼
//	                      Promoting: PromotePrimary once, then traffic back to the primary
//	                          │      (all at once, or stepWeightPromotion per interval)
//	                          ▼
//	                      Finalising: canary scaled to zero ──▶ Succeeded ──new revision──▶ …
//
//	any phase ──deleted with revertOnDeletion──▶ Terminating ──target ready──▶ Terminated
//
// A round of checks takes two calls: the first asks for them (RunWebhooks, CheckMetrics
// and a Requeue of zero), the second receives their results in Observations and judges
// them. Rounds are paced by spec.analysis.interval through status.lastStepTime.
package canary
