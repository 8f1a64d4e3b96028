#!/usr/bin/env bash
# Suite `cluster`: on the real test cluster, the API image runs as a Pod behind a Service,
# pods resolve each other by DNS, a NodePort answers on 127.0.0.1, and PodSecurity
# "restricted" rejects a violating pod. Starts the cluster when none runs (and then stops
# it again, unless DATAPRESS_CLUSTER_KEEP=1: later suites such as e2e-k8s can reuse it);
# skips, saying why, when this machine cannot run it.
set -euo pipefail
# shellcheck source=hack/cluster/env.sh
. "$(dirname "$0")/env.sh"

IMAGE=${SMOKE_IMAGE:-datapress-api:$(workspace_version)}

# --- Can this machine run a cluster?
[[ $(id -u) == 0 ]] || skip "cluster: needs root (host processes: containerd, kubelet)"
[[ -d /sys/fs/cgroup ]] || skip "cluster: no cgroup filesystem"
ensure_go
# A cold build of every binary takes tens of minutes on 2 cores: DATAPRESS_K8S_BUILD=0 forbids
# it, and DATAPRESS_DEADLINE (epoch seconds) skips it when it would not finish in time.
cold_estimate=${DATAPRESS_K8S_COLD_BUILD_ESTIMATE:-1800}
if ! "$DP_ROOT/hack/tools/build-k8s.sh" --check >/dev/null 2>&1; then
  [[ ${DATAPRESS_K8S_BUILD:-1} != 0 ]] ||
    skip "cluster: Kubernetes binaries not cached in $K8S_BIN and DATAPRESS_K8S_BUILD=0 (cold build: tens of minutes)"
  if [[ -n ${DATAPRESS_DEADLINE:-} ]] && (($(date +%s) + cold_estimate > DATAPRESS_DEADLINE)); then
    skip_past_deadline "cluster: Kubernetes binaries not cached and a cold build (~${cold_estimate}s) would pass DATAPRESS_DEADLINE"
  fi
fi
(ensure_docker) || skip "cluster: the Docker engine cannot start here"
checks_started
if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "image $IMAGE missing: building it with images/build.sh"
  "$DP_ROOT/images/build.sh" || die "images/build.sh failed"
fi

# --- The cluster: reuse a running one, else start one for this run only.
started=0 ns="smoke-$$"
cleanup() {
  local rc=$?
  if ((started)) && [[ ${DATAPRESS_CLUSTER_KEEP:-0} != 1 ]]; then
    "$DP_ROOT/hack/cluster/down.sh" || rc=1
  elif [[ -f $KUBECONFIG_ADMIN ]]; then
    kc delete namespace "$ns" "$ns-open" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  fi
  exit "$rc"
}
trap cleanup EXIT
if ! cluster_ready; then
  started=1
  "$DP_ROOT/hack/cluster/up.sh"
  # Lets the e2e-k8s suite of `make test` stop the cluster that this run started.
  if [[ ${DATAPRESS_CLUSTER_KEEP:-0} == 1 ]]; then touch "$CLUSTER_DIR/started-for-tests"; fi
fi
"$DP_ROOT/hack/cluster/load-images.sh" "$IMAGE"

fail() { warn "$*"; kc -n "$ns" get pods,svc,endpointslices -o wide >&2 || true; kc -n "$ns" describe pods >&2 || true; die "$*"; }

