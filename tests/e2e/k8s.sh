#!/usr/bin/env bash
# Recette end-to-end on a real cluster (KUBECONFIG, or the project's own test cluster):
# load the images, apply the recette overlay, verify what it serves, then prove that
# four kinds of change drop no request under a steady load on the NodePort.
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"

NS=datapress-recette
OVERLAY="$DP_ROOT/kustomize/overlays/recette"
NODEPORT=${E2E_NODEPORT:-30080}
BASE="http://127.0.0.1:$NODEPORT"
RATE=${E2E_RATE:-50}
VERSION=$(workspace_version)
ROLL_TAG="$VERSION-rollout"
WORK="$DP_BUILD/e2e-k8s"
rm -rf "$WORK" && mkdir -p "$WORK"

# Default: the project's test cluster (make cluster-up).
KUBECONFIG=${KUBECONFIG:-${DATAPRESS_CLUSTER_DIR:-/var/lib/datapress-cluster}/kubeconfig/admin.conf}
[[ -f $KUBECONFIG ]] || die "no kubeconfig at $KUBECONFIG: set KUBECONFIG or run 'make cluster-up' first"
export KUBECONFIG
k() { "$DP_ROOT/hack/tools/kubectl" "$@"; }
k version >/dev/null 2>&1 || die "the cluster in $KUBECONFIG does not answer"

# A red run explains itself: cluster state and logs on any failure.
diagnostics() {
  local rc=$?
  ((rc == 0)) && return
  warn "e2e-k8s failed (exit $rc): diagnostics follow"
  k -n "$NS" get all,cm,secret,networkpolicy,pdb -o wide || true
  k -n "$NS" get events --sort-by=.lastTimestamp | tail -40 || true
  k -n "$NS" describe pods | tail -120 || true
  local p
  for p in $(k -n "$NS" get pods -o name 2>/dev/null); do
    echo "--- logs $p"; k -n "$NS" logs "$p" --all-containers --tail=30 || true
  done
}
trap diagnostics EXIT

step() { printf '\n\033[1;35m--- %s\033[0m\n' "$*" >&2; }
fail() { printf '\033[1;31mFAIL: %s\033[0m\n' "$*" >&2; exit 1; }
ok() { printf '\033[1;32mok\033[0m   %s\n' "$*" >&2; }

# --- 1. images: the offline-built ones, plus a second tag for the rolling update
load_images() {
  local loader=${E2E_IMAGE_LOADER:-auto}
  if [[ $loader == auto ]]; then
    if command -v kind >/dev/null && [[ $(k config current-context) == kind-* ]]; then loader=kind; else loader=project; fi
  fi
  case $loader in
    kind) local name; name=$(k config current-context); kind load docker-image --name "${name#kind-}" "$@" ;;
    project) "$DP_ROOT/hack/cluster/load-images.sh" "$@" ;;
    none) log "images expected to be in the cluster already: $*" ;;
    *) die "unknown E2E_IMAGE_LOADER=$loader (auto, kind, project, none)" ;;
  esac
}
step "images"
images=()
for img in datapress-api datapress-front; do
  docker image inspect "$img:$VERSION" >/dev/null 2>&1 || die "image $img:$VERSION is missing: run 'make images' first"
  docker tag "$img:$VERSION" "$img:$ROLL_TAG"
  images+=("$img:$VERSION" "$img:$ROLL_TAG")
done
load_images "${images[@]}"

# --- 2. deploy the recette overlay exactly as documented
step "kubectl apply -k kustomize/overlays/recette"
k apply -k "$OVERLAY"
k -n "$NS" rollout status deployment/datapress-api --timeout=180s
k -n "$NS" rollout status deployment/datapress-front --timeout=180s

# --- 3. what recette serves
step "checks"
ready=$(k -n "$NS" get pods -l app.kubernetes.io/name=datapress-api \
  -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True || true)
((ready == 2)) || fail "expected 2 Ready API pods, got $ready"
probe=$(k -n "$NS" get deployment datapress-api -o jsonpath='{.spec.template.spec.containers[0].readinessProbe.httpGet.path}')
[[ $probe == /ready ]] || fail "API readiness probe is $probe, not /ready"
ok "2 API pods Ready on /ready"

wait_http "$BASE/healthz" 60 || fail "front NodePort $NODEPORT does not answer on 127.0.0.1"
ok "front answers on NodePort $NODEPORT at 127.0.0.1"

python3 - "$BASE" <<'PY' || fail "/api/info through the front"
import json, sys, urllib.request
base = sys.argv[1]
info = json.load(urllib.request.urlopen(base + "/api/info", timeout=5))
root = json.load(urllib.request.urlopen(base + "/api/", timeout=5))
assert info.get("env") == "recette", info
assert info.get("banner") == "DataPress - recette", info
assert info.get("db_password") == "set", info
assert "FAKE-recette" not in json.dumps(info), "secret value leaked"
assert root.get("service") == "api" and root.get("env") == "recette", root
print("ok   /api/info: env=recette, banner from the ConfigMap, db_password=set (value not shown)")
PY

[[ $(k get ns "$NS" -o jsonpath='{.metadata.labels.pod-security\.kubernetes\.io/enforce}') == restricted ]] \
  || fail "namespace $NS does not enforce the restricted Pod Security profile"
