#!/usr/bin/env bash
# Runs the browser e2e (front.e2e.mjs) against a deployed front: Debian's Chromium driven by
# playwright-core, node modules installed once into the cache, keyed by the lock file.
# Usage: tests/e2e/front.e2e.sh --base-url URL [--no-api-control | --expect-api-down | ...]
# (options: see the header of front.e2e.mjs)
# Used by the front, compose and Kubernetes suites.
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"

e2e_dir="$DP_ROOT/tests/e2e"

command -v node >/dev/null 2>&1 || ensure_apt nodejs npm
node_major=$(node -p 'process.versions.node.split(".")[0]')
((node_major >= 20)) || skip "Node.js >= 20 is needed by playwright-core (found $(node --version))"
[[ -x ${CHROMIUM:-/usr/bin/chromium} ]] || ensure_apt chromium

# One install per lock file content, shared by every clone on this machine.
lock_hash=$(cat "$e2e_dir/package.json" "$e2e_dir/package-lock.json" | sha256sum | cut -c1-16)
prefix="$DP_CACHE/node/e2e-$lock_hash"
mkdir -p "$DP_CACHE/node"
(
  flock 9 # suites may run this concurrently (front, compose, Kubernetes)
  if [[ ! -f $prefix/.ok ]]; then
    log "installing the e2e node modules into $prefix"
    rm -rf "$prefix" && mkdir -p "$prefix"
    cp "$e2e_dir/package.json" "$e2e_dir/package-lock.json" "$e2e_dir/.npmrc" "$prefix/"
    (cd "$prefix" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
    touch "$prefix/.ok"
  fi
) 9>"$DP_CACHE/node/.e2e.lock"

export DP_E2E_NODE_PREFIX="$prefix"
exec node "$e2e_dir/front.e2e.mjs" "$@"
