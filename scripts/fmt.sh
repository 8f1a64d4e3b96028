#!/usr/bin/env bash
# Format everything that has a formatter.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
"$DP_ROOT/scripts/bootstrap.sh"
cargo fmt --all --manifest-path "$DP_ROOT/Cargo.toml"
if [[ -f $DP_ROOT/nix/tools.sh ]]; then "$DP_ROOT/nix/tools.sh" fmt; fi