# Our pods run in a namespace enforcing restricted, so admission accepted them; a pod
# breaking the profile is refused there (server-side dry run: nothing is created).
if k -n "$NS" run psa-probe --image="datapress-api:$VERSION" --restart=Never --dry-run=server \
  --overrides='{"spec":{"containers":[{"name":"psa-probe","image":"datapress-api:'"$VERSION"'","securityContext":{"privileged":true}}]}}' \
  >"$WORK/psa.txt" 2>&1; then
  fail "a privileged pod was admitted in $NS"
fi
grep -q 'restricted' "$WORK/psa.txt" || fail "privileged pod refused for another reason: $(cat "$WORK/psa.txt")"
ok "pods admitted under 'restricted'; a privileged pod is rejected"

step "browser e2e through NodePort $NODEPORT"
# The outage case too: the API scaled to zero, then back to the replica count the overlay set.
kc="$DP_ROOT/hack/tools/kubectl -n $NS"
api_replicas=$(k -n "$NS" get deployment/datapress-api -o jsonpath='{.spec.replicas}')
[[ $api_replicas =~ ^[1-9][0-9]*$ ]] || fail "deployment/datapress-api has no replica count to restore ('$api_replicas')"
"$DP_ROOT/tests/e2e/front.e2e.sh" --base-url "$BASE" --artifacts "$DP_BUILD/e2e/k8s" \
  --api-stop-cmd "$kc scale deployment/datapress-api --replicas=0 && $kc wait --for=delete pod -l app.kubernetes.io/name=datapress-api --timeout=120s" \
  --api-start-cmd "$kc scale deployment/datapress-api --replicas=$api_replicas && $kc rollout status deployment/datapress-api --timeout=120s"

# --- 4. NetworkPolicies
step "network policies"
"$DP_ROOT/tests/e2e/k8s_netpol.sh" "$NS" "datapress-api:$VERSION"

# --- 5. zero downtime under load
# Runs CHANGE (a shell snippet) while the load runs; the load ends 10 s after the rollouts settle.
under_load() {
  local title=$1 change=$2 stop="$WORK/stop" out="$WORK/load-$RANDOM.json"
  rm -f "$stop"
  python3 "$DP_ROOT/tests/e2e/k8s_load.py" --url "$BASE/api/" --rate "$RATE" --stop-file "$stop" --max-seconds 400 >"$out" &
  local loader=$!
  sleep 2
  eval "$change"
  k -n "$NS" rollout status deployment/datapress-api --timeout=240s >&2
  k -n "$NS" rollout status deployment/datapress-front --timeout=240s >&2
  sleep 10
  touch "$stop"; wait "$loader"
  python3 - "$title" "$out" <<'PY'
import json, sys
title, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
ok = r["failed"] == 0 and r["sent"] >= r["expected"] - 1
print(f"{'ok  ' if ok else 'FAIL'} {title:<38} sent={r['sent']} expected={r['expected']} "
      f"succeeded={r['succeeded']} failed={r['failed']} ({r['duration_s']} s)")
for e in r["errors"]:
    print("       ", e)
sys.exit(0 if ok else 1)
PY
}

step "zero downtime (load: $RATE req/s on $BASE/api/)"
results=0
under_load "rolling update to tag $ROLL_TAG" \
  "k -n $NS set image deployment/datapress-api api=datapress-api:$ROLL_TAG >&2;
   k -n $NS set image deployment/datapress-front front=datapress-front:$ROLL_TAG >&2" || results=1

# A ConfigMap change through kustomize: a new hashed name, so the pods roll.
mkdir -p "$WORK/overlay-config"
cat >"$WORK/overlay-config/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$WORK/overlay-config" "$OVERLAY")
images:
  - name: datapress-api
    newTag: "$ROLL_TAG"
  - name: datapress-front
    newTag: "$ROLL_TAG"
configMapGenerator:
  - name: datapress-config
    behavior: merge
    literals:
      - APP_BANNER=DataPress - recette (config changed by e2e)
YAML
under_load "ConfigMap change (new hash)" "k apply -k '$WORK/overlay-config' >&2" || results=1
banner=$(curl -fsS "$BASE/api/info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["banner"])')
[[ $banner == *"changed by e2e"* ]] || { warn "the new banner is not served: $banner"; results=1; }

under_load "kubectl rollout undo" "k -n $NS rollout undo deployment/datapress-api >&2" || results=1
banner=$(curl -fsS "$BASE/api/info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["banner"])')
[[ $banner == "DataPress - recette" ]] || { warn "rollout undo did not bring the old banner back: $banner"; results=1; }

victim=$(k -n "$NS" get pods -l app.kubernetes.io/name=datapress-api -o jsonpath='{.items[0].metadata.name}')
under_load "delete API pod $victim" \
  "k -n $NS delete pod $victim --wait=false >&2; sleep 1;
   until [[ \$(k -n $NS get deployment datapress-api -o jsonpath='{.status.readyReplicas}') == 2 ]]; do sleep 1; done" || results=1
((results == 0)) || fail "a zero-downtime check dropped requests"

# Leave recette as the repository describes it.
step "restore the recette overlay"
k apply -k "$OVERLAY" >/dev/null
k -n "$NS" rollout status deployment/datapress-api --timeout=180s
k -n "$NS" rollout status deployment/datapress-front --timeout=180s
echo "e2e-k8s: all checks passed"
