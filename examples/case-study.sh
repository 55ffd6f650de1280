#!/usr/bin/env bash
# The seed case study on the embedded default: start `canarymesh up` in a fresh data
# directory, apply the App Mesh tutorial's manifests in the tutorial's order, and show
# what the mesh holds — ending with the manual 90/10 canary route.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=$(mktemp -d)/canarymesh
go build -o "$bin" ./cmd/canarymesh
data=$(mktemp -d)
export CANARYMESH_DATA_DIR="$data"

"$bin" up --listen 127.0.0.1:0 2>"$data/up.log" &
up=$!
trap 'kill $up 2>/dev/null; wait $up 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  [ -s "$data/server" ] && "$bin" version >/dev/null 2>&1 && break
  sleep 0.1
done

step() { printf '\n== %s\n' "$*"; }
step "namespace and the app (Kubernetes kinds are skipped in standalone mode)"
"$bin" apply -f examples/case-study/inital_architecture
step "the mesh, virtual nodes and the virtual service with its router"
"$bin" apply -f examples/case-study/mesh_component
step "the canary: hello-v2 and the 90/10 route"
"$bin" apply -f examples/case-study/canary

sleep 1 # let the status reconciler report readiness
step "canarymesh get meshes"
"$bin" get meshes
step "canarymesh get virtualnodes -n case-study"
"$bin" get vn -n case-study
step "canarymesh get virtualservices -n case-study"
"$bin" get vs -n case-study
step "canarymesh get virtualrouters -n case-study"
"$bin" get vr -n case-study
