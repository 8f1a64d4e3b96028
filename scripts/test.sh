#!/usr/bin/env bash
# Runs every test suite that can run on this machine, in dependency order, and prints a
# summary. A suite exits 0 (passed), 77 (skipped, with its reason) or anything else (failed).
# Exit 77 is a skip only when the suite's own top script called scripts/lib.sh's skip; a 77
# from a nested script (or with no skip at all) fails the suite, and so does an exit 0 that
# hides a nested skip. Under CI=true a skip fails the run, except skip_past_deadline when
# DATAPRESS_DEADLINE is set (a cold Kubernetes build that cannot finish in time).
# Usage: scripts/test.sh [SUITE...]   (default: all, in the order below)
# Env: DATAPRESS_TEST_SUITES=FILE  the suites of FILE (lines as in SUITES below) instead;
#                                  used by the runner's self-test (tests/ci/test_runner.py)
#      DATAPRESS_TEST_LOGS=DIR     logs and status files (default: build/test-logs)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

# name | command (relative to the repository root) [| needs=SUITE]
# needs=SUITE: when SUITE was skipped in this run, this suite is skipped too, for the same
# reason and with the same standing under CI; not when KUBECONFIG names another cluster.
SUITES=(
  "rust|scripts/check-rust.sh"
  "nix|nix/tools.sh lint"
  "manifests|kustomize/tests/validate.sh"
  "front|tests/e2e/front.sh"
  "images|images/repro.sh"
  "compose|tests/e2e/compose.sh"
  # After compose: the Docker engine runs and the images exist, so the image tests run too.
  "ci|tests/ci/run.sh"
  "cluster|DATAPRESS_CLUSTER_KEEP=1 hack/cluster/smoke.sh"
  # On the cluster the cluster suite leaves running.
  "e2e-k8s|tests/e2e/k8s-suite.sh|needs=cluster"
  # Three nodes (kind), once the single-node cluster is down: drain and node loss under load.
  "nodes|hack/kind/suite.sh|needs=cluster"
  "bench|bench/run.sh --smoke"
  "docs|docs/tools/check.sh"
)
if [[ -n ${DATAPRESS_TEST_SUITES:-} ]]; then
  mapfile -t SUITES < <(grep -v '^[[:space:]]*\(#\|$\)' "$DATAPRESS_TEST_SUITES")
fi

want=("$@")
for w in "${want[@]}"; do
  printf '%s\n' "${SUITES[@]}" | grep -q "^$w|" || die "unknown suite '$w' (known: $(printf '%s\n' "${SUITES[@]}" | cut -d'|' -f1 | xargs))"
