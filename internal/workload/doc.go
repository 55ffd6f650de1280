// Package workload runs standalone mode's Workloads: a Supervisor starts each
// Workload's replicas as local processes and writes what it sees back as status, and
// WorkloadTarget lets the canary controller release a new version of one, as Flagger
// does with a Deployment.
//
// The supervisor is level-based. It lists the Workloads, watches for changes, and gives
// each Workload a runner that owns its instances and is the only writer of its status:
//
//	store ─list/watch─▶ Supervisor ─▶ runner per Workload ─▶ instance per process slot
//	                                     │   ▲                 │ start, probe, restart
//	                                     │   └── kick ─────────┘ with backoff, stop
//	                                     └─ status (compare-and-swap) ─▶ store
//
// An instance is one slot (index, port, revision): it starts the command with $PORT and
// the CANARYMESH_* variables, probes readiness over HTTP on 127.0.0.1, restarts the
// program with exponential backoff when it exits (reset once it ran for StableAfter),
// and stops it with SIGTERM to its process group, then SIGKILL after the grace period.
// Output goes to a ring buffer and to logs/<namespace>/<name>-<index>.log in the data
// directory, rotated at a size cap.
//
// A new revision (any spec change but replicas) replaces instances index by index; with
// free ports the new instance starts before the old one stops, so a workload that has a
// ready instance keeps one throughout. Status lists each live instance with its port,
// pid, readiness, restarts and revision, and conditions Available, Progressing and
// Ready, whose reasons name a failure: CommandNotFound, WorkingDirNotFound,
// StartFailed, CrashLoop, InvalidSpec.
package workload
