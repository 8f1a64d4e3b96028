#!/usr/bin/env bash
# Runs every test suite that can run on this machine, in dependency order, and prints a
# summary. A suite exits 0 (passed), 77 (skipped, with its reason) or anything else (failed).
# Usage: scripts/test.sh [SUITE...]   (default: all, in the order below)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# name | command (relative to the repository root)
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
  "e2e-k8s|tests/e2e/k8s-suite.sh"
  "bench|bench/run.sh --smoke"
  "docs|docs/tools/check.sh"
)

want=("$@")
for w in "${want[@]}"; do
  printf '%s\n' "${SUITES[@]}" | grep -q "^$w|" || die "unknown suite '$w' (known: $(printf '%s\n' "${SUITES[@]}" | cut -d'|' -f1 | xargs))"
done
selected() { ((${#want[@]} == 0)) && return 0; local w; for w in "${want[@]}"; do [[ $w == "$1" ]] && return 0; done; return 1; }

mkdir -p "$DP_BUILD/test-logs"
passed=() failed=() skipped=()
start_all=$SECONDS
for entry in "${SUITES[@]}"; do
  name=${entry%%|*} cmd=${entry#*|}
  selected "$name" || continue
  printf '\n\033[1;36m######## suite %s: %s\033[0m\n' "$name" "$cmd"
  t0=$SECONDS rc=0
  (cd "$DP_ROOT" && bash -o pipefail -c "$cmd" 2>&1 | tee "$DP_BUILD/test-logs/$name.log") || rc=$?
  dt=$((SECONDS - t0))
  case $rc in
    0) passed+=("$name (${dt}s)") ;;
    77) skipped+=("$name: $(grep -m1 -o 'SKIPPED: .*' "$DP_BUILD/test-logs/$name.log" | sed 's/\x1b\[[0-9;]*m//g' || echo 'no reason given')") ;;
    *) failed+=("$name (exit $rc, log: build/test-logs/$name.log)") ;;
  esac
done

printf '\n\033[1m======== test summary (%ss) ========\033[0m\n' "$((SECONDS - start_all))"
for s in "${passed[@]}"; do echo "PASSED   $s"; done
for s in "${skipped[@]}"; do echo "SKIPPED  $s"; done
for s in "${failed[@]}"; do echo "FAILED   $s"; done
echo "suites: ${#passed[@]} passed, ${#failed[@]} failed, ${#skipped[@]} skipped"
((${#failed[@]} == 0))