done
selected() { ((${#want[@]} == 0)) && return 0; local w; for w in "${want[@]}"; do [[ $w == "$1" ]] && return 0; done; return 1; }

strict=0
[[ ${CI:-} != true ]] || strict=1
logs=${DATAPRESS_TEST_LOGS:-$DP_BUILD/test-logs}
mkdir -p "$logs"
passed=() failed=() skipped=()
declare -A skip_kind=() skip_reason=() test_skips=()
start_all=$SECONDS

# records STATUS_FILE TYPE [WHERE]: the reasons of the status file's records of that type.
records() { awk -F'\t' -v t="$2" -v w="${3:-}" '$1 == t && (w == "" || $2 == w) { print $NF }' "$1"; }

# judge NAME RC SECONDS: sorts the suite into passed, skipped or failed.
judge() {
  local name=$1 rc=$2 dt=$3 status="$logs/$1.status" nested top kind
  nested=$(records "$status" skip nested | head -n1)
  top=$(records "$status" skip top | head -n1)
  case $rc in
    0)
      if [[ -n $nested ]]; then
        failed+=("$name (${dt}s): exit 0, but a nested script skipped: $nested")
      else
        passed+=("$name (${dt}s)")
      fi
      return ;;
    77)
      if [[ -n $nested ]]; then
        failed+=("$name (${dt}s): exit 77 from a nested script (only the suite's own preconditions may skip): $nested"); return
      elif [[ -z $top ]]; then
        failed+=("$name (${dt}s): exit 77 without scripts/lib.sh skip (a tool's own exit code?)"); return
      fi
      kind=$(awk -F'\t' '$1 == "skip" && $2 == "top" { print $3; exit }' "$status")
      skip_verdict "$name" "$dt" "$kind" "$top" ;;
    *) failed+=("$name (${dt}s): exit $rc, log: ${logs#"$DP_ROOT"/}/$name.log") ;;
  esac
}

# skip_verdict NAME SECONDS KIND REASON: a skip, or under CI=true a failure unless accepted.
skip_verdict() {
  local name=$1 dt=$2 kind=$3 reason=$4
  skip_kind[$name]=$kind skip_reason[$name]=$reason
  if ((!strict)); then
    skipped+=("$name (${dt}s): $reason")
  elif [[ $kind == deadline && -n ${DATAPRESS_DEADLINE:-} ]]; then
    skipped+=("$name (${dt}s): $reason [accepted under CI: past DATAPRESS_DEADLINE]")
  else
    failed+=("$name (${dt}s): skipped under CI=true: $reason")
  fi
}

for entry in "${SUITES[@]}"; do
  IFS='|' read -r name cmd opts <<<"$entry"
  selected "$name" || continue
  : >"$logs/$name.status"
  dep=${opts#needs=}
  if [[ $opts == needs=* && -z ${KUBECONFIG:-} && -n ${skip_kind[$dep]:-} ]]; then
    printf '\n\033[1;36m######## suite %s: not run, suite %s was skipped\033[0m\n' "$name" "$dep"
    skip_verdict "$name" 0 "${skip_kind[$dep]}" "needs suite $dep, skipped: ${skip_reason[$dep]}"
    continue
  fi
  printf '\n\033[1;36m######## suite %s: %s\033[0m\n' "$name" "$cmd"
  t0=$SECONDS rc=0
  # The subshell's PID is the suite's top process: bash -c execs a single command.
  (
    cd "$DP_ROOT"
    export DP_SUITE=$name DP_SUITE_STATUS="$logs/$name.status" DP_SUITE_PID=$BASHPID
    exec bash -o pipefail -c "$cmd"
  ) 2>&1 | tee "$logs/$name.log" || rc=$?
  judge "$name" "$rc" "$((SECONDS - t0))"
  test_skips[$name]=$(awk -F'\t' '$1 == "test-skip" { printf "  test skipped (%s): %s %s: %s\n", $5, $2, $3, $4 }' "$logs/$name.status")
done

printf '\n\033[1m======== test summary (%ss) ========\033[0m\n' "$((SECONDS - start_all))"
show() { # show WORD LINE: the line, then the suite's skipped tests
  echo "$1 $2"
  local skips=${test_skips[${2%% (*}]:-}
  if [[ -n $skips ]]; then printf '%s\n' "$skips"; fi
}
for s in "${passed[@]}"; do show "PASSED  " "$s"; done
for s in "${skipped[@]}"; do show "SKIPPED " "$s"; done
for s in "${failed[@]}"; do
  show "FAILED  " "$s"
  # A suite that ran and failed: its last failure lines (scripts/lib.sh die, verdict lines),
  # so a truncated CI log still says why. (A suite that did not run has no log of this run.)
  [[ $s == *", log: "* ]] || continue
  sed 's/\x1b\[[0-9;]*m//g' "$logs/${s%% (*}.log" | awk '/FAIL|[Ee]rror:/' | tail -n 8 | sed 's/^/    /' | cut -c1-240
done
echo "suites: ${#passed[@]} passed, ${#failed[@]} failed, ${#skipped[@]} skipped"
((${#failed[@]} == 0))
