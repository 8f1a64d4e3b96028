#!/usr/bin/env bash
# Deletes the application's old kustomize-generated ConfigMaps and Secrets: every change of a
# generated value creates a new hashed name (datapress-config-<hash>, ...) and the old ones
# stay, until the namespace's quota (30 ConfigMaps, 30 Secrets in recette) refuses the next
# deployment. Kept: whatever a Deployment, a ReplicaSet (the revision history, so that
# `kubectl rollout undo` still finds its objects), a Pod or a ServiceAccount (pull secrets) of
# the namespace references, through volumes (projected sources included), envFrom, env
# valueFrom or imagePullSecrets.
# Candidates: only objects labelled app.kubernetes.io/part-of=datapress (the base and overlays
# put it on everything they render) whose name ends with a kustomize hash suffix; anything
# else (kube-root-ca.crt, service-account tokens, objects created by hand) is never touched.
# Prints one line per candidate: `keep KIND/NAME (by ...)` or `delete KIND/NAME`. Idempotent.
# Run it only after a successful rollout (scripts/deploy-recette.sh does), never while another
# `kubectl apply` runs: an object created between the two listings below could be taken as unused.
#
# Usage: scripts/prune-config.sh [--dry-run] NAMESPACE
# Env:   KUBECTL  the kubectl to use (default: the project's, hack/tools/kubectl); KUBECONFIG.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

dry_run=false
if [[ ${1:-} == --dry-run ]]; then dry_run=true; shift; fi
(($# == 1)) || die "usage: $0 [--dry-run] NAMESPACE"
ns=$1
KUBECTL=${KUBECTL:-$DP_ROOT/hack/tools/kubectl}
k() { "$KUBECTL" -n "$ns" "$@"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Candidates first, then what references them: an object listed here is then either seen
# referenced by the workloads listed after it, or it is unused.
k get configmaps,secrets -l app.kubernetes.io/part-of=datapress -o json >"$work/candidates.json"
k get deployments,replicasets,pods,serviceaccounts -o json >"$work/users.json"

python3 - "$work/candidates.json" "$work/users.json" >"$work/plan.txt" <<'PY'
import json, re, sys

candidates = json.load(open(sys.argv[1]))["items"]
users = json.load(open(sys.argv[2]))["items"]
# kustomize's name suffix: 10 characters of its hash alphabet (api/hasher: hex digits mapped
# to consonants and digits, no vowels).
HASHED = re.compile(r"^[a-z0-9][a-z0-9.-]*-[bcdfghkmt2456789]{10}$")


def references(spec):
    """(kind, name) of every ConfigMap and Secret a pod spec names, wherever it names them."""
    found = set()

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        for key, value in node.items():
            low = key.lower()
            if key == "imagePullSecrets" and isinstance(value, list):
                found.update(("secret", s["name"]) for s in value if isinstance(s, dict) and s.get("name"))
            elif isinstance(value, dict) and "configmap" in low and value.get("name"):
                # volumes[].configMap, projected sources[].configMap, envFrom[].configMapRef,
                # env[].valueFrom.configMapKeyRef
                found.add(("configmap", value["name"]))
            elif isinstance(value, dict) and "secret" in low:
                # volumes[].secret.secretName, projected sources[].secret.name, envFrom[].secretRef,
                # env[].valueFrom.secretKeyRef, csi.nodePublishSecretRef, ...
                for field in ("secretName", "name"):
                    if value.get(field):
                        found.add(("secret", value[field]))
            elif key == "secretName" and isinstance(value, str):
                found.add(("secret", value))
            walk(value)

    walk(spec)
    return found


used = {}
for obj in users:
    kind = obj["kind"]
    if kind == "ServiceAccount":
        spec = {"imagePullSecrets": obj.get("imagePullSecrets", []), "secrets": obj.get("secrets", [])}
        refs = references(spec) | {("secret", s["name"]) for s in obj.get("secrets") or [] if s.get("name")}
    elif kind == "Pod":
        refs = references(obj.get("spec", {}))
    else:  # Deployment, ReplicaSet
        refs = references(obj.get("spec", {}).get("template", {}).get("spec", {}))
    for ref in refs:
        used.setdefault(ref, []).append(f"{kind.lower()}/{obj['metadata']['name']}")

for obj in sorted(candidates, key=lambda o: (o["kind"], o["metadata"]["name"])):
    kind, name = obj["kind"].lower(), obj["metadata"]["name"]
    labels = obj["metadata"].get("labels") or {}
    if labels.get("app.kubernetes.io/part-of") != "datapress" or not HASHED.match(name):
        continue
    by = used.get((kind, name))
    if by:
        shown = ", ".join(sorted(by)[:3]) + (f" and {len(by) - 3} more" if len(by) > 3 else "")
        print(f"keep\t{kind}\t{name}\t{shown}")
    else:
        print(f"delete\t{kind}\t{name}\t")
PY

declare -A doomed=()
while IFS=$'\t' read -r action kind name by; do
  case $action in
    keep) echo "keep   $kind/$name (used by $by)" ;;
    delete)
      echo "delete $kind/$name"
      doomed[$kind]+=" $name" ;;
  esac
done <"$work/plan.txt"

n_keep=$(awk '$1 == "keep"' "$work/plan.txt" | wc -l)
n_delete=$(awk '$1 == "delete"' "$work/plan.txt" | wc -l)
if $dry_run; then
  log "prune-config: $ns: $n_delete to delete, $n_keep kept (dry run: nothing deleted)"
  exit 0
fi
for kind in "${!doomed[@]}"; do
  # shellcheck disable=SC2086 # one word per name
  k delete "$kind" ${doomed[$kind]} --ignore-not-found >/dev/null
done
log "prune-config: $ns: $n_delete deleted, $n_keep kept"
