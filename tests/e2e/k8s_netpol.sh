#!/usr/bin/env bash
# NetworkPolicy checks for the recette namespace: NS IMAGE.
# With an enforcer, a pod of another namespace cannot reach the API on 8000 nor 9000, and a
# monitoring-labelled namespace reaches 9000. Without one, says "accepted, not enforced".
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"
NS=$1 IMAGE=$2
k() { "$DP_ROOT/hack/tools/kubectl" "$@"; }

count=$(k -n "$NS" get networkpolicy -o name | wc -l)
((count >= 4)) || die "expected the recette NetworkPolicies in $NS, found $count"

enforcer=${E2E_NETPOL_ENFORCER:-}
if [[ -z $enforcer ]]; then
  enforcer=$(k get pods -A -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' |
    grep -m1 -oE '^(kube-network-policies|calico-node|cilium|kube-router|antrea-agent)' || true)
fi
if [[ -z $enforcer ]]; then
  echo "NetworkPolicies: $count accepted, not enforced (no enforcer runs in this cluster)"
  exit 0
fi
echo "NetworkPolicies: $count accepted; enforcer: $enforcer"

api_ip=$(k -n "$NS" get pods -l app.kubernetes.io/name=datapress-api -o jsonpath='{.items[0].status.podIP}')
[[ -n $api_ip ]] || die "no API pod IP"

# Runs `datapress-api healthcheck --url URL` in a throwaway pod of namespace PNS; prints its phase.
probe() {
  local pns=$1 url=$2 name="probe-$RANDOM"
  k -n "$pns" apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $name}
spec:
  restartPolicy: Never
  automountServiceAccountToken: false
  securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: probe
      image: $IMAGE
      imagePullPolicy: IfNotPresent
      args: [healthcheck, --url, "$url"]
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
YAML
  local phase="" deadline=$((SECONDS + 60))
  while ((SECONDS < deadline)); do
    phase=$(k -n "$pns" get pod "$name" -o jsonpath='{.status.phase}')
    [[ $phase == Succeeded || $phase == Failed ]] && break
    sleep 1
  done
  k -n "$pns" delete pod "$name" --wait=false >/dev/null
  echo "$phase"
}

outsider=datapress-e2e-outsider monitoring=datapress-e2e-monitoring
k create namespace "$outsider" --dry-run=client -o yaml | k apply -f - >/dev/null
k create namespace "$monitoring" --dry-run=client -o yaml | k apply -f - >/dev/null
k label namespace "$monitoring" datapress.io/monitoring=true --overwrite >/dev/null
trap 'k delete namespace "$outsider" "$monitoring" --wait=false >/dev/null 2>&1 || true' EXIT

rc=0
check() {
  local want=$1 pns=$2 url=$3 what=$4 got
  got=$(probe "$pns" "$url")
  if [[ $got == "$want" ]]; then echo "ok   $what"; else echo "FAIL $what (pod phase $got, wanted $want)"; rc=1; fi
}
check Failed "$outsider" "http://$api_ip:8000/health" "another namespace cannot reach the API on 8000"
check Failed "$outsider" "http://$api_ip:9000/metrics" "another namespace cannot reach metrics on 9000"
check Succeeded "$monitoring" "http://$api_ip:9000/metrics" "a monitoring-labelled namespace reaches metrics on 9000"
echo "ok   the front reaches the API on 8000 (proven by the NodePort checks through the front)"
exit $rc
