#!/usr/bin/env bash
# Pushes both images (loaded in Docker under the contract's names) to GHCR with two tags,
# the workspace version and the short commit, and records the digests that were pushed:
# recette deploys those digests, never a tag.
# Usage: scripts/ci/publish-images.sh
#   env: GHCR_TOKEN, GITHUB_ACTOR, GITHUB_REPOSITORY_OWNER (set by GitHub Actions),
#        REGISTRY (default ghcr.io)
# Writes build/release/digests.json and, on GitHub, the step outputs api-ref and front-ref.
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
. "$(dirname "$0")/common.sh"

: "${GHCR_TOKEN:?GHCR_TOKEN is required}" "${GITHUB_ACTOR:?}" "${GITHUB_REPOSITORY_OWNER:?}"
registry=${REGISTRY:-ghcr.io}
owner=${GITHUB_REPOSITORY_OWNER,,} # registry paths are lowercase
version=$(workspace_version)
revision=$(git -C "$DP_ROOT" rev-parse HEAD)
short=${revision:0:7}
dir="$DP_BUILD/release"
mkdir -p "$dir"

# A v* tag must name the version the images carry.
if [[ ${GITHUB_REF_TYPE:-} == tag && ${GITHUB_REF_NAME:-} != "v$version" ]]; then
  die "tag ${GITHUB_REF_NAME} does not match the workspace version $version (Cargo.toml)"
fi

docker login "$registry" --username "$GITHUB_ACTOR" --password-stdin <<<"$GHCR_TOKEN"
trap 'docker logout "$registry" >/dev/null 2>&1 || true' EXIT

declare -A refs
for key in "${IMAGE_KEYS[@]}"; do
  local_image=$(local_ref "$key")
  # The image must come from this very commit, not from a stale or dirty build.
  label=$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.revision"}}' "$local_image")
  [[ $label == "$revision" ]] || die "$local_image has revision '$label', this commit is $revision"
  repo="$registry/$owner/$(contract_name "$key")"
  for tag in "$version" "$short"; do
    docker tag "$local_image" "$repo:$tag"
    docker push --quiet "$repo:$tag"
  done
  digest=$(docker image inspect -f '{{range .RepoDigests}}{{println .}}{{end}}' "$local_image" | grep -m1 "^$repo@sha256:") ||
    die "no digest recorded for $repo after the push"
  refs[$key]=$digest
  gh_output "$key-ref" "$digest"
  log "pushed $repo:{$version,$short} = $digest"
done

python3 - "$dir/digests.json" "$version" "$revision" "${refs[api]}" "${refs[front]}" <<'PY'
import json, sys
path, version, revision, api, front = sys.argv[1:]
refs = {"api": api, "front": front}
doc = {"version": version, "revision": revision,
       "images": {k: {"ref": r, "repository": r.split("@")[0], "digest": r.split("@")[1]} for k, r in refs.items()}}
json.dump(doc, open(path, "w"), indent=2)
PY
{
  echo "### Published images (deploy these digests)"
  echo "| image | tags | reference |"
  echo "|---|---|---|"
  for key in "${IMAGE_KEYS[@]}"; do echo "| $key | \`$version\`, \`$short\` | \`${refs[$key]}\` |"; done
} | gh_summary
log "digests recorded in $dir/digests.json"
