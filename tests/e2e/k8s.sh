#!/usr/bin/env bash
# Recette end-to-end on a real cluster (KUBECONFIG, or the project's own test cluster):
# load the images, apply recette's platform part then its application (as a namespace admin),
# verify what it serves, then prove that every kind of change drops no request under load
# (tests/e2e/k8s_disruptions.sh).
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"

NS=datapress-recette
# The application: kustomize/overlays/recette with this build's images, loaded into the nodes
# (the project's clusters reach no registry; tests/e2e/release-chain.sh deploys from one).
OVERLAY="$DP_ROOT/hack/cluster/recette"
PLATFORM="$DP_ROOT/kustomize/platform/recette" # the namespace, its quota and LimitRange
NODEPORT=${E2E_NODEPORT:-30080}
BASE="http://127.0.0.1:$NODEPORT"
VERSION=$(workspace_version)
ROLL_TAG="$VERSION-rollout"
WORK=${E2E_WORK_DIR:-$DP_BUILD/e2e-k8s}
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

# --- 1. images: the offline-built ones, and the next version for the rollout cases
# Into every node: `kind load` on a kind cluster (context kind-NAME), else the project's cluster.
load_images() {
  local loader=${E2E_IMAGE_LOADER:-auto} ctx
  ctx=$(k config current-context)
  if [[ $loader == auto ]]; then
    if [[ $ctx == kind-* ]]; then loader=kind; else loader=project; fi
  fi
  case $loader in
    kind) "$DP_ROOT/hack/tools/kind" load docker-image --name "${ctx#kind-}" "$@" ;;
    project) "$DP_ROOT/hack/cluster/load-images.sh" "$@" ;;
    none) log "images expected to be in the cluster already: $*" ;;
    *) die "unknown E2E_IMAGE_LOADER=$loader (auto, kind, project, none)" ;;
  esac
}
step "images"
"$DP_ROOT/tests/e2e/rollout-images.sh"
images=()
for img in datapress-api datapress-front; do
  for tag in "$VERSION" "$ROLL_TAG"; do
    docker image inspect "$img:$tag" >/dev/null 2>&1 || die "image $img:$tag is missing: run 'make images' first"
    images+=("$img:$tag")
  done
