#!/usr/bin/env bash
# Scans both images (loaded in Docker under the contract's names) with Trivy. Fails on a
# HIGH or CRITICAL vulnerability that has a fix, and fails when Trivy finds no package at
# all: an empty inventory means the scanner saw nothing, which proves nothing.
# Usage: scripts/ci/scan-images.sh   (reports in build/release/<key>-trivy.json)
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
. "$(dirname "$0")/common.sh"

command -v trivy >/dev/null || die "trivy is not installed"
dir="$DP_BUILD/release"
mkdir -p "$dir"

status=0
for key in "${IMAGE_KEYS[@]}"; do
  ref=$(local_ref "$key")
  log "trivy: $ref"
  docker save -o "$dir/$key.tar" "$ref"
  trivy image --quiet --input "$dir/$key.tar" --scanners vuln --list-all-pkgs \
    --format json --output "$dir/$key-trivy.json"
  rm -f "$dir/$key.tar"
  python3 "$DP_ROOT/scripts/ci/trivy_gate.py" "$ref" "$dir/$key-trivy.json" | tee -a "${GITHUB_STEP_SUMMARY:-/dev/null}" || status=1
done
((status == 0)) || die "image scan failed (see above)"
log "both images scanned: packages found, no fixable HIGH/CRITICAL vulnerability"
