#!/usr/bin/env bash
# Proves the running three-node kind cluster (make cluster-up-3) works: three Ready nodes at
# K8S_VERSION, the project's images loaded on every node, pods on the two workers reaching
# each other and each other's Services by DNS, the front's NodePort on 127.0.0.1, and
# NetworkPolicies enforced by kube-router. Leaves nothing behind (its namespace is deleted).
set -euo pipefail
# shellcheck source=hack/kind/env.sh
. "$(dirname "$0")/env.sh"

VERSION=$(workspace_version)
IMAGES=("datapress-api:$VERSION" "datapress-front:$VERSION")
ns="kind-smoke-$$"
kind=$(kind_bin)
[[ -f $KIND_KUBECONFIG ]] || die "no kind cluster (run make cluster-up-3)"
ok() { printf '\033[1;32mok\033[0m   %s\n' "$*" >&2; }
fail() {
  warn "$*"
  kc3 -n "$ns" get pods,svc,networkpolicy -o wide >&2 || true
  kc3 -n "$ns" describe pods >&2 || true
  die "$*"
}
trap 'kc3 delete namespace "$ns" --ignore-not-found --wait=false >/dev/null 2>&1 || true' EXIT

# --- Nodes
mapfile -t nodes < <(kc3 get nodes -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
((${#nodes[@]} == 3)) || fail "expected 3 nodes, got ${#nodes[@]}: ${nodes[*]}"
for n in "${nodes[@]}"; do
  ready=$(kc3 get node "$n" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')
  kubelet=$(kc3 get node "$n" -o jsonpath='{.status.nodeInfo.kubeletVersion}')
  [[ $ready == True ]] || fail "node $n is not Ready"
  [[ $kubelet == "v$K8S_VER" ]] || fail "node $n runs kubelet $kubelet, K8S_VERSION says v$K8S_VER"
done
mapfile -t workers < <(kc3 get nodes -l '!node-role.kubernetes.io/control-plane' -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}')
((${#workers[@]} == 2)) || fail "expected 2 workers, got ${#workers[@]}"
ok "3 nodes Ready at v$K8S_VER: ${nodes[*]} (workers: ${workers[*]})"
bad=$(kc3 get pods -A --field-selector=status.phase!=Running,status.phase!=Succeeded -o name)
[[ -z $bad ]] || fail "system pods not running: $bad"
ok "kube-system: $(kc3 -n kube-system get pods --no-headers | wc -l) pods running (kube-router on each node, CoreDNS, control plane)"
# Losing a node must not take the cluster's DNS with it (hack/kind/up.sh): one CoreDNS per node.
dns=$(kc3 -n kube-system get deployment,pods -l k8s-app=kube-dns -o json | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
want = next(i["spec"]["replicas"] for i in items if i["kind"] == "Deployment")
nodes = [i["spec"].get("nodeName", "?") for i in items if i["kind"] == "Pod" and "deletionTimestamp" not in i["metadata"]]
print("ok" if want >= 2 and len(nodes) == want == len(set(nodes)) else "bad", want, " ".join(sorted(nodes)))')
[[ $dns == ok* ]] || fail "CoreDNS: want its replicas on as many nodes (replicas, then nodes): ${dns#* }"
ok "CoreDNS: one replica per node (replicas, then nodes: ${dns#* })"

# --- The project's images on every node
for img in "${IMAGES[@]}"; do
  docker image inspect "$img" >/dev/null 2>&1 || "$DP_ROOT/images/build.sh"
done
"$kind" load docker-image --name "$CLUSTER" "${IMAGES[@]}" >&2
for n in "${nodes[@]}"; do
  for img in "${IMAGES[@]}"; do
    "$KIND_PROVIDER" exec "$n" crictl inspecti "docker.io/library/$img" >/dev/null || fail "$img is not on node $n"
  done
done
ok "${IMAGES[*]} loaded on every node"

# --- One API pod per worker, a Service for each, a headless Service for pod names
pod() { # pod NAME NODE
  cat <<EOF
apiVersion: v1
kind: Pod
metadata: { name: $1, labels: { app: smoke, member: $1 } }
spec:
  hostname: $1
  subdomain: peers
  nodeSelector: { kubernetes.io/hostname: $2 }
  automountServiceAccountToken: false
  securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: RuntimeDefault } }
  containers:
    - name: api
      image: ${IMAGES[0]}
      imagePullPolicy: Never
      ports: [{ containerPort: 8000, name: http }]
      env: [{ name: APP_ENV, value: smoke-$1 }]
      readinessProbe: { httpGet: { path: /ready, port: http }, periodSeconds: 2 }
      securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: [ALL] } }
      volumeMounts: [{ name: tmp, mountPath: /tmp }]
  volumes: [{ name: tmp, emptyDir: {} }]
---
apiVersion: v1
kind: Service
metadata: { name: svc-$1 }
spec:
  selector: { member: $1 }
  ports: [{ port: 80, targetPort: http }]
---
EOF
}
{
  cat <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
  labels: { pod-security.kubernetes.io/enforce: restricted }
---
apiVersion: v1
kind: Service
metadata: { name: peers }
spec:
  clusterIP: None
  selector: { app: smoke }
  ports: [{ port: 8000, name: http }]
---
EOF
  pod a "${workers[0]}"
  pod b "${workers[1]}"
} | kc3 -n "$ns" apply -f - >/dev/null
kc3 -n "$ns" wait --for=condition=Ready pod/a pod/b --timeout=120s >/dev/null || fail "pods not Ready within 120s"
for p in a b; do
  ok "pod $p on $(kc3 -n "$ns" get pod "$p" -o jsonpath='{.spec.nodeName} ({.status.podIP})')"
done
ip_a=$(kc3 -n "$ns" get pod a -o jsonpath='{.status.podIP}') ip_b=$(kc3 -n "$ns" get pod b -o jsonpath='{.status.podIP}')

# reach FROM URL: 0 iff URL answers 2xx from inside pod FROM (the image's own client, 2 s timeout).
reach() { kc3 -n "$ns" exec "$1" -- /usr/bin/datapress-api healthcheck --url "$2" >/dev/null 2>&1; }
# expect yes|no FROM URL: a few tries, since routes, DNS records and firewall rules settle in seconds.
expect() {
  local want=$1 from=$2 url=$3 i got=no
  for ((i = 0; i < 10; i++)); do
    if reach "$from" "$url"; then got=yes; else got=no; fi
    [[ $got == "$want" ]] && break
    sleep 2
  done
  [[ $got == "$want" ]] || fail "$from -> $url: reachable=$got, expected $want"
  ok "$from -> $url: $([[ $want == yes ]] && echo reachable || echo blocked)"
}

# --- Pod to pod across nodes, Services across nodes, CoreDNS names
expect yes a "http://$ip_b:8000/health"
expect yes b "http://$ip_a:8000/health"
expect yes a "http://svc-b/health"
expect yes b "http://svc-a.$ns.svc.cluster.local/health"
expect yes a "http://b.peers:8000/health"
expect yes b "http://a.peers.$ns.svc.cluster.local:8000/health"

# --- The front's NodePort, published by the control-plane node on 127.0.0.1
if holder=$(kc3 get svc -A -o jsonpath='{range .items[?(@.spec.ports[0].nodePort==30080)]}{.metadata.namespace}/{.metadata.name}{end}') && [[ -n $holder ]]; then
  wait_http "http://127.0.0.1:$KIND_FRONT_PORT/healthz" 30 || fail "NodePort 30080 ($holder) does not answer on 127.0.0.1:$KIND_FRONT_PORT"
  ok "NodePort 30080 ($holder) answers on 127.0.0.1:$KIND_FRONT_PORT"
else
  kc3 -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: { name: nodeport-b }
spec:
  type: NodePort
  selector: { member: b }
  ports: [{ port: 80, targetPort: http, nodePort: 30080 }]
EOF
  wait_http "http://127.0.0.1:$KIND_FRONT_PORT/health" 30 || fail "NodePort 30080 does not answer on 127.0.0.1:$KIND_FRONT_PORT"
  body=$(curl -fsS --max-time 5 "http://127.0.0.1:$KIND_FRONT_PORT/")
  grep -q '"env":"smoke-b"' <<<"$body" || fail "127.0.0.1:$KIND_FRONT_PORT did not answer from pod b: $body"
  kc3 -n "$ns" delete svc nodeport-b >/dev/null
  ok "NodePort 30080 -> 127.0.0.1:$KIND_FRONT_PORT reaches pod b on ${workers[1]}"
fi

# --- NetworkPolicy: only pod a may reach pod b; pod b then blocks a and everything else.
kc3 -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: b-from-nobody }
spec:
  podSelector: { matchLabels: { member: b } }
  policyTypes: [Ingress]
EOF
expect no a "http://$ip_b:8000/health"
expect no a "http://svc-b/health"
expect yes b "http://$ip_a:8000/health"
kc3 -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: { name: b-from-a }
spec:
  podSelector: { matchLabels: { member: b } }
  policyTypes: [Ingress]
  ingress: [{ from: [{ podSelector: { matchLabels: { member: a } } }], ports: [{ port: 8000 }] }]
EOF
expect yes a "http://$ip_b:8000/health"
ok "NetworkPolicies enforced by kube-router across nodes (deny, then allow from pod a only)"
echo "kind smoke test passed"
