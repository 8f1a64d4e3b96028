#!/usr/bin/env bash
# Rust quality gate: format, clippy with warnings denied, all cargo tests.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
"$DP_ROOT/scripts/bootstrap.sh"
cd "$DP_ROOT"
log "cargo fmt --check"; cargo fmt --all -- --check
log "cargo clippy -D warnings"; cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"; cargo test --workspace --locked
# The API picks its scheduler from the CPUs it may use: one CPU (a pod limited to one
# core, the bench) gets the single-threaded runtime, so its lifecycle is tested there too.
if (($(nproc) > 1)) && command -v taskset >/dev/null; then
  log "cargo test (API integration tests on one CPU)"; taskset -c 0 cargo test -p datapress-api --locked --test http --test lifecycle
fi
