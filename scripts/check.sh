#!/usr/bin/env bash
# The fast gate: the suites that need no containers, cluster or browser.
set -euo pipefail
exec "$(dirname "$0")/test.sh" rust nix manifests ci
