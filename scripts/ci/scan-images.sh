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
  trivy convert --format table --severity HIGH,CRITICAL "$dir/$key-trivy.json"
  python3 - "$ref" "$dir/$key-trivy.json" <<'PY' | tee -a "${GITHUB_STEP_SUMMARY:-/dev/null}" || status=1
import json, sys
ref, path = sys.argv[1], sys.argv[2]
results = json.load(open(path)).get("Results") or []
packages = sum(len(r.get("Packages") or []) for r in results)
fixable = [
    (v["VulnerabilityID"], v.get("PkgName", "?"), v.get("InstalledVersion", "?"), v["FixedVersion"], v["Severity"])
    for r in results for v in (r.get("Vulnerabilities") or [])
    if v.get("Severity") in ("HIGH", "CRITICAL") and v.get("FixedVersion")
]
targets = ", ".join(sorted({f'{r.get("Type")}:{r.get("Target")}' for r in results})) or "none"
print(f"- `{ref}`: {packages} packages found ({targets}); {len(fixable)} fixable HIGH/CRITICAL")
for vid, pkg, have, fix, sev in fixable:
    print(f"  - {sev} {vid} in {pkg} {have} (fixed in {fix})")
if packages == 0:
    print(f"  - FAIL: Trivy found no package in {ref}: the image gives the scanner nothing to check")
sys.exit(1 if packages == 0 or fixable else 0)
PY
done
((status == 0)) || die "image scan failed (see above)"
log "both images scanned: packages found, no fixable HIGH/CRITICAL vulnerability"
