#!/usr/bin/env bash
# Runs the browser e2e (front.e2e.mjs) against a deployed front: Debian's Chromium driven by
# playwright-core; node modules installed once into the cache (lib.sh npm_deps).
# Usage: tests/e2e/front.e2e.sh --base-url URL [--no-api-control | --expect-api-down | ...]
# (options: see the header of front.e2e.mjs)
# Used by the front, compose and Kubernetes suites.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../../scripts/lib.sh"

e2e_dir="$DP_ROOT/tests/e2e"

command -v node >/dev/null 2>&1 || ensure_apt nodejs npm
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || skip "Node.js >= 20 is needed by playwright-core (found $(node --version))"
[[ -n ${CHROMIUM:-} ]] || ensure_chromium

# Installed once per lock file in the cache; the lock guards suites running concurrently.
mkdir -p "$DP_CACHE/npm"
# shellcheck disable=SC2016 # expanded by the inner bash
node_modules=$(flock "$DP_CACHE/npm/.e2e.lock" bash -c '. "$1/scripts/lib.sh"; npm_deps "$2"' _ "$DP_ROOT" "$e2e_dir")

export DP_E2E_NODE_PREFIX="${node_modules%/node_modules}"
# Its skipped tests fail under CI=true unless tests/allowed-skips.txt lists them.
node_tests "$e2e_dir/front.e2e.mjs" "$@"
