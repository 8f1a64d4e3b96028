#!/usr/bin/env bash
# The troubleshooting procedures of docs/exploitation.md (sections 10 to 12), replayed on recette:
# each failure is provoked, recognised by the signs the runbook gives, then repaired by its
# correction, as the namespace's admin (the role the team holds) except where the runbook says.
#   10. a missing ConfigMap: a new API pod in CreateContainerConfigError, the Event names the
#       ConfigMap, the other pod still serves; `kubectl apply -k` brings it back;
#   11. the quota exhausted: the ReplicaSet's FailedCreate Event says `exceeded quota`, no pod
#       beyond the quota exists; `kubectl apply -k` restores the overlay's replicas;
#   12. `kubectl debug` of a pod without shell: an ephemeral container with --profile=restricted
#       runs (the API image's HTTP client, no tools image offline); the legacy profile is
#       refused by Pod Security, and the namespace admin may not add one (RBAC).
# Usage: tests/e2e/k8s_runbooks.sh NAMESPACE OVERLAY BASE_URL IMAGE   (KUBECONFIG set; called by k8s.sh)
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"

NS=$1 OVERLAY=$2 BASE=$3 IMAGE=$4
AS=(--as="system:serviceaccount:$NS:e2e-deployer") # the namespace admin of tests/e2e/k8s.sh
k() { "$DP_ROOT/hack/tools/kubectl" "$@"; }
kn() { k -n "$NS" "${AS[@]}" "$@"; }
fail() { printf '\033[1;31mFAIL: %s\033[0m\n' "$*" >&2; exit 1; }
ok() { printf '\033[1;32mok\033[0m   %s\n' "$*" >&2; }
API_SEL=app.kubernetes.io/name=datapress-api

# until SECONDS CMD...: CMD succeeds within SECONDS (polled every second), else returns 1.
until_ok() {
  local deadline=$((SECONDS + $1)); shift
  until "$@"; do ((SECONDS < deadline)) || return 1; sleep 1; done
}
serves() { curl -fsS --max-time 3 "$BASE/api/health" >/dev/null; }
ready_api() { # the number of Ready, not terminating API pods
  kn get pods -l "$API_SEL" -o jsonpath='{range .items[*]}{.metadata.deletionTimestamp}{"|"}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^|True$' || true
}
two_ready() { [[ $(ready_api) == 2 ]]; }
api_pods() { kn get pods -l "$API_SEL" --no-headers | grep -c . || true; }
only_two() { [[ $(api_pods) == 2 ]]; }
restore() { # the overlay as the repository describes it: 2 Ready API pods, and no other left
  kn apply -k "$OVERLAY" >/dev/null
  until_ok 180 two_ready && until_ok 120 only_two
}

# --- 10. CreateContainerConfigError
cm=$(kn get deployment datapress-api -o jsonpath='{.spec.template.spec.containers[0].envFrom[0].configMapRef.name}')
[[ -n $cm ]] || fail "runbook 10: the API Deployment reads no ConfigMap through envFrom"
victim=$(kn get pods -l "$API_SEL" -o jsonpath='{.items[0].metadata.name}')
kn delete configmap "$cm" >/dev/null
kn delete pod "$victim" --wait=false >/dev/null
stuck() {
  kn get pods -l "$API_SEL" -o jsonpath='{range .items[*]}{.metadata.name} {.status.containerStatuses[0].state.waiting.reason}{"\n"}{end}' |
    awk '$2 == "CreateContainerConfigError" {print $1; exit}'
}
has_stuck() { [[ -n $(stuck) ]]; }
until_ok 90 has_stuck || fail "runbook 10: no API pod in CreateContainerConfigError after deleting $cm"
pod=$(stuck)
names_the_configmap() {
  kn get events --field-selector "involvedObject.name=$pod" -o jsonpath='{.items[*].message}' | grep -q "configmap \"$cm\" not found"
}
until_ok 30 names_the_configmap ||
  fail "runbook 10: the Events of $pod do not say configmap \"$cm\" not found"
