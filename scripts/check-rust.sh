#!/usr/bin/env bash
# Rust quality gate: format, clippy with warnings denied, all cargo tests.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
"$DP_ROOT/scripts/bootstrap.sh"
cd "$DP_ROOT"
log "cargo fmt --check"; cargo fmt --all -- --check
log "cargo clippy -D warnings"; cargo clippy --workspace --all-targets --locked -- -D warnings
log "cargo test"; cargo test --workspace --locked
