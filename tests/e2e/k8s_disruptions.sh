#!/usr/bin/env bash
# Zero downtime, proven: each case runs one disruption of recette under the load harness
# (tests/e2e/loadgen.py: keep-alive and new-connection clients, page + API routes, through
# the front's NodePort on 127.0.0.1) and fails if any step fails, if a rollout does not
# complete in time, if the new version is not what serves afterwards, or if a request fails.
# The load runs until every old pod is gone, plus a margin. One case runs without load:
# config-prune (40 config changes under the quota, scripts/prune-config.sh after each).
#
# Usage: tests/e2e/k8s_disruptions.sh [CASE|GROUP...]   (default: every case but the node ones,
#        then the controls; groups "default" and "nodes")
# Env (set by tests/e2e/k8s.sh, which passes E2E_CASES as arguments): KUBECONFIG, E2E_NS, E2E_BASE, E2E_WORK, E2E_VERSION,
#      E2E_ROLL_TAG, E2E_REVISION, E2E_ROLL_REVISION, E2E_OVERLAY.
set -euo pipefail -o errtrace
. "$(dirname "$0")/../../scripts/lib.sh"

NS=${E2E_NS:?} BASE=${E2E_BASE:?} WORK=${E2E_WORK:?} OVERLAY=${E2E_OVERLAY:?}
VERSION=${E2E_VERSION:?} ROLL_TAG=${E2E_ROLL_TAG:?}
REV=${E2E_REVISION:?} ROLL_REV=${E2E_ROLL_REVISION:?}
RATE=${E2E_RATE:-240}
MARGIN=${E2E_MARGIN_SECONDS:-5}
# An abrupt kill of an NGINX container loses the new connections that kube-proxy still sends
# to it until the kubelet notices and the endpoint goes (about a second; measured: 59 of 61
# failures were new connections, 2 kept-alive clients lost their in-flight request). Bound:
# two seconds of the new-connection half of the load landing on the killed pod = RATE/2.
FRONT_KILL_MAX_FAILED=${E2E_FRONT_KILL_MAX_FAILED:-$((RATE / 2))}
LOADGEN="$DP_ROOT/tests/e2e/loadgen.py"
LOAD_CLIENTS=8 LOAD_TIMEOUT=5 # half keep-alive, half new-connection; seconds per request
CASES_ALL=(api-rollout front-rollout config-change rollout-undo rollback-durable secret-rotation delete-api-pod
  delete-front-pod kill-api-container kill-front-container control-broken-rollout control-lossy
  config-prune)
# Cases that start no load (the controls run their inner case under load themselves).
unloaded() { [[ $1 == control-* || $1 == config-prune ]]; }
# Only on a cluster of several nodes (make cluster-up-3), chosen by name or as group "nodes".
CASES_NODES=(drain-node lose-node)
API=datapress-api FRONT=datapress-front
API_SEL=app.kubernetes.io/name=datapress-api FRONT_SEL=app.kubernetes.io/name=datapress-front
mkdir -p "$WORK"

k() { "$DP_ROOT/hack/tools/kubectl" "$@"; }
kn() { k -n "$NS" "$@"; }
say() { printf '\033[1;35m  · %s\033[0m\n' "$*" >&2; }
ok() { printf '\033[1;32mok\033[0m   %s\n' "$*" >&2; }
trap 'printf "\033[1;31mFAIL: line %s: %s (exit %s)\033[0m\n" "$LINENO" "$BASH_COMMAND" "$?" >&2' ERR

# --- the load, one run per case
loader=""
load_start() { # load_start CASE: starts the harness, returns once its clients run
  CASE=$1 RESULT="$WORK/load-$1.json" MARKS="$WORK/marks-$1.jsonl"
  rm -f "$RESULT" "$MARKS" "$WORK/stop" "$WORK/ready"
  python3 "$LOADGEN" run --base "$BASE" --out "$RESULT" --rate "$RATE" --marks "$MARKS" \
    --stop-file "$WORK/stop" --ready-file "$WORK/ready" --max-seconds 420 \
    --keepalive-clients $((LOAD_CLIENTS / 2)) --fresh-clients $((LOAD_CLIENTS / 2)) --timeout "$LOAD_TIMEOUT" &
  loader=$!
  local i
  for ((i = 0; i < 100; i++)); do [[ -f $WORK/ready ]] && break; sleep 0.1; done
  [[ -f $WORK/ready ]] || die "the load harness did not start"
  sleep 3 # a steady state before the disruption
}
load_stop() { touch "$WORK/stop"; wait "$loader"; loader=""; }
stop_loader_on_exit() { [[ -z $loader ]] || { touch "$WORK/stop"; wait "$loader" || true; }; }
trap stop_loader_on_exit EXIT
mark() { printf '{"t": %s, "label": "%s"}\n' "$(date +%s.%N)" "$*" >>"$MARKS"; say "$*"; }
# report [--max-failed N] [--expect-revisions A,B --after-mark LABEL]: the case's verdict line.
report() { python3 "$LOADGEN" report "$RESULT" --title "$CASE" "$@"; }

