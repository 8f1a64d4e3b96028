#!/usr/bin/env bash
# NetworkPolicy isolation of recette: NS IMAGE. Every path prints its expected and observed
# result and any mismatch fails; each denied path has an allowed control, so a cluster that
# drops everything fails too. On the project's cluster the enforcer (kube-router) must run:
# "not enforced" is a failure. On a KUBECONFIG cluster without a known enforcer: SKIPPED (77),
# before any check.
# `k8s_netpol.sh --enforcer` only names the enforcer (exit 0), or prints why there is none
# (exit 3), so that a suite can skip from its own preconditions; "not enforced" on the
# project's cluster still fails (exit 1).
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"
# shellcheck source=hack/cluster/env.sh
. "$DP_ROOT/hack/cluster/env.sh"
enforcer_only=0
[[ ${1:-} == --enforcer ]] && { enforcer_only=1; shift; }
((enforcer_only)) || (($# == 2)) || die "usage: $0 NAMESPACE API_IMAGE | $0 --enforcer"
NS=${1:-} IMAGE=${2:-}
export KUBECONFIG=${KUBECONFIG:-$KUBECONFIG_ADMIN}
k() { "$DP_ROOT/hack/tools/kubectl" "$@"; }
NODEPORT=${E2E_NODEPORT:-30080}
MONITORING_LABEL=datapress.io/monitoring=true # the label the datapress-api policy admits on 9000
# Names of this run only: a previous run's namespaces may still be terminating.
run=$(date +%s)-$$
OUTSIDER=netpol-outsider-$run MONITORING=netpol-monitoring-$run BYSTANDER=netpol-bystander-$run

# --- Which enforcer? Found, never assumed.
project=0
[[ $(realpath -m "$KUBECONFIG") == "$(realpath -m "$KUBECONFIG_ADMIN")" ]] && project=1
if ((project)); then
  [[ $(id -u) == 0 ]] || die "NetworkPolicies: the project's cluster runs its enforcer on the host; run as root to check it"
  if ! netpol_enforcer_running; then
    why="its process is not running"
    if pid_alive kube-router; then why="its chains are not hooked into INPUT/FORWARD/OUTPUT"; fi
    die "NetworkPolicies NOT ENFORCED on the project's cluster: kube-router: $why (log: $CLUSTER_DIR/logs/kube-router.log)"
  fi
  enforcer="kube-router $(cat "$K8S_BIN/kube-router.version") (host process $(proc_pid kube-router), chains KUBE-ROUTER-* hooked)"
elif [[ -n ${E2E_NETPOL_ENFORCER:-} ]]; then
  enforcer="$E2E_NETPOL_ENFORCER (declared by E2E_NETPOL_ENFORCER)"
else
  enforcer=$(k get pods -A --field-selector=status.phase=Running -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' |
    grep -m1 -oE '^(kube-router|calico-node|cilium|antrea-agent|kube-network-policies)' || true)
  if [[ -z $enforcer ]]; then
    none="NetworkPolicies: no enforcer in the cluster of $KUBECONFIG (no kube-router, calico-node, cilium, antrea-agent or kube-network-policies pod Running); declare one with E2E_NETPOL_ENFORCER"
    if ((enforcer_only)); then echo "$none"; exit 3; fi
    skip "$none"
  fi
  enforcer="$enforcer (pod Running)"
fi
if ((enforcer_only)); then echo "$enforcer"; exit 0; fi
# Pod-to-node traffic (the kubelet, the API server behind its Service) is implementation-defined for
# NetworkPolicy: judged where the enforcer is known to filter it (kube-router does, in its INPUT chain).
node_egress=${E2E_NETPOL_NODE_EGRESS:-$project}
echo "NetworkPolicies in $NS: $(k -n "$NS" get networkpolicy -o jsonpath='{.items[*].metadata.name}'); enforcer: $enforcer"

# --- Clients: the image's own HTTP client (no shell in the images), from pods placed where each path starts.
cleanup() {
  k delete namespace "$OUTSIDER" "$MONITORING" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  k -n "$NS" delete pod "$BYSTANDER" --ignore-not-found --wait=false >/dev/null 2>&1 || true
}
trap cleanup EXIT
client_pod() { # client_pod NAME: a restricted-compliant pod serving the API image on 8000
  cat <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $1, labels: {app.kubernetes.io/name: netpol-e2e}}
spec:
  automountServiceAccountToken: false
  enableServiceLinks: false
  terminationGracePeriodSeconds: 1
  securityContext: {runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: {type: RuntimeDefault}}
  containers:
    - name: client
      image: $IMAGE
      imagePullPolicy: IfNotPresent
      env: [{name: APP_ENV, value: netpol-e2e}]
      ports: [{containerPort: 8000, name: http}]
      readinessProbe: {httpGet: {path: /ready, port: http}, periodSeconds: 1}
      resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {memory: 64Mi}}
      securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
      volumeMounts: [{name: tmp, mountPath: /tmp}]
  volumes: [{name: tmp, emptyDir: {sizeLimit: 16Mi}}]
YAML
}
for ns in "$OUTSIDER" "$MONITORING"; do k create namespace "$ns" --dry-run=client -o yaml | k apply -f - >/dev/null; done
k label namespace "$MONITORING" "$MONITORING_LABEL" --overwrite >/dev/null
client_pod client | k -n "$OUTSIDER" apply -f - >/dev/null
client_pod client | k -n "$MONITORING" apply -f - >/dev/null
# A recette pod that no allow policy selects: only default-deny keeps others out of it.
client_pod "$BYSTANDER" | k -n "$NS" apply -f - >/dev/null
k -n "$OUTSIDER" wait --for=condition=Ready pod/client --timeout=120s >/dev/null
k -n "$MONITORING" wait --for=condition=Ready pod/client --timeout=120s >/dev/null
k -n "$NS" wait --for=condition=Ready "pod/$BYSTANDER" --timeout=120s >/dev/null

