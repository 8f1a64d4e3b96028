#!/usr/bin/env bash
# Verifies released image digests before they are deployed: each REF must name this project's
# registry and owner (REGISTRY, default ghcr.io; GITHUB_REPOSITORY_OWNER), all checked before
# any network call; then cosign must verify, for each, a signature AND an SPDX SBOM attestation
# made by the release workflow (keyless: release_identity's certificate identity, GitHub's OIDC
# issuer, the public Sigstore trust root and transparency log). The first failure stops it.
# Usage: scripts/ci/verify-images.sh [--key PUBLIC_KEY] REF...
#   --key   offline tests only (tests/ci/test_verify_images.py, and tests/e2e/release-chain.sh
#           through deploy-recette.sh's DEPLOY_VERIFY_KEY): a local public key instead of the
#           keyless identity, without the transparency log. Refused on GitHub Actions.
#   env: GITHUB_REPOSITORY_OWNER, GITHUB_REPOSITORY, GITHUB_SERVER_URL (default https://github.com),
#        REGISTRY; GHCR_PULL_USER + GHCR_PULL_TOKEN for a private package (given to cosign for
#        the release registry only, in a temporary Docker config).
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
. "$(dirname "$0")/common.sh"

key=
if [[ ${1:-} == --key ]]; then
  [[ ${GITHUB_ACTIONS:-} != true ]] ||
    die "--key is for offline tests only: on GitHub Actions the release identity (keyless) is required"
  key=${2:?--key needs a public key file}
  shift 2
fi
(($#)) || die "usage: $0 [--key PUBLIC_KEY] REF..."

# Registry and owner first: a foreign reference is refused before anything contacts it.
for ref in "$@"; do check_release_digest "$ref"; done

command -v cosign >/dev/null || die "cosign is not installed (the deploy job installs it with sigstore/cosign-installer)"
if [[ -n $key ]]; then
  trust=(--key "$key" --insecure-ignore-tlog)
  warn "verifying with the local key $key, without transparency log (tests only)"
else
  : "${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is required (the release identity)}"
  trust=(--certificate-identity-regexp "$(release_identity "${GITHUB_SERVER_URL:-https://github.com}" "$GITHUB_REPOSITORY")"
    --certificate-oidc-issuer https://token.actions.githubusercontent.com)
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -n ${GHCR_PULL_TOKEN:-} ]]; then
  # cosign reads the registry credentials of DOCKER_CONFIG: this registry's, nothing else.
  registry_auth_json "$(release_registry)" "$work/config.json"
  export DOCKER_CONFIG=$work
fi

# cosign's last error lines, without its warnings (the test key's "Skipping tlog verification").
cosign_error() { sed '/^WARNING/d' "$work/cosign.log" | tail -n 2; }

for ref in "$@"; do
  # cosign verify also accepts an attestation as a signature (cosign v3 bundles): the payloads
  # it verified must include a signature's (type cosign/sign/v1, or the older simple signing).
  cosign verify "${trust[@]}" "$ref" >"$work/signatures.json" 2>"$work/cosign.log" ||
    die "$ref: signature verification failed: $(cosign_error)"
  python3 - "$work/signatures.json" <<'PY' || die "$ref: signature verification failed: cosign verified an attestation, not a signature"
import json, sys
signature_types = {"https://sigstore.dev/cosign/sign/v1", "cosign container image signature"}
payloads = json.load(open(sys.argv[1]))
sys.exit(not any(p.get("critical", {}).get("type") in signature_types for p in payloads))
PY
  cosign verify-attestation --type spdxjson "${trust[@]}" "$ref" >/dev/null 2>"$work/cosign.log" ||
    die "$ref: SBOM attestation (spdxjson) verification failed: $(cosign_error)"
  log "$ref: signature and SBOM attestation verified"
done
