#!/usr/bin/env bash
# Suite `e2e-k8s` of `make test`: tests/e2e/k8s.sh on the project's test cluster, which the
# `cluster` suite leaves running for it (DATAPRESS_CLUSTER_KEEP=1); a cluster that suite
# started is stopped here afterwards; then tests/e2e/release-chain.sh (publish, sign, verify and
# deploy recette from a local registry by digest). With KUBECONFIG set, uses that cluster and
# leaves it be; the release chain is not run there (its nodes cannot pull from this host's
# 127.0.0.1 registry), and the suite says so.
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"
if [[ -n ${KUBECONFIG:-} ]]; then
  # A supplied cluster must enforce NetworkPolicies, or isolation cannot be proven there.
  rc=0 why=$("$DP_ROOT/tests/e2e/k8s_netpol.sh" --enforcer 2>&1) || rc=$?
  ((rc != 3)) || skip "e2e-k8s: $(tail -n1 <<<"$why") (set E2E_NETPOL_ENFORCER if it has one)"
  ((rc == 0)) || die "e2e-k8s: cannot tell which NetworkPolicy enforcer runs: $why"
  checks_started
  "$DP_ROOT/tests/e2e/k8s.sh"
  warn "release chain NOT RUN on a supplied cluster: its nodes cannot pull from this host's 127.0.0.1 registry"
  exit 0
fi

# shellcheck source=hack/cluster/env.sh
. "$DP_ROOT/hack/cluster/env.sh"
marker="$CLUSTER_DIR/started-for-tests"
if [[ -f $marker ]]; then
  trap 'rm -f "$marker"; "$DP_ROOT/hack/cluster/down.sh"' EXIT
fi
if ! cluster_ready; then
  skip "e2e-k8s: no test cluster is running (the cluster suite skipped or failed: see its result)"
fi
"$DP_ROOT/tests/e2e/k8s.sh"
"$DP_ROOT/tests/e2e/release-chain.sh"