pods() { k -n "$NS" get pods -l "app.kubernetes.io/name=$1" --field-selector=status.phase=Running -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}'; }
pod_ip() { k -n "$1" get pod "$2" -o jsonpath='{.status.podIP}'; }
mapfile -t api_pods < <(pods datapress-api)
mapfile -t front_pods < <(pods datapress-front)
((${#api_pods[@]} && ${#front_pods[@]})) || die "no Running API or front pod in $NS"
api_ip=$(pod_ip "$NS" "${api_pods[0]}")
front_ip=$(pod_ip "$NS" "${front_pods[0]}")
bystander_ip=$(pod_ip "$NS" "$BYSTANDER")
dns_ip=$(k -n kube-system get pods -l k8s-app=kube-dns -o jsonpath='{.items[0].status.podIP}')
node_ip=$(k get nodes -o jsonpath='{.items[0].status.addresses[?(@.type=="InternalIP")].address}')
[[ -n $api_ip && -n $front_ip && -n $bystander_ip && -n $dns_ip && -n $node_ip ]] || die "missing a pod or node address"

# --- The enforcer has programmed the current pods and policies before anything is judged.
if ((project)); then
  # Every pod involved has its kube-router chain, and the recette pods' chains run through
  # exactly the namespace's policies (no stale one, none missing).
  kube_router_synced() {
    local rules chain p want got=""
    rules=$(iptables -t filter -S) || return 1
    want=$(k -n "$NS" get networkpolicy -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort -u)
    for p in "$@"; do
      chain=$(grep -oE "POD name:${p#*/} namespace: ${p%/*} to chain KUBE-POD-FW-[A-Z0-9]+" <<<"$rules" | head -n1) || return 1
      chain=${chain##* }
      [[ ${p%/*} == "$NS" ]] || continue
      got+=$(grep -E "^-A $chain .*--comment \"run through nw policy " <<<"$rules" | sed -E 's/.*run through nw policy ([^"]*)".*/\1/')$'\n'
    done
    [[ $(sort -u <<<"$got" | sed '/^$/d') == "$want" ]]
  }
  involved=("$OUTSIDER/client" "$MONITORING/client" "$NS/$BYSTANDER")
  for p in "${api_pods[@]}" "${front_pods[@]}"; do involved+=("$NS/$p"); done
  deadline=$((SECONDS + 60))
  until kube_router_synced "${involved[@]}"; do
    ((SECONDS < deadline)) || { warn "kube-router has not programmed every pod and policy after 60 s: judging what is in place"; break; }
    sleep 1
  done
else
  sleep "${E2E_NETPOL_SETTLE:-5}" # the enforcer's informers see the new pods
fi

# --- Paths
# observe NS POD URL: what the image's HTTP client sees from POD (HTTP any status = the path is open).
observe() {
  local out rc=0
  out=$(k -n "$1" exec "$2" -- /usr/bin/datapress-api healthcheck --url "$3" 2>&1) || rc=$?
  if ((rc == 0)); then echo "allowed (HTTP 2xx)"; return; fi
  case $out in
    *"datapress-api: healthcheck "*"unhealthy: HTTP "*) echo "allowed (HTTP $(grep -oE 'HTTP [0-9]+' <<<"$out" | head -n1 | cut -d' ' -f2))" ;;
    *"datapress-api: healthcheck "*"malformed HTTP response"*) echo "allowed (connected, not HTTP)" ;;
    *"datapress-api: healthcheck "*"cannot resolve"*) echo "unresolved (DNS)" ;;
    *"datapress-api: healthcheck "*"Connection refused"*) echo "denied (connection refused)" ;;
    *"datapress-api: healthcheck "*"no answer within"*) echo "denied (timeout)" ;;
    *"datapress-api: healthcheck "*"unreachable"* | *"No route to host"*) echo "denied (unreachable)" ;;
    *) echo "error: $(tr '\n' ' ' <<<"$out")" ;;
  esac
}
failures=0 total=0
verdict() { # verdict EXPECTED OBSERVED LABEL
  local mark="ok  "
  total=$((total + 1))
  [[ $2 == "$1"* ]] || { mark=FAIL; failures=$((failures + 1)); }
  printf '%s %-64s expected %-8s observed %s\n' "$mark" "$3" "$1" "$2"
}
path() { verdict "$1" "$(observe "$2" "$3" "$4")" "$5"; } # path EXPECTED NS POD URL LABEL
# dns_path NS POD URL LABEL: the name in URL resolves (the connection itself is judged elsewhere).
dns_path() {
  local got; got=$(observe "$1" "$2" "$3")
  case $got in unresolved*) ;; error:*) ;; *) got="resolved (then $got)" ;; esac
  verdict resolved "$got" "$4"
}
api_svc="datapress-api.$NS.svc.cluster.local"
f=${front_pods[0]}

