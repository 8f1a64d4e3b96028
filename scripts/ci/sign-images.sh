#!/usr/bin/env bash
# For each published digest: an SPDX SBOM (syft, from the flake's locked nixpkgs, of the local
# image, so it describes the exact bytes pushed), a keyless cosign signature and an SBOM attestation (GitHub's OIDC
# identity, no key to keep), then a verification of both against this workflow's identity.
# Usage: scripts/ci/sign-images.sh   (after publish-images.sh: reads build/release/digests.json)
#   env: GHCR_TOKEN, GITHUB_ACTOR, GITHUB_SERVER_URL, GITHUB_REPOSITORY, GITHUB_WORKFLOW_REF
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
. "$(dirname "$0")/common.sh"

command -v cosign >/dev/null || die "cosign is not installed"
command -v nix >/dev/null || die "Nix is not installed (syft comes from the flake's locked nixpkgs)"
# syft from the flake's locked nixpkgs, like sbomnix and grype (sbom-images.sh).
syft() { nix run --inputs-from "$DP_ROOT" nixpkgs#syft -- "$@"; }
: "${GHCR_TOKEN:?GHCR_TOKEN is required}" "${GITHUB_ACTOR:?}" "${GITHUB_REPOSITORY:?}" "${GITHUB_WORKFLOW_REF:?}"
dir="$DP_BUILD/release"
digests="$dir/digests.json"
[[ -f $digests ]] || die "$digests is missing: run scripts/ci/publish-images.sh first"
registry=$(release_registry)

docker login "$registry" --username "$GITHUB_ACTOR" --password-stdin <<<"$GHCR_TOKEN"
trap 'docker logout "$registry" >/dev/null 2>&1 || true' EXIT

# The certificate must name this repository's release workflow, run from main or a v* tag:
# a signature made by another workflow, a branch or a pull request does not verify.
workflow=${GITHUB_WORKFLOW_REF%@*}
[[ $workflow == "$GITHUB_REPOSITORY/.github/workflows/release.yml" ]] ||
  die "signing only from the release workflow ($GITHUB_REPOSITORY/.github/workflows/release.yml), not $workflow"
identity=$(release_identity "${GITHUB_SERVER_URL:-https://github.com}" "$GITHUB_REPOSITORY")
issuer=https://token.actions.githubusercontent.com

for key in "${IMAGE_KEYS[@]}"; do
  ref=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["images"][sys.argv[2]]["ref"])' "$digests" "$key")
  sbom="$dir/$key.spdx.json"
  log "SBOM of $(local_ref "$key") -> $sbom"
  syft scan --quiet "docker:$(local_ref "$key")" --output "spdx-json=$sbom"
  python3 -c 'import json, sys; n = len(json.load(open(sys.argv[1])).get("packages", [])); print(f"{n} packages in the SBOM"); sys.exit(n == 0)' "$sbom" ||
    die "the SBOM of $key lists no package"
  log "cosign sign + attest $ref"
  cosign sign --yes "$ref"
  cosign attest --yes --type spdxjson --predicate "$sbom" "$ref"
  cosign verify --certificate-identity-regexp "$identity" --certificate-oidc-issuer "$issuer" "$ref" >/dev/null
  cosign verify-attestation --type spdxjson --certificate-identity-regexp "$identity" \
    --certificate-oidc-issuer "$issuer" "$ref" >/dev/null
  echo "- \`$ref\`: signed, SBOM attested, both verified" | gh_summary
done
