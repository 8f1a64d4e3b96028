#!/usr/bin/env bash
# For each published digest: an SPDX SBOM (syft, of the local image, so it describes the exact
# bytes pushed), a cosign signature and an SBOM attestation, then a verification of both.
# On GitHub: keyless (the release workflow's OIDC identity, no key to keep), syft from the
# flake's locked nixpkgs. With --key (offline tests only, refused on GitHub Actions: the local
# release chain of tests/e2e/release-chain.sh): a local cosign key, no Fulcio nor transparency
# log, syft built from the Go module proxy.
# Usage: scripts/ci/sign-images.sh [--key PRIVATE_KEY]   (after publish-images.sh: reads
#        build/release/digests.json)
#   env: GHCR_TOKEN, GITHUB_ACTOR, GITHUB_SERVER_URL, GITHUB_REPOSITORY, GITHUB_WORKFLOW_REF
#        (with --key: GHCR_TOKEN and GITHUB_ACTOR only; COSIGN_PASSWORD for the key)
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
. "$(dirname "$0")/common.sh"

signing_key=
if [[ ${1:-} == --key ]]; then
  [[ ${GITHUB_ACTIONS:-} != true ]] ||
    die "--key is for offline tests only: on GitHub Actions the release signs keyless"
  signing_key=${2:?--key needs a private key file}
  [[ -f $signing_key && -f ${signing_key%.key}.pub ]] ||
    die "--key $signing_key: the key pair ${signing_key%.key}.{key,pub} is missing"
fi
command -v cosign >/dev/null || die "cosign is not installed"
: "${GHCR_TOKEN:?GHCR_TOKEN is required}" "${GITHUB_ACTOR:?}"
dir="$DP_BUILD/release"
digests="$dir/digests.json"
[[ -f $digests ]] || die "$digests is missing: run scripts/ci/publish-images.sh first"
registry=$(release_registry)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

docker_config=$work/docker
mkdir -p "$docker_config"
export DOCKER_CONFIG=$docker_config # the token stays in this run's temporary directory
docker login "$registry" --username "$GITHUB_ACTOR" --password-stdin <<<"$GHCR_TOKEN" >/dev/null

if [[ -n $signing_key ]]; then
  syft_bin=$(go_tool github.com/anchore/syft/cmd/syft v1.57.2 syft)
  syft() { "$syft_bin" "$@"; }
  # No Fulcio, no Rekor, no timestamp authority: a signing config with no service and an empty
  # trusted root, so that cosign asks no TUF repository either.
  export TUF_ROOT=$work/tuf
  cosign signing-config create --out "$work/signing-config.json" >/dev/null
  cosign trusted-root create --out "$work/trusted-root.json" >/dev/null
  sign_with=(--key "$signing_key" --signing-config "$work/signing-config.json" --trusted-root "$work/trusted-root.json")
  verify_with=(--key "${signing_key%.key}.pub" --insecure-ignore-tlog)
  warn "signing with the local key $signing_key, without transparency log (tests only)"
else
  command -v nix >/dev/null || die "Nix is not installed (syft comes from the flake's locked nixpkgs)"
  # syft from the flake's locked nixpkgs, like sbomnix and grype (sbom-images.sh).
  syft() { nix run --inputs-from "$DP_ROOT" nixpkgs#syft -- "$@"; }
  : "${GITHUB_REPOSITORY:?}" "${GITHUB_WORKFLOW_REF:?}"
  # The certificate must name this repository's release workflow, run from main or a v* tag:
  # a signature made by another workflow, a branch or a pull request does not verify.
  workflow=${GITHUB_WORKFLOW_REF%@*}
  [[ $workflow == "$GITHUB_REPOSITORY/.github/workflows/release.yml" ]] ||
    die "signing only from the release workflow ($GITHUB_REPOSITORY/.github/workflows/release.yml), not $workflow"
  sign_with=()
  verify_with=(--certificate-identity-regexp "$(release_identity "${GITHUB_SERVER_URL:-https://github.com}" "$GITHUB_REPOSITORY")"
    --certificate-oidc-issuer https://token.actions.githubusercontent.com)
fi

for key in "${IMAGE_KEYS[@]}"; do
  ref=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["images"][sys.argv[2]]["ref"])' "$digests" "$key")
  sbom="$dir/$key.spdx.json"
  log "SBOM of $(local_ref "$key") -> $sbom"
  syft scan --quiet "docker:$(local_ref "$key")" --output "spdx-json=$sbom"
  python3 -c 'import json, sys; n = len(json.load(open(sys.argv[1])).get("packages", [])); print(f"{n} packages in the SBOM"); sys.exit(n == 0)' "$sbom" ||
    die "the SBOM of $key lists no package"
  log "cosign sign + attest $ref"
  cosign sign --yes "${sign_with[@]}" "$ref"
  cosign attest --yes "${sign_with[@]}" --type spdxjson --predicate "$sbom" "$ref"
  cosign verify "${verify_with[@]}" "$ref" >/dev/null
  cosign verify-attestation --type spdxjson "${verify_with[@]}" "$ref" >/dev/null
  echo "- \`$ref\`: signed, SBOM attested, both verified" | gh_summary
done