# --- Workload: two pods of the API image (restricted-compliant), a Service, a NodePort, and a
# headless Service so each pod has its own DNS name.
log "deploying $IMAGE in namespace $ns (PodSecurity enforce=restricted)"
pod() { # pod NAME: a pod of the API image that satisfies the restricted profile
  cat <<EOF
apiVersion: v1
kind: Pod
metadata: { name: $1, labels: { app: smoke-api, member: $1 } }
spec:
  hostname: $1
  subdomain: peers
  automountServiceAccountToken: false
  securityContext:
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    seccompProfile: { type: RuntimeDefault }
  containers:
    - name: api
      image: $IMAGE
      imagePullPolicy: Never
      ports: [{ containerPort: 8000, name: http }]
      env: [{ name: APP_ENV, value: smoke }, { name: DATAPRESS_LOG_FORMAT, value: json }]
      readinessProbe: { httpGet: { path: /ready, port: http }, periodSeconds: 2 }
      securityContext:
        allowPrivilegeEscalation: false
        readOnlyRootFilesystem: true
        capabilities: { drop: [ALL] }
      volumeMounts: [{ name: tmp, mountPath: /tmp }]
  volumes: [{ name: tmp, emptyDir: {} }]
---
EOF
}
{
  cat <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: $ns
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
---
apiVersion: v1
kind: Service
metadata: { name: datapress-api }
spec:
  selector: { member: api }
  ports: [{ port: 80, targetPort: http }]
---
apiVersion: v1
kind: Service
metadata: { name: datapress-api-nodeport }
spec:
  type: NodePort
  selector: { member: api }
  ports: [{ port: 80, targetPort: http }]
---
apiVersion: v1
kind: Service
metadata: { name: peers }
spec:
  clusterIP: None
  selector: { app: smoke-api }
  ports: [{ port: 8000, name: http }]
---
EOF
  pod api
  pod client
} | kc -n "$ns" apply -f - >/dev/null

t0=$SECONDS
kc -n "$ns" wait --for=condition=Ready pod/api pod/client --timeout=120s >/dev/null || fail "pods not Ready within 120s"
log "pods Ready in $((SECONDS - t0))s"

# --- DNS: each pod reaches the other by name (the binary resolves through the pod's resolv.conf).
probe() { # probe POD URL: exit 0 iff the URL answers 2xx from inside POD, retried for 30 s
  local i
  for ((i = 0; i < 15; i++)); do
    kc -n "$ns" exec "$1" -- /usr/bin/datapress-api healthcheck --url "$2" >/dev/null 2>&1 && { log "  $1 -> $2: ok"; return 0; }
    sleep 2
  done
  fail "$1 could not reach $2"
}
log "DNS and Services from inside the pods"
probe client http://datapress-api/health
probe client "http://datapress-api.$ns.svc.cluster.local/ready"
probe client http://api.peers:8000/health
probe api http://client.peers:8000/health

# --- NodePort on the loopback address (kube-proxy iptables mode).
node_port=$(kc -n "$ns" get svc datapress-api-nodeport -o jsonpath='{.spec.ports[0].nodePort}')
log "NodePort $node_port on 127.0.0.1"
wait_http "http://127.0.0.1:$node_port/health" 30 || fail "NodePort $node_port does not answer on 127.0.0.1"
body=$(curl -fsS --max-time 5 "http://127.0.0.1:$node_port/")
grep -q '"service":"api"' <<<"$body" || fail "unexpected answer on the NodePort: $body"
grep -q '"env":"smoke"' <<<"$body" || fail "the NodePort answer does not come from the smoke pod: $body"
log "  GET / -> $body"

# --- PodSecurity: a root, privileged pod is refused where restricted is enforced...
log "PodSecurity: a violating pod must be rejected in $ns"
bad() {
  cat <<EOF
apiVersion: v1
kind: Pod
metadata: { name: violator }
spec:
  containers:
    - name: c
      image: $IMAGE
      imagePullPolicy: Never
      securityContext: { privileged: true, runAsUser: 0 }
EOF
}
if out=$(bad | kc -n "$ns" apply -f - 2>&1); then
  fail "a privileged pod was admitted in a restricted namespace: $out"
fi
grep -q 'violates PodSecurity "restricted:latest"' <<<"$out" || fail "rejected, but not by PodSecurity: $out"
log "  rejected: $(grep -o 'violates PodSecurity "[^"]*"' <<<"$out")"
# ...and the same pod is admitted where nothing is enforced (the rejection is the policy's).
kc create namespace "$ns-open" >/dev/null
bad | kc -n "$ns-open" apply --dry-run=server -f - >/dev/null || fail "the violating pod is refused even without enforcement"
log "  admitted (server dry-run) in a namespace without enforcement"

log "cluster smoke test passed"
