#!/usr/bin/env bash
# Replicas of each recette Deployment run on different nodes when the cluster has several
# schedulable ones (the topology spread of kustomize/base); on one node, says so.
# Usage: tests/e2e/k8s_spread.sh NS DEPLOYMENT...
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"
NS=$1; shift
k() { "$DP_ROOT/hack/tools/kubectl" "$@"; }

# Nodes a recette pod may land on: Ready, and no NoSchedule/NoExecute taint (cordoned, control plane).
schedulable=$(k get nodes -o json | python3 -c '
import json, sys
for n in json.load(sys.stdin)["items"]:
    ready = any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])
    tainted = any(t["effect"] in ("NoSchedule", "NoExecute") for t in n["spec"].get("taints", []))
    if ready and not tainted and not n["spec"].get("unschedulable"):
        print(n["metadata"]["name"])')
count=$(grep -c . <<<"$schedulable" || true)
rc=0
for d in "$@"; do
  sel=$(k -n "$NS" get deployment "$d" -o jsonpath='{.spec.selector.matchLabels.app\.kubernetes\.io/name}')
  # Running pods that are not being deleted (a rollout's old pods linger in their grace period).
  nodes=$(k -n "$NS" get pods -l "app.kubernetes.io/name=$sel" -o json | python3 -c '
import json, sys
for p in json.load(sys.stdin)["items"]:
    if p["status"].get("phase") == "Running" and "deletionTimestamp" not in p["metadata"]:
        print(p["spec"]["nodeName"])' | sort)
  replicas=$(grep -c . <<<"$nodes" || true)
  distinct=$(sort -u <<<"$nodes" | grep -c . || true)
  want=$((replicas < count ? replicas : count))
  if ((count < 2)); then
    echo "info $d: $replicas replicas on $count schedulable node (spread needs two)"
  elif ((distinct == want)); then
    echo "ok   $d: $replicas replicas on $distinct nodes ($(sort -u <<<"$nodes" | xargs))"
  else
    echo "FAIL $d: $replicas replicas on $distinct node(s) ($(xargs <<<"$nodes")), $count schedulable"; rc=1
  fi
done
exit $rc