serves || fail "runbook 10: recette stopped serving while one API pod was stuck"
restore || fail "runbook 10: after kubectl apply -k, the API did not get back to 2 Ready pods"
ok "runbook 10: CreateContainerConfigError recognised (Event: configmap \"$cm\" not found), recette kept serving, repaired by kubectl apply -k"

# --- 11. quota exhausted
hard=$(kn get resourcequota datapress-quota -o jsonpath='{.spec.hard.pods}')
[[ $hard =~ ^[0-9]+$ ]] || fail "runbook 11: no pods quota in datapress-quota"
since=$(date -u +%Y-%m-%dT%H:%M:%SZ) # Events of this run only (a cluster left running keeps older ones)
kn scale deployment/datapress-api --replicas=$((hard + 2)) >/dev/null
refused() {
  kn get events --field-selector reason=FailedCreate \
    -o jsonpath='{range .items[*]}{.lastTimestamp} {.involvedObject.kind} {.message}{"\n"}{end}' |
    awk -v since="$since" '$1 >= since && $2 == "ReplicaSet" && /exceeded quota: datapress-quota/ {found = 1} END {exit !found}'
}
until_ok 60 refused || fail "runbook 11: no FailedCreate 'exceeded quota: datapress-quota' Event on the ReplicaSet"
pods=$(kn get pods --no-headers | grep -c . || true)
((pods <= hard)) || fail "runbook 11: $pods pods in $NS, above the quota of $hard"
serves || fail "runbook 11: recette stopped serving at the quota"
restore || fail "runbook 11: after kubectl apply -k, the API did not get back to 2 Ready pods"
ok "runbook 11: quota refusal recognised (FailedCreate 'exceeded quota' on the ReplicaSet, $pods pods ≤ $hard), repaired by kubectl apply -k"

# --- 12. kubectl debug of a pod without shell. Adding an ephemeral container takes `patch` on
# pods/ephemeralcontainers, which the namespace's admin role does not grant (RBAC): the cluster
# administrator's identity here, as the runbook says.
pod=$(kn get pods -l "$API_SEL" -o jsonpath='{.items[0].metadata.name}')
debug() { k -n "$NS" debug "$pod" --image="$IMAGE" --image-pull-policy=IfNotPresent "$@"; }
if out=$(kn debug "$pod" --image="$IMAGE" --profile=restricted --container=debug-admin -- /usr/bin/datapress-api --version 2>&1); then
  fail "runbook 12: the namespace admin may add an ephemeral container (the runbook says it may not)"
fi
grep -q 'cannot patch resource "pods/ephemeralcontainers"' <<<"$out" ||
  fail "runbook 12: the namespace admin was refused kubectl debug, but not by RBAC: $out"
if out=$(debug --profile=legacy --container=debug-legacy -- /usr/bin/datapress-api --version 2>&1); then
  fail "runbook 12: kubectl debug with the legacy profile was admitted in a restricted namespace"
fi
grep -q 'violates PodSecurity' <<<"$out" || fail "runbook 12: the legacy profile was refused, but not by Pod Security: $out"
debug --container=debug --target=api --profile=restricted \
  -- /usr/bin/datapress-api healthcheck --url http://127.0.0.1:8000/ready >/dev/null ||
  fail "runbook 12: kubectl debug --profile=restricted was refused"
exit_code() { k -n "$NS" get pod "$pod" -o jsonpath='{.status.ephemeralContainerStatuses[?(@.name=="debug")].state.terminated.exitCode}'; }
ended() { [[ -n $(exit_code) ]]; }
until_ok 60 ended || fail "runbook 12: the ephemeral container did not run to its end"
[[ $(exit_code) == 0 ]] || fail "runbook 12: the ephemeral container's request to the API failed (exit $(exit_code))"
ok "runbook 12: kubectl debug --profile=restricted ran in $pod (GET /ready from inside the pod: 200); refused to the namespace admin (RBAC) and with the legacy profile (Pod Security)"
