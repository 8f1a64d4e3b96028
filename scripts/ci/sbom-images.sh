#!/usr/bin/env bash
# The SBOM of each Nix image's closure (sbomnix, from the flake's locked nixpkgs), scanned by
# grype (same nixpkgs): Trivy finds no OS package database in a Nix image, so it sees only
# the API's crates. Fails on a fixable HIGH/CRITICAL vulnerability, on an empty inventory and
# when the front's lacks NGINX, OpenSSL or the C library (scripts/ci/sbom_gate.py).
# GitHub only: it needs Nix inputs and grype's vulnerability database.
# Usage: scripts/ci/sbom-images.sh   (build/release/<key>-sbom.{cdx.json,spdx.json,csv}, <key>-grype.json)
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
. "$(dirname "$0")/common.sh"

command -v nix >/dev/null || die "Nix is not installed (this script runs on GitHub Actions, where Nix can fetch its inputs)"
dir="$DP_BUILD/release"
mkdir -p "$dir"
cd "$DP_ROOT"

# What each inventory must name. The API image holds one static binary: its crates are in it
# (cargo-auditable, scanned by Trivy) and so is its C library (musl, from the Rust toolchain).
declare -A require=([api]="datapress-api" [front]="nginx openssl glibc|musl")

status=0
for key in "${IMAGE_KEYS[@]}"; do
  log "sbomnix .#$key-image-closure"
  nix run --inputs-from . nixpkgs#sbomnix -- ".#$key-image-closure" \
    --cdx "$dir/$key-sbom.cdx.json" --spdx "$dir/$key-sbom.spdx.json" --csv "$dir/$key-sbom.csv"
  log "grype sbom:$dir/$key-sbom.cdx.json"
  nix run --inputs-from . nixpkgs#grype -- "sbom:$dir/$key-sbom.cdx.json" --output json --file "$dir/$key-grype.json"
  args=()
  for r in ${require[$key]}; do args+=(--require "$r"); done
  python3 scripts/ci/sbom_gate.py "$(local_ref "$key")" "$dir/$key-sbom.cdx.json" "$dir/$key-grype.json" "${args[@]}" |
    tee -a "${GITHUB_STEP_SUMMARY:-/dev/null}" || status=1
done
((status == 0)) || die "SBOM gate failed (see above)"
log "both SBOMs scanned: inventories complete, no fixable HIGH/CRITICAL vulnerability"