echo "-- ingress to the API"
path denied "$OUTSIDER" client "http://$api_svc/health" "other namespace -> API Service"
path denied "$OUTSIDER" client "http://$api_ip:8000/health" "other namespace -> API pod :8000"
path denied "$OUTSIDER" client "http://$api_ip:9000/metrics" "other namespace -> API pod :9000"
for p in "${front_pods[@]}"; do
  path allowed "$NS" "$p" "http://datapress-api/health" "front $p -> API Service"
done
path allowed "$NS" "$f" "http://$api_ip:8000/health" "front -> API pod :8000"
path allowed "$MONITORING" client "http://$api_ip:9000/metrics" "monitoring namespace -> API pod :9000"
path denied "$MONITORING" client "http://$api_ip:8000/health" "monitoring namespace -> API pod :8000"

echo "-- default deny in $NS"
path denied "$OUTSIDER" client "http://$bystander_ip:8000/health" "other namespace -> recette pod no policy allows"
path allowed "$NS" "$BYSTANDER" "http://$bystander_ip:8000/health" "that pod -> itself (it listens)"

echo "-- egress from the API (only DNS)"
for p in "${api_pods[@]}"; do
  dns_path "$NS" "$p" "http://datapress-front.$NS.svc.cluster.local/healthz" "API $p -> DNS"
  path denied "$NS" "$p" "http://datapress-front.$NS.svc.cluster.local/healthz" "API $p -> front Service"
  path denied "$NS" "$p" "http://$front_ip:8080/healthz" "API $p -> front pod :8080"
  path denied "$NS" "$p" "http://$dns_ip:8080/health" "API $p -> DNS pod, non-DNS port :8080"
  if ((node_egress)); then
    path denied "$NS" "$p" "http://kubernetes.default.svc.cluster.local:443/" "API $p -> Kubernetes API"
    path denied "$NS" "$p" "http://$node_ip:10250/" "API $p -> node (kubelet :10250)"
  fi
done
echo "-- the same destinations are open to a pod without policies (controls)"
path allowed "$OUTSIDER" client "http://$front_ip:8080/healthz" "other namespace -> front pod :8080"
path allowed "$OUTSIDER" client "http://$dns_ip:8080/health" "other namespace -> DNS pod :8080"
if ((node_egress)); then
  path allowed "$OUTSIDER" client "http://kubernetes.default.svc.cluster.local:443/" "other namespace -> Kubernetes API"
  path allowed "$OUTSIDER" client "http://$node_ip:10250/" "other namespace -> node (kubelet :10250)"
else
  echo "not judged: API pods -> node and Kubernetes API (pod-to-node egress is implementation-defined; E2E_NETPOL_NODE_EGRESS=1 judges it)"
fi

echo "-- DNS from the front, NodePort from the host"
for p in "${front_pods[@]}"; do
  dns_path "$NS" "$p" "http://$api_svc/health" "front $p -> DNS"
done
if curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$NODEPORT/healthz" 2>/dev/null; then got="allowed (HTTP 2xx)"; else got="denied (curl exit $?)"; fi
verdict allowed "$got" "host -> NodePort $NODEPORT"

((failures == 0)) || die "NetworkPolicies: $failures of $total paths not as expected"
echo "NetworkPolicies: all $total paths as expected (enforcer: $enforcer)"