done
revision_of() { docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.revision"}}' "$1"; }
REV=$(revision_of "datapress-api:$VERSION") ROLL_REV=$(revision_of "datapress-api:$ROLL_TAG")
[[ $(revision_of "datapress-front:$VERSION") == "$REV" && $(revision_of "datapress-front:$ROLL_TAG") == "$ROLL_REV" ]] \
  || die "the API and front images were not built from the same revision"
[[ $REV != "$ROLL_REV" ]] || die "the rollout images are the same build ($REV)"
load_images "${images[@]}"

# --- 2. deploy recette exactly as documented: the platform part by a cluster administrator,
# then the application by a team that holds only the namespace's admin role (impersonated:
# a ServiceAccount bound to the admin ClusterRole in the namespace, nothing else).
step "kubectl apply -k kustomize/platform/recette (cluster administrator)"
k apply -k "$PLATFORM"
DEPLOYER=e2e-deployer
k -n "$NS" create serviceaccount "$DEPLOYER" --dry-run=client -o yaml | k apply -f - >/dev/null
k -n "$NS" create rolebinding "$DEPLOYER-admin" --clusterrole=admin --serviceaccount="$NS:$DEPLOYER" \
  --dry-run=client -o yaml | k apply -f - >/dev/null
as_deployer=(--as="system:serviceaccount:$NS:$DEPLOYER")
# What the split is for: the namespace admin may not relax the Pod Security level, raise the
# quota or the LimitRange (server-side dry runs: the authorizer answers, nothing changes).
forbidden_to_deployer() { # forbidden_to_deployer WHAT KUBECTL-ARGS...
  local what=$1 out; shift
  if out=$(k "$@" "${as_deployer[@]}" --dry-run=server 2>&1); then fail "the namespace admin may $what"; fi
  grep -q 'forbidden' <<<"$out" || fail "the namespace admin may not $what, but not by RBAC: $out"
}
forbidden_to_deployer "relax the namespace's Pod Security level" \
  label namespace "$NS" pod-security.kubernetes.io/enforce=privileged --overwrite
forbidden_to_deployer "raise the quota" \
  -n "$NS" patch resourcequota datapress-quota --type=merge -p '{"spec":{"hard":{"pods":"100"}}}'
forbidden_to_deployer "change the LimitRange" \
  -n "$NS" patch limitrange datapress-limits --type=json -p '[{"op":"remove","path":"/spec/limits/0/max"}]'
ok "the namespace admin may not relax Pod Security, raise the quota or change the LimitRange"
step "kubectl apply -k hack/cluster/recette (kustomize/overlays/recette, local images; as the namespace admin)"
k apply -k "$OVERLAY" "${as_deployer[@]}"
k -n "$NS" rollout status deployment/datapress-api --timeout=180s
k -n "$NS" rollout status deployment/datapress-front --timeout=180s
"$DP_ROOT/scripts/prune-config.sh" "$NS" # as scripts/deploy-recette.sh does, after the rollout

# Applying the same overlay again changes nothing: kubectl diff finds no difference and no
# object's generation moves. (kubectl still prints "configured" for the two
# PodDisruptionBudgets: their selector is patched by replacement, so the client's patch is
# never empty, and the server finds nothing to change; docs/exploitation.md.)
generations() { k get -k "$OVERLAY" -o jsonpath='{range .items[*]}{.kind}/{.metadata.name} {.metadata.generation}{"\n"}{end}'; }
k diff -k "$OVERLAY" >"$WORK/diff.txt" || fail "kubectl diff after the apply is not empty (exit $?): $(head -40 "$WORK/diff.txt")"
before=$(generations)
k apply -k "$OVERLAY" >"$WORK/apply-again.txt"
after=$(generations)
[[ $before == "$after" ]] || fail "a second apply of the same overlay changed objects: $(diff <(echo "$before") <(echo "$after") | grep '^[<>]' | tr '\n' ' ')"
ok "a second apply changes nothing ($(grep -c . <<<"$after") objects, generations unchanged)"

# --- 3. what recette serves
step "checks"
# Ready and not terminating (on a cluster left running, the pods the apply replaced may still
# be finishing their preStop).
ready=$(k -n "$NS" get pods -l app.kubernetes.io/name=datapress-api \
  -o jsonpath='{range .items[*]}{.metadata.deletionTimestamp}{"|"}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c '^|True$' || true)
((ready == 2)) || fail "expected 2 Ready API pods, got $ready"
probe=$(k -n "$NS" get deployment datapress-api -o jsonpath='{.spec.template.spec.containers[0].readinessProbe.httpGet.path}')
[[ $probe == /ready ]] || fail "API readiness probe is $probe, not /ready"
ok "2 API pods Ready on /ready"
"$DP_ROOT/tests/e2e/k8s_spread.sh" "$NS" datapress-api datapress-front || fail "replicas are not spread over the nodes"

wait_http "$BASE/healthz" 60 || fail "front NodePort $NODEPORT does not answer on 127.0.0.1"
ok "front answers on NodePort $NODEPORT at 127.0.0.1"

# Tags name versions, not builds: pods started before this run loaded its images (the same
# tag, another build of it, e.g. a cluster left running) would go on serving the old build.
# They are restarted once; then every answer must come from this build ($REV).
served_revisions() { # 20 new connections: the distinct revisions the page and /api/ show
  python3 -c '
import sys, urllib.request
sys.path.insert(0, sys.argv[2])
from loadgen import check_body
seen = set()
for i in range(20):
    path = ("/", "/api/")[i % 2]
    with urllib.request.urlopen(sys.argv[1] + path, timeout=5) as r:
        seen.add(check_body(path, r.status, r.read()))
print(" ".join(sorted(map(str, seen))))' "$BASE" "$DP_ROOT/tests/e2e"
}
want="api:$VERSION+$REV page:$REV"
served=$(served_revisions)
if [[ $served != "$want" ]]; then
  log "recette serves $served, not this build ($want): pods from before the images were loaded, restarted"
  mapfile -t before < <(k -n "$NS" get pods -o name)
  k -n "$NS" rollout restart deployment/datapress-api deployment/datapress-front
  k -n "$NS" rollout status deployment/datapress-api --timeout=180s
  k -n "$NS" rollout status deployment/datapress-front --timeout=180s
  k -n "$NS" wait --for=delete "${before[@]}" --timeout=120s
  served=$(served_revisions)
fi
[[ $served == "$want" ]] || fail "recette serves $served, not this build ($want)"
ok "recette serves this build ($REV)"

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

# --- 4 bis. the troubleshooting procedures of docs/exploitation.md, provoked and repaired
step "runbooks: CreateContainerConfigError, quota exhausted, kubectl debug"
"$DP_ROOT/tests/e2e/k8s_runbooks.sh" "$NS" "$OVERLAY" "$BASE" "datapress-api:$VERSION"

# --- 5. zero downtime: each disruption under load, and the controls that must be caught
step "zero downtime"
E2E_NS=$NS E2E_BASE=$BASE E2E_WORK="$WORK/disruptions" E2E_OVERLAY=$OVERLAY E2E_VERSION=$VERSION \
  E2E_ROLL_TAG=$ROLL_TAG E2E_REVISION=$REV E2E_ROLL_REVISION=$ROLL_REV \
  "$DP_ROOT/tests/e2e/k8s_disruptions.sh" ${E2E_CASES:-}
python3 "$DP_ROOT/tests/e2e/loadgen.py" summary "$WORK/disruptions" --out "$WORK/zero-downtime.json" \
  --svg "$WORK/zero-downtime.svg" --revision "$REV" ${E2E_SUMMARY_TITLE:+--title "$E2E_SUMMARY_TITLE"} \
  --cluster "$(k version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])') $(k config current-context)"

# Leave recette as the repository describes it.
step "restore the recette overlay"
k apply -k "$OVERLAY" >/dev/null
k -n "$NS" rollout status deployment/datapress-api --timeout=180s
k -n "$NS" rollout status deployment/datapress-front --timeout=180s
"$DP_ROOT/scripts/prune-config.sh" "$NS" >/dev/null
echo "e2e-k8s: all checks passed"
