#!/usr/bin/env bash
# The whole three-node cycle with its evidence: host snapshot, cluster-up-3, the smoke proofs,
# recette end to end with the node cases (drain, node loss), cluster-down-3, host snapshot
# again; fails if any step fails or the host differs. Suite `nodes` of make test.
# Refuses to run over an existing kind cluster (it would not start from a clean host).
set -euo pipefail
# shellcheck source=hack/kind/env.sh
. "$(dirname "$0")/env.sh"

[[ $(id -u) == 0 ]] || skip "cluster3: needs root (host settings recorded and restored)"
# The whole cycle takes 5 min warm, up to 15 min with the node images to build (hack/kind/README.md).
estimate=${DATAPRESS_KIND_CYCLE_ESTIMATE:-900}
if [[ -n ${DATAPRESS_DEADLINE:-} ]] && (($(date +%s) + estimate > DATAPRESS_DEADLINE)); then
  skip_past_deadline "cluster3: the three-node cycle (up to ${estimate}s) would pass DATAPRESS_DEADLINE"
fi
ensure_docker
kind=$(kind_bin)
if grep -qx "$CLUSTER" <<<"$("$kind" get clusters 2>/dev/null)"; then die "kind cluster $CLUSTER already exists: make cluster-down-3 first"; fi
work="$DP_BUILD/kind-suite"
rm -rf "$work" && mkdir -p "$work"

# The project's single-node cluster may run meanwhile (its pods come and go): leave it out.
state_args=()
if [[ -d ${DATAPRESS_CLUSTER_DIR:-/var/lib/datapress-cluster} ]]; then
  log "the project's single-node cluster has state here: its own changes are left out of the comparison"
  state_args=(--ignore-project-cluster)
fi
# Packages are installed before the first snapshot: installing podman creates its default
# network, which is the machine's setup, not something cluster-down-3 should remove. up.sh
# picks the engine (podman where Docker cannot start a privileged container).
ensure_apt podman netavark aardvark-dns
"$DP_ROOT/hack/kind/host-state.sh" "${state_args[@]}" >"$work/host-before.txt"
t0=$SECONDS
down_done=0
cleanup() { ((down_done)) || "$DP_ROOT/hack/kind/down.sh" || true; }
trap cleanup EXIT
"$DP_ROOT/hack/kind/up.sh" >/dev/null
t_up=$((SECONDS - t0))
t1=$SECONDS
"$DP_ROOT/hack/kind/smoke.sh"
t_smoke=$((SECONDS - t1))
# Recette on three nodes, and what only several nodes can show: a drain, the loss of a node.
t3=$SECONDS
KUBECONFIG=$KIND_KUBECONFIG E2E_NODEPORT=$KIND_FRONT_PORT E2E_WORK_DIR="$DP_BUILD/e2e-nodes" \
  E2E_CASES="${E2E_CASES:-nodes}" E2E_SUMMARY_TITLE="Trois nœuds : un nœud vidé, puis un nœud arrêté net et son retour" \
  "$DP_ROOT/tests/e2e/k8s.sh"
t_e2e=$((SECONDS - t3))
t2=$SECONDS
down_done=1
"$DP_ROOT/hack/kind/down.sh"
t_down=$((SECONDS - t2))
"$DP_ROOT/hack/kind/host-state.sh" "${state_args[@]}" >"$work/host-after.txt"
if ! diff -u "$work/host-before.txt" "$work/host-after.txt" >"$work/host.diff"; then
  cat "$work/host.diff" >&2
  die "the host differs after cluster-down-3 (snapshots in $work)"
fi
log "host identical before cluster-up-3 and after cluster-down-3 ($(grep -vc '^##' "$work/host-before.txt") items compared)"
log "times: cluster-up-3 ${t_up}s, smoke ${t_smoke}s, e2e ${t_e2e}s, cluster-down-3 ${t_down}s"
