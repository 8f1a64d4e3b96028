#!/usr/bin/env bash
# Zero downtime, proven: each case runs one disruption of recette under the load harness
# (tests/e2e/loadgen.py: keep-alive and new-connection clients, page + API routes, through
# the front's NodePort on 127.0.0.1) and fails if any step fails, if a rollout does not
# complete in time, if the new version is not what serves afterwards, or if a request fails.
# The load runs until every old pod is gone, plus a margin.
#
# Usage: tests/e2e/k8s_disruptions.sh [CASE...]   (default: every case, then the controls)
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
CASES_ALL=(api-rollout front-rollout config-change rollout-undo delete-api-pod delete-front-pod
  kill-api-container kill-front-container control-broken-rollout control-lossy)
API=datapress-api FRONT=datapress-front
API_SEL=app.kubernetes.io/name=datapress-api FRONT_SEL=app.kubernetes.io/name=datapress-front
mkdir -p "$WORK"

k() { "$DP_ROOT/hack/tools/kubectl" "$@"; }
kn() { k -n "$NS" "$@"; }
say() { printf '\033[1;35m  · %s\033[0m\n' "$*" >&2; }
trap 'printf "\033[1;31mFAIL: line %s: %s (exit %s)\033[0m\n" "$LINENO" "$BASH_COMMAND" "$?" >&2' ERR

# --- the load, one run per case
loader=""
load_start() { # load_start CASE: starts the harness, returns once its clients run
  CASE=$1 RESULT="$WORK/load-$1.json" MARKS="$WORK/marks-$1.jsonl"
  rm -f "$RESULT" "$MARKS" "$WORK/stop" "$WORK/ready"
  python3 "$LOADGEN" run --base "$BASE" --out "$RESULT" --rate "$RATE" --marks "$MARKS" \
    --stop-file "$WORK/stop" --ready-file "$WORK/ready" --max-seconds 420 &
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
config_overlay() { # config_overlay BANNER: a kustomization on top of recette, at the rollout tag
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
# (b) A lossy change: every API pod deleted at once, with no grace: failed > 0 must be seen.
case_lossy() {
  local old n; mapfile -t old < <(pods_of "$API_SEL")
  n=$(replicas_of "$API")
  mark "delete every API pod at once, no grace"
  kn delete "${old[@]}" --grace-period=0 --force >&2 2>/dev/null
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
cases=("$@")
((${#cases[@]})) || cases=("${CASES_ALL[@]}")
for c in "${cases[@]}"; do
  declare -F "case_$c" >/dev/null || die "unknown case '$c' (known: ${CASES_ALL[*]})"
done
for c in "${cases[@]}"; do
  printf '\n\033[1;35m--- zero downtime: %s (load: %s req/s on %s)\033[0m\n' "$c" "$RATE" "$BASE" >&2
  if [[ $c == control-* ]]; then "case_$c"; else load_start "$c"; "case_$c"; fi
done