# --- helpers on the cluster
pods_of() { kn get pods -l "$1" -o name; }                    # pods_of SELECTOR
first_pod() { kn get pods -l "$1" -o jsonpath='{.items[0].metadata.name}' | sed 's#^#pod/#'; } # first_pod SELECTOR
ready_count() {                                                # ready_count SELECTOR
  kn get pods -l "$1" -o jsonpath='{range .items[*]}{.metadata.deletionTimestamp}{"|"}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' |
    grep -c '^|True$' || true
}
replicas_of() { kn get "deployment/$1" -o jsonpath='{.spec.replicas}'; }
# Waits until SELECTOR has exactly REPLICAS Ready pods, none terminating, or fails after SECONDS.
wait_ready_count() { # wait_ready_count SELECTOR REPLICAS SECONDS
  local deadline=$((SECONDS + $3))
  until [[ $(ready_count "$1") == "$2" && -z $(kn get pods -l "$1" -o jsonpath='{.items[*].metadata.deletionTimestamp}') ]]; do
    ((SECONDS < deadline)) || { echo "timed out: $1 has $(ready_count "$1") Ready pods, want $2" >&2; return 1; }
    sleep 1
  done
}
rollout() { kn rollout status "deployment/$1" --timeout="${2:-180s}" >&2; }
# Every pod listed in OLD is gone (not just terminating), within 120 s.
wait_gone() { (($#)) || die "no old pods to wait for"; kn wait --for=delete "$@" --timeout=120s >&2; }
end_case() { # end_case: old pods gone (already waited), margin, stop the load
  mark "old pods gone"
  sleep "$MARGIN"
  load_stop
}
# The container ID of CONTAINER in POD, without its runtime prefix.
container_id() { kn get "$1" -o jsonpath="{.status.containerStatuses[?(@.name==\"$2\")].containerID}" | sed 's#^[a-z]*://##'; }
restart_count() { kn get "$1" -o jsonpath="{.status.containerStatuses[?(@.name==\"$2\")].restartCount}"; }
# SIGKILL through the container runtime: no preStop, no SIGTERM, no drain. On a kind node
# (a container named after the node, run by the engine its provider ID names: kind://docker/...
# or kind://podman/...) crictl runs inside it; on the project's cluster, the host's crictl
# talks to the cluster's containerd.
kill_container() { # kill_container POD CONTAINER
  local id node provider
  id=$(container_id "$1" "$2") node=$(kn get "$1" -o jsonpath='{.spec.nodeName}')
  [[ -n $id ]] || die "no container $2 in $1"
  provider=$(k get node "$node" -o jsonpath='{.spec.providerID}')
  if [[ $provider == kind://* ]]; then
    provider=${provider#kind://}
    "${provider%%/*}" exec "$node" crictl stop --timeout 0 "$id" >/dev/null
  else
    # shellcheck source=hack/cluster/env.sh
    (. "$DP_ROOT/hack/cluster/env.sh" && "$K8S_BIN/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" stop --timeout 0 "$id" >/dev/null)
  fi
}
served_banner() { curl -fsS --max-time 5 "$BASE/api/info" | python3 -c 'import json,sys; print(json.load(sys.stdin)["banner"])'; }

# The revisions each image shows (page meta, API /): what must serve after a rollout.
rev_api() { echo "api:$VERSION+$1"; }
rev_page() { echo "page:$1"; }

# --- the cases
# A rollout of DEPLOYMENT's CONTAINER to the rollout build; the page must then show PAGE_REV.
rollout_case() { # rollout_case DEPLOYMENT SELECTOR CONTAINER PAGE_REV
  local old; mapfile -t old < <(pods_of "$2")
  mark "set image $3 $ROLL_TAG"
  kn set image "deployment/$1" "$3=$1:$ROLL_TAG" >&2
  rollout "$1"
  wait_gone "${old[@]}"
  end_case
  report --expect-revisions "$(rev_api "$ROLL_REV"),$(rev_page "$4")" --after-mark "old pods gone"
}
case_api-rollout() { rollout_case "$API" "$API_SEL" api "$REV"; }
case_front-rollout() { rollout_case "$FRONT" "$FRONT_SEL" front "$ROLL_REV"; }

# A ConfigMap change through kustomize: a new hashed name, so the API pods roll.
config_overlay() { # config_overlay BANNER [PASSWORD]: a kustomization on top of recette, at the rollout tag
  local dir="$WORK/overlay-config"
  mkdir -p "$dir"
  cat >"$dir/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$dir" "$OVERLAY")
images:
  - name: $API
    newTag: "$ROLL_TAG"
  - name: $FRONT
    newTag: "$ROLL_TAG"
configMapGenerator:
  - name: datapress-config
    behavior: merge
    literals:
      - APP_BANNER=$1
YAML
  if [[ -n ${2:-} ]]; then
    cat >>"$dir/kustomization.yaml" <<YAML
secretGenerator:
  - name: datapress-secret
    behavior: replace
    literals:
      - DB_PASSWORD=$2
    options:
      immutable: true
YAML
  fi
  echo "$dir"
}
case_config-change() {
  local old dir banner="DataPress - recette (config changed by e2e)"
  mapfile -t old < <(pods_of "$API_SEL")
  dir=$(config_overlay "$banner")
  mark "kubectl apply -k (new ConfigMap)"
  k apply -k "$dir" >&2
  rollout "$API"
  rollout "$FRONT"
  wait_gone "${old[@]}"
  [[ $(served_banner) == "$banner" ]] || die "the new banner is not served: $(served_banner)"
  end_case
  report --expect-revisions "$(rev_api "$ROLL_REV"),$(rev_page "$ROLL_REV")" --after-mark "old pods gone"
}

# The procedure of docs/exploitation.md (section 6): a new password through the generator, so
# a new Secret name, so every API pod restarts and reads it; nothing may fail meanwhile.
case_secret-rotation() {
  local old dir before after banner="DataPress - recette (config changed by e2e)"
  mapfile -t old < <(pods_of "$API_SEL")
  before=$(kn get "deployment/$API" -o jsonpath='{.spec.template.spec.volumes[?(@.name=="secret")].secret.secretName}')
  dir=$(config_overlay "$banner" "FAKE-rotated-by-e2e-$RANDOM")
  mark "kubectl apply -k (new Secret)"
  k apply -k "$dir" >&2
  rollout "$API"
  wait_gone "${old[@]}"
  after=$(kn get "deployment/$API" -o jsonpath='{.spec.template.spec.volumes[?(@.name=="secret")].secret.secretName}')
  [[ $after != "$before" && $after == datapress-secret-* ]] || die "the API still mounts $before after the rotation ($after)"
  python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d.get("db_password") != "set" or "FAKE" in json.dumps(d))' \
    < <(curl -fsS --max-time 5 "$BASE/api/info") || die "/api/info after the rotation: no password set, or its value shown"
  end_case
  report
}

case_rollout-undo() {
  local old; mapfile -t old < <(pods_of "$API_SEL")
  mark "kubectl rollout undo api"
  kn rollout undo "deployment/$API" >&2
  rollout "$API"
  wait_gone "${old[@]}"
  [[ $(served_banner) == "DataPress - recette" ]] || die "rollout undo did not bring the old banner back: $(served_banner)"
  end_case
  report --expect-revisions "$(rev_api "$ROLL_REV"),$(rev_page "$ROLL_REV")" --after-mark "old pods gone"
}

# The durable rollback of docs/exploitation.md (section 5): a version (images, configuration)
# deployed through an overlay, `rollout undo` back to the version before, then the overlay
# written back to the restored version (here the repository's overlay itself, as `git revert`
# leaves it): kubectl diff shows nothing, the apply rolls no pod, the restored build serves.
template_revisions() { kn get "deployment/$API" "deployment/$FRONT" -o jsonpath='{.items[*].metadata.annotations.deployment\.kubernetes\.io/revision}'; }
case_rollback-durable() {
  local dir old pods_before pods_after rev_before rev_after
  mapfile -t old < <(pods_of "$API_SEL"; pods_of "$FRONT_SEL")
  k apply -k "$OVERLAY" >&2 # the version before, as the repository describes it
  rollout "$API"; rollout "$FRONT"
  dir=$(config_overlay "DataPress - recette (next version, e2e)") # next images and configuration
  mark "kubectl apply -k (next version)"
  k apply -k "$dir" >&2
  rollout "$API"; rollout "$FRONT"
  mark "kubectl rollout undo (api, front)"
  kn rollout undo "deployment/$API" >&2
  kn rollout undo "deployment/$FRONT" >&2
  rollout "$API"; rollout "$FRONT"
  wait_ready_count "$API_SEL" "$(replicas_of "$API")" 120
  wait_ready_count "$FRONT_SEL" "$(replicas_of "$FRONT")" 120
  mark "overlay back to the restored version: kubectl diff, kubectl apply -k"
  # Exit 1 with a difference; only the last-applied record of the two Deployments may differ.
  local rc=0; k diff -k "$OVERLAY" >"$WORK/rollback-diff.txt" || rc=$?
  ((rc <= 1)) || die "kubectl diff failed (exit $rc): $(tail -5 "$WORK/rollback-diff.txt")"
  if grep -E '^[-+] ' "$WORK/rollback-diff.txt" | grep -v 'kubectl.kubernetes.io/last-applied-configuration' | grep -q .; then
    die "after the undo, the overlay still differs from the cluster: $(grep -E '^[-+] ' "$WORK/rollback-diff.txt" | grep -v last-applied | head -10 | tr '\n' ' ')"
  fi
  # The Deployments' generation moves (their last-applied record changes); their revision, i.e.
  # the pod template, and their pods must not.
  pods_before=$(pods_of "$API_SEL"; pods_of "$FRONT_SEL") rev_before=$(template_revisions)
  k apply -k "$OVERLAY" >&2
  sleep 3 # a restart would show by now: the controller creates the new ReplicaSet's pods at once
  rev_after=$(template_revisions) pods_after=$(pods_of "$API_SEL"; pods_of "$FRONT_SEL")
  [[ $rev_before == "$rev_after" ]] || die "the apply of the restored version rolled the Deployments (revisions $rev_before -> $rev_after)"
  [[ $pods_before == "$pods_after" ]] || die "the apply of the restored version restarted pods"
  [[ $(served_banner) == "DataPress - recette" ]] || die "the restored configuration is not served: $(served_banner)"
  ((${#old[@]} == 0)) || wait_gone "${old[@]}"
  end_case
  report --expect-revisions "$(rev_api "$REV"),$(rev_page "$REV")" --after-mark "overlay back to the restored version: kubectl diff, kubectl apply -k"
}

delete_one_pod() { # delete_one_pod DEPLOYMENT SELECTOR
  local victim n; victim=$(first_pod "$2") n=$(replicas_of "$1")
  mark "delete $victim"
  kn delete "$victim" --wait=false >&2
  wait_gone "$victim"
  wait_ready_count "$2" "$n" 120
  end_case
  report
}
case_delete-api-pod() { delete_one_pod "$API" "$API_SEL"; }
case_delete-front-pod() { delete_one_pod "$FRONT" "$FRONT_SEL"; }

kill_one_container() { # kill_one_container DEPLOYMENT SELECTOR CONTAINER
  local victim n restarts; victim=$(first_pod "$2") n=$(replicas_of "$1")
  restarts=$(restart_count "$victim" "$3")
  mark "SIGKILL $3 in $victim"
  kill_container "$victim" "$3"
  local deadline=$((SECONDS + 60))
  until (($(restart_count "$victim" "$3") > restarts)); do
    ((SECONDS < deadline)) || die "the kubelet did not restart $3 in $victim within 60 s"
    sleep 0.5
  done
  wait_ready_count "$2" "$n" 120
  mark "$victim Ready again"
  sleep "$MARGIN"
  load_stop
}
case_kill-api-container() { kill_one_container "$API" "$API_SEL" api; report; }
case_kill-front-container() { kill_one_container "$FRONT" "$FRONT_SEL" front; report --max-failed "$FRONT_KILL_MAX_FAILED"; }

# --- Old generated ConfigMaps and Secrets do not pile up (docs/exploitation.md, section 7).
# CONFIG_CHANGES successive changes of a generated value (banner and password, each through
# its generator in a copy of the overlay), each applied under the recette quota then followed
# by scripts/prune-config.sh: no apply may be refused, the generated objects of each name stay
# within the API's revision history (revisionHistoryLimit old ReplicaSets + the current one),
# the last change is what is served, and `rollout undo` to the change before still works.
# Fast: the API runs no pod during the first CONFIG_CHANGES - 1 changes (replicas 0 in the
# copy), so each new ReplicaSet is complete at once and the controller prunes its history as
# in a real rollout; the last change restores the replicas and rolls out for real.
CONFIG_CHANGES=${E2E_CONFIG_CHANGES:-40}
prune_overlay() { # prune_overlay DIR N LAST(true|false): change N of the config, in DIR
  mkdir -p "$1"
  cat >"$1/kustomization.yaml" <<YAML
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$1" "$OVERLAY")
configMapGenerator:
  - name: datapress-config
    behavior: merge
    literals:
      - APP_BANNER=$(prune_banner "$2")
secretGenerator:
  - name: datapress-secret
    behavior: replace
    literals:
      - DB_PASSWORD=FAKE-prune-test-$2
    options:
      immutable: true
YAML
  if ! $3; then
    cat >>"$1/kustomization.yaml" <<YAML
patches:
  - target:
      kind: Deployment
      name: $API
    patch: '[{"op": "replace", "path": "/spec/replicas", "value": 0}]'
YAML
  fi
}
prune_banner() { echo "DataPress - recette (config $1 of $CONFIG_CHANGES)"; }
# generated_counts: "CONFIGS SECRETS USED_CM USED_SECRETS HARD_CM HARD_SECRETS" right now.
generated_counts() {
  kn get configmaps,secrets,resourcequota -o json | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
n = lambda kind, prefix: sum(1 for o in items if o["kind"] == kind and o["metadata"]["name"].startswith(prefix))
q = next(o for o in items if o["kind"] == "ResourceQuota")
print(n("ConfigMap", "datapress-config-"), n("Secret", "datapress-secret-"),
      q["status"]["used"]["configmaps"], q["status"]["used"]["secrets"], q["spec"]["hard"]["configmaps"], q["spec"]["hard"]["secrets"])'
}
# The ConfigMap and Secret the API's ReplicaSet of REVISION uses.
revision_objects() { # revision_objects REVISION
  kn get rs -l "$API_SEL" -o json | python3 -c '
import json, sys
for rs in json.load(sys.stdin)["items"]:
    if rs["metadata"]["annotations"].get("deployment.kubernetes.io/revision") == sys.argv[1]:
        spec = rs["spec"]["template"]["spec"]
        cm = spec["containers"][0]["envFrom"][0]["configMapRef"]["name"]
        secret = next(v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v)
        print(f"configmap/{cm} secret/{secret}")' "$1"
}
wait_banner() { # wait_banner BANNER: /api/info serves it within 30 s (endpoints catch up)
  local deadline=$((SECONDS + 30)) got
  until got=$(served_banner 2>/dev/null) && [[ $got == "$1" ]]; do
    ((SECONDS < deadline)) || die "/api/info serves '${got:-nothing}', not '$1'"
    sleep 0.5
  done
}
case_config-prune() {
  local dir="$WORK/overlay-prune" i last start limit bound=0 out
  local max_cm=0 max_secret=0 cm secret used_cm used_secret hard_cm hard_secret t0=$SECONDS
  start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for ((i = 1; i <= CONFIG_CHANGES; i++)); do
    last=false; ((i < CONFIG_CHANGES)) || last=true
    prune_overlay "$dir" "$i" "$last"
    # A refused object (exceeded quota) fails the apply: its message is the verdict.
    out=$(k apply -k "$dir" 2>&1) || die "config change $i of $CONFIG_CHANGES refused: $(grep -m1 -i 'error' <<<"$out")"
    if $last; then rollout "$API"; else rollout "$API" 60s; fi
    if ((i == 1)); then
      # No API replica from here to the last change: its pods finish terminating first (a
      # terminating pod still holds its ConfigMap and Secret, and prune keeps them), so that
      # from now on only ReplicaSets, bounded by revisionHistoryLimit, hold generated objects.
      local gone=$((SECONDS + 120))
      until [[ -z $(kn get pod -l "$API_SEL" -o name) ]]; do
        ((SECONDS < gone)) || die "API pods still exist 120 s after scaling to 0"
        sleep 0.5
      done
    fi
    if ((bound == 0)); then
      limit=$(kn get "deployment/$API" -o jsonpath='{.spec.revisionHistoryLimit}')
      [[ $limit =~ ^[0-9]+$ ]] || die "deployment/$API has no revisionHistoryLimit"
      bound=$((limit + 1))
      say "revisionHistoryLimit $limit: at most $bound datapress-config ConfigMaps and $bound datapress-secret Secrets"
    fi
    # Let the controller trim the history to revisionHistoryLimit, as it does right after a
    # rollout completes, so that the bound is exact.
    local deadline=$((SECONDS + 30))
    until (($(kn get rs -l "$API_SEL" -o name | wc -l) <= bound)); do
      ((SECONDS < deadline)) || die "the API keeps more than $bound ReplicaSets 30 s after change $i"
      sleep 0.2
    done
    "$DP_ROOT/scripts/prune-config.sh" "$NS" >"$WORK/prune-$i.txt"
    read -r cm secret used_cm used_secret hard_cm hard_secret < <(generated_counts)
    max_cm=$((cm > max_cm ? cm : max_cm)) max_secret=$((secret > max_secret ? secret : max_secret))
    if ((i % 10 == 0 || i == 1)); then
      say "change $i: $cm datapress-config, $secret datapress-secret; quota used configmaps $used_cm/$hard_cm, secrets $used_secret/$hard_secret"
    fi
  done
  say "$CONFIG_CHANGES changes applied and pruned in $((SECONDS - t0)) s"
  ((max_cm <= bound && max_secret <= bound)) ||
    die "up to $max_cm datapress-config ConfigMaps and $max_secret datapress-secret Secrets after a prune, more than the revision history ($bound)"
  ok "at most $max_cm ConfigMaps and $max_secret Secrets of each generator after a prune (bound $bound)"
  out=$(kn get events -o json | python3 -c '
import json, sys
for e in json.load(sys.stdin)["items"]:
    when = e.get("lastTimestamp") or e.get("eventTime") or e["metadata"]["creationTimestamp"]
    if "exceeded quota" in e.get("message", "") and when[:19] >= sys.argv[1][:19]:
        print(e["involvedObject"]["kind"], e["involvedObject"]["name"], e["message"])' "$start")
  [[ -z $out ]] || die "exceeded quota events during the changes: $out"
  ok "no exceeded quota event; every apply admitted"
  wait_banner "$(prune_banner "$CONFIG_CHANGES")"
  ok "the last change is served: $(served_banner)"

  # Back to the change before: its ReplicaSet and both its objects survived the prunes.
  local revision previous missing=() o
  revision=$(kn get "deployment/$API" -o jsonpath='{.metadata.annotations.deployment\.kubernetes\.io/revision}')
  previous=$(revision_objects $((revision - 1)))
  [[ -n $previous ]] || die "no ReplicaSet of revision $((revision - 1)) left: nothing to undo to"
  for o in $previous; do kn get "$o" -o name >/dev/null 2>&1 || missing+=("$o"); done
  say "rollout undo to revision $((revision - 1)) ($previous)"
  kn rollout undo "deployment/$API" >&2
  if ! rollout "$API" 120s; then
    kn get pods -l "$API_SEL" -o jsonpath='{range .items[*]}{.metadata.name}: {.status.containerStatuses[0].state.waiting.reason} {.status.containerStatuses[0].state.waiting.message}{"\n"}{end}' >&2
    die "rollout undo did not complete (objects of the previous revision missing: ${missing[*]:-none})"
  fi
  ((${#missing[@]} == 0)) || die "rollout undo completed, yet the previous revision's ${missing[*]} is missing"
  wait_ready_count "$API_SEL" "$(replicas_of "$API")" 60
  wait_banner "$(prune_banner $((CONFIG_CHANGES - 1)))"
  ok "rollout undo serves change $((CONFIG_CHANGES - 1)) again, API pods Ready"

  # Recette as the overlay describes it, pruned.
  say "restore the recette overlay"
  k apply -k "$OVERLAY" >&2
  rollout "$API"; rollout "$FRONT"
  "$DP_ROOT/scripts/prune-config.sh" "$NS" >&2
  ok "config-prune passed in $((SECONDS - t0)) s"
}

# --- nodes (a cluster of several nodes: make cluster-up-3). The victim is a worker running an
# API pod; the front's NodePort is served by the control plane, which is never stopped.
node_of() { kn get "$1" -o jsonpath='{.spec.nodeName}'; }
# Pods of recette on NODE.
pods_on() { kn get pods --field-selector "spec.nodeName=$1" -o name; }
# The engine running the kind node NODE (docker or podman), from its provider ID.
node_engine() {
  local provider; provider=$(k get node "$1" -o jsonpath='{.spec.providerID}')
  [[ $provider == kind://* ]] || die "node $1 is not a kind node (provider ID '$provider'): the node cases need make cluster-up-3"
  provider=${provider#kind://}; echo "${provider%%/*}"
}
schedulable_workers() { # nodes without NoSchedule taint nor cordon
  k get nodes -o json | python3 -c '
import json, sys
for n in json.load(sys.stdin)["items"]:
    if not n["spec"].get("unschedulable") and not any(t["effect"] == "NoSchedule" for t in n["spec"].get("taints", [])):
        print(n["metadata"]["name"])'
}
victim_node() {
  (($(schedulable_workers | grep -c .) >= 2)) || die "the node cases need two schedulable workers (make cluster-up-3)"
  node_of "$(first_pod "$API_SEL")"
}
# Ready pods of SELECTOR outside NODE, none of them terminating.
ready_outside() { # ready_outside SELECTOR NODE
  kn get pods -l "$1" -o json | python3 -c '
import json, sys
node = sys.argv[1]
print(sum(1 for p in json.load(sys.stdin)["items"]
          if p["spec"].get("nodeName") != node and "deletionTimestamp" not in p["metadata"]
          and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))))' "$2"
}
wait_replaced() { # wait_replaced NODE SECONDS: every replica Ready on the other nodes
  local deadline=$((SECONDS + $2)) na nf
  na=$(replicas_of "$API") nf=$(replicas_of "$FRONT")
  until [[ $(ready_outside "$API_SEL" "$1") == "$na" && $(ready_outside "$FRONT_SEL" "$1") == "$nf" ]]; do
    ((SECONDS < deadline)) || die "replicas not back on the other nodes within $2 s"
    sleep 0.5
  done
}
node_ready() { k get node "$1" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}'; }
# Back to one replica per node: a rollout under the same load (the spread only acts at scheduling).
respread() {
  local old; mapfile -t old < <(pods_of "$API_SEL"; pods_of "$FRONT_SEL")
  mark "rollout restart (spread again)"
  kn rollout restart "deployment/$API" "deployment/$FRONT" >&2
  rollout "$API"; rollout "$FRONT"
  wait_gone "${old[@]}"
  "$DP_ROOT/tests/e2e/k8s_spread.sh" "$NS" "$API" "$FRONT" >&2
}

# Maintenance: kubectl drain evicts through the PDBs; nothing may fail.
# Pods with no controller on NODE (kubectl drain refuses them without --force), e.g. the
# NetworkPolicy test's clients while their namespaces are being deleted.
unmanaged_on() {
  k get pods -A --field-selector "spec.nodeName=$1" -o json | python3 -c '
import json, sys
print(sum(1 for p in json.load(sys.stdin)["items"] if not p["metadata"].get("ownerReferences")))'
}
case_drain-node() {
  local node old deadline=$((SECONDS + 120)); node=$(victim_node)
  until (($(unmanaged_on "$node") == 0)); do
    ((SECONDS < deadline)) || die "pods without a controller still on $node after 120 s: kubectl drain would refuse them"
    sleep 1
  done
  mapfile -t old < <(pods_on "$node")
  say "draining $node"
  mark "kubectl drain"
  k drain "$node" --ignore-daemonsets --delete-emptydir-data --timeout=180s >&2
  wait_gone "${old[@]}"
  wait_replaced "$node" 120
  [[ -z $(pods_on "$node") ]] || die "recette pods left on the drained node $node"
  mark "drained, replicas Ready elsewhere"
  k uncordon "$node" >&2
  respread
  end_case
  report
}

# Power cut: the node's container is killed (kubelet, runtime, every container at once; no
# SIGTERM, no preStop, nobody tells the API server). Requests fail only while kube-proxy still
# sends new connections to the lost front pod, until the node controller declares the node lost
# and its pods leave the endpoints.
# Detection: the controller checks every node-monitor-period (5 s) whether it has seen a lease
# renewal within node-monitor-grace-period (16 s, hack/kind/up.sh); it sees a renewal up to one
# period late, so the node is declared lost at most grace + 2 periods after it stopped
# (measured 19.5 to 24.3 s over 12 runs); later fails the case.
# Bounds: a client whose connection goes to the lost node waits its whole timeout and fails,
# so each client fails at most once per timeout while the pods are in the endpoints, plus once.
# Once they are out, new connections still fail now and then while the nodes left reprogram
# their rules and the replacements start (0 to 8 a run, measured over 5 runs): at most two per
# client. Every failure is listed with its start time (docs/exploitation.md).
# controller_flag NAME DEFAULT: the controller manager's --NAME in seconds (hack/kind/up.sh,
# scripts/ci/kind-cluster.yaml), or DEFAULT when it does not set it.
controller_flag() {
  local cmd; cmd=$(k -n kube-system get pods -l component=kube-controller-manager \
    -o jsonpath='{.items[0].spec.containers[0].command}')
  [[ -n $cmd ]] || die "no kube-controller-manager pod: cannot read --$1"
  sed -n "s/.*--$1=\([0-9]*\)s.*/\1/p" <<<"$cmd" | grep . || echo "$2"
}
mark_gap() { # mark_gap LABEL_A LABEL_B: whole seconds (rounded up) from mark A to mark B
  python3 -c '
import json, math, sys
t = {m["label"]: m["t"] for m in map(json.loads, open(sys.argv[1]))}
print(math.ceil(t[sys.argv[3]] - t[sys.argv[2]]))' "$MARKS" "$1" "$2"
}
endpoints_ready_on() { # endpoints_ready_on NODE: ready endpoints of recette's Services on NODE
  kn get endpointslices -o json | python3 -c '
import json, sys
node = sys.argv[1]
print(sum(1 for s in json.load(sys.stdin)["items"] for e in s.get("endpoints") or []
          if e.get("nodeName") == node and e.get("conditions", {}).get("ready")))' "$1"
}
case_lose-node() {
  local node engine deadline grace period detect window bound
  node=$(victim_node) engine=$(node_engine "$node")
  grace=$(controller_flag node-monitor-grace-period 40) period=$(controller_flag node-monitor-period 5)
  detect=$((grace + 2 * period))
  local late=$((2 * LOAD_CLIENTS))
  say "node-monitor-grace-period ${grace}s, node-monitor-period ${period}s: node declared lost within ${detect} s; at most $late failed requests after the endpoints change"
  # Its network, address and MAC address: a real server comes back with its own, while a
  # container engine would give the restarted node new ones (stale routes in kube-router
  # v2.1.0, stale ARP entries on the other nodes: connections lost after it returns).
  local net ip mac
  # shellcheck disable=SC2016 # a Go template
  read -r net ip mac < <("$engine" inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{$v.IPAddress}} {{$v.MacAddress}}{{end}}' "$node")
  say "stopping node $node ($engine kill; network $net, address $ip, MAC $mac)"
  mark "node stopped"
  "$engine" kill "$node" >/dev/null
  deadline=$((SECONDS + 90))
  until [[ $(node_ready "$node") != True ]]; do
    ((SECONDS < deadline)) || die "node $node still Ready 90 s after it stopped"
    sleep 0.5
  done
  mark "node declared lost"
  until (($(endpoints_ready_on "$node") == 0)); do
    ((SECONDS < deadline)) || die "endpoints on $node still ready 90 s after it stopped"
    sleep 0.5
  done
  mark "its pods out of the endpoints"
  # +1: the endpoints poll above lags the controller by up to a second.
  window=$(mark_gap "node stopped" "its pods out of the endpoints")
  ((window <= detect + 1)) || die "node $node left the endpoints ${window} s after it stopped, more than grace + 2 periods (${detect} s): the controller manager does not act as the bound assumes"
  bound=${E2E_NODE_LOSS_MAX_FAILED:-$((LOAD_CLIENTS * ((window + LOAD_TIMEOUT - 1) / LOAD_TIMEOUT + 1) + late))}
  say "${window} s in the endpoints after the stop: at most $bound failed requests"
  wait_replaced "$node" 120
  mark "replicas Ready on the other nodes"
  sleep "$MARGIN"
  load_stop
  report --max-failed "$bound" --no-failures-after "its pods out of the endpoints" --max-late "$late" \
    --window "node stopped" "replicas Ready on the other nodes"

  # The node comes back (same container, same addresses): it rejoins, its old pods are cleaned
  # up, and the replicas spread again, under a new load. New connections to the returning node
  # fail now and then for a few tens of seconds ("No route to host" while its neighbours
  # resolve it again, timeouts; 4 to 16 a run, measured over 4 runs): at most three per client.
  load_start node-back
  mark "node started"
  "$engine" network disconnect "$net" "$node" >/dev/null
  # (Docker derives the MAC address from the IP address; podman takes it explicitly.)
  local mac_args=(); [[ $engine != podman ]] || mac_args=(--mac-address "$mac")
  "$engine" network connect --ip "$ip" "${mac_args[@]}" "$net" "$node" >/dev/null
  "$engine" start "$node" >/dev/null
  deadline=$((SECONDS + 120))
  until [[ $(node_ready "$node") == True ]]; do
    ((SECONDS < deadline)) || die "node $node not Ready 120 s after it started"
    sleep 1
  done
  mark "node Ready again"
  # Every other node routes the node's pod range to it again (kube-router, BGP).
  local cidr other
  cidr=$(k get node "$node" -o jsonpath='{.spec.podCIDR}')
  for other in $(k get nodes -o name | sed 's#^node/##' | grep -vx "$node"); do
    until grep -q "via $ip " <<<"$("$engine" exec "$other" ip route show "$cidr")"; do
      ((SECONDS < deadline)) || die "$other has no route to $cidr via $ip 120 s after $node started"
      sleep 1
    done
  done
  mark "node routes back"
  kn wait --for=delete pod --field-selector "spec.nodeName=$node" --all --timeout=120s >&2
  respread
  end_case
  report --max-failed "$((3 * LOAD_CLIENTS))" --window "node started" "old pods gone"
}

# --- tests of the test: each must be caught, or the suite fails.
# (a) A rollout to a version whose readiness never succeeds: the case must fail (rollout
# timeout), while the old version keeps serving with 0 failed requests.
case_broken-rollout() {
  mark "set image api $ROLL_TAG with a readiness probe that never succeeds"
  kn patch "deployment/$API" --type=json -p "[
    {\"op\": \"replace\", \"path\": \"/spec/template/spec/containers/0/image\", \"value\": \"$API:$ROLL_TAG\"},
    {\"op\": \"replace\", \"path\": \"/spec/template/spec/containers/0/readinessProbe/httpGet/path\", \"value\": \"/never-ready\"}]" >&2
  rollout "$API" 45s
  end_case
  report
}
control_verdict() { # control_verdict NAME CAUGHT_WHEN_FAILED_IS(zero|positive) RC
  local failed; failed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["failed"])' "$WORK/load-$1.json")
  if (($3 == 0)); then echo "FAIL control $1: the case passed, the breakage went unnoticed" >&2; return 1; fi
  case $2 in
    zero) ((failed == 0)) || { echo "FAIL control $1: the old version should have served every request (failed=$failed)" >&2; return 1; } ;;
    positive) ((failed > 0)) || { echo "FAIL control $1: failed=0" >&2; return 1; } ;;
  esac
  printf '\033[1;32mcaught\033[0m control %s: the case failed as it must (exit %s, failed=%s)\n' "$1" "$3" "$failed"
}
case_control-broken-rollout() {
  local rc=0
  "$0" broken-rollout || rc=$?
  control_verdict broken-rollout zero "$rc"
  say "undo the broken rollout"
  kn rollout undo "deployment/$API" >&2
  rollout "$API"
}
# (b) A lossy change: the API without any pod for 3 s (scaled to zero, then back): failed > 0
# must be seen. (Deleting every pod at once lost only 2 to 9 requests a run once NGINX retried
# on ten entries: too close to zero for a control.)
case_lossy() {
  local old n; mapfile -t old < <(pods_of "$API_SEL")
  n=$(replicas_of "$API")
  mark "API scaled to zero for 3 s"
  kn scale "deployment/$API" --replicas=0 >&2
  wait_gone "${old[@]}"
  sleep 3
  kn scale "deployment/$API" --replicas="$n" >&2
  wait_ready_count "$API_SEL" "$n" 120
  mark "API Ready again"
  sleep "$MARGIN"
  load_stop
  report
}
case_control-lossy() {
  local rc=0
  "$0" lossy || rc=$?
  control_verdict lossy positive "$rc"
}

# --- main
if [[ ${1:-} == broken-rollout || ${1:-} == lossy ]]; then
  # A control's inner case: its own process, so its failure is an exit status.
  load_start "$1"
  "case_$1"
  exit 0
fi
# Groups: "default" (CASES_ALL, also when no case is named), "nodes" (CASES_NODES).
cases=()
for c in "${@:-default}"; do
  case $c in
    default) cases+=("${CASES_ALL[@]}") ;;
    nodes) cases+=("${CASES_NODES[@]}") ;;
    *) cases+=("$c") ;;
  esac
done
for c in "${cases[@]}"; do
  declare -F "case_$c" >/dev/null || die "unknown case '$c' (known: ${CASES_ALL[*]} ${CASES_NODES[*]})"
done
for c in "${cases[@]}"; do
  printf '\n\033[1;35m--- zero downtime: %s (load: %s req/s on %s)\033[0m\n' "$c" "$RATE" "$BASE" >&2
  if unloaded "$c"; then "case_$c"; else load_start "$c"; "case_$c"; fi
done
