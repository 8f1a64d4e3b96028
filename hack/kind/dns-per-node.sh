#!/usr/bin/env bash
# The cluster's DNS must outlive a node, as recette does: kubeadm's two CoreDNS replicas only
# prefer distinct nodes (both start on whichever node is Ready first) and stay bound to a lost
# node for 300 s. A front pod started meanwhile cannot resolve the API's Service and NGINX
# exits ("host not found in upstream"): CrashLoopBackOff. This requires distinct nodes and
# replaces a lost node's replica after 10 s (kustomize/overlays/recette/node-failure-tolerations.yaml).
# Usage: hack/kind/dns-per-node.sh KUBECONFIG   (hack/kind/up.sh, scripts/ci/kind.sh)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../../scripts/lib.sh"

kubeconfig=${1:?usage: hack/kind/dns-per-node.sh KUBECONFIG}
k() { "$DP_ROOT/hack/tools/kubectl" --kubeconfig "$kubeconfig" -n kube-system "$@"; }
patch=$(k get deployment coredns -o json | python3 -c '
import json, sys
spec = json.load(sys.stdin)["spec"]["template"]["spec"]
lost = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")
tolerations = [t for t in spec.get("tolerations", []) if t.get("key") not in lost]
tolerations += [{"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 10} for k in lost]
apart = [{"labelSelector": {"matchLabels": {"k8s-app": "kube-dns"}}, "topologyKey": "kubernetes.io/hostname"}]
print(json.dumps({"spec": {"template": {"spec": {"tolerations": tolerations,
    "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": apart}}}}}}))')
k patch deployment coredns --type merge -p "$patch" >/dev/null
k rollout status deployment/coredns --timeout=300s >&2
