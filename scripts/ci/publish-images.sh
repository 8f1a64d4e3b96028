#!/usr/bin/env bash
# Pushes both images (loaded in Docker under the contract's names) to GHCR, tagged with the
# short commit, and with the workspace version only from a v* tag (a push to main never moves
# the version tag); then reads each digest back from the registry (crane, not the local
# daemon's record) and records it: recette deploys those digests, never a tag.
# Usage: scripts/ci/publish-images.sh
#   env: GHCR_TOKEN, GITHUB_ACTOR, GITHUB_REPOSITORY_OWNER (set by GitHub Actions),
#        REGISTRY (default ghcr.io)
# Writes build/release/digests.json and, on GitHub, the step outputs api-ref and front-ref.
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
. "$(dirname "$0")/common.sh"

: "${GHCR_TOKEN:?GHCR_TOKEN is required}" "${GITHUB_ACTOR:?}" "${GITHUB_REPOSITORY_OWNER:?}"
registry=$(release_registry)
version=$(workspace_version)
revision=$(git -C "$DP_ROOT" rev-parse HEAD)
short=${revision:0:7}
dir="$DP_BUILD/release"
mkdir -p "$dir"

tags=("$short")
if [[ ${GITHUB_REF_TYPE:-} == tag ]]; then
  # A v* tag must name the version the images carry.
  [[ ${GITHUB_REF_NAME:-} == "v$version" ]] ||
    die "tag ${GITHUB_REF_NAME:-} does not match the workspace version $version (Cargo.toml)"
  tags+=("$version")
fi
crane=$(go_tool github.com/google/go-containerregistry/cmd/crane v0.22.1 crane)

docker login "$registry" --username "$GITHUB_ACTOR" --password-stdin <<<"$GHCR_TOKEN"
trap 'docker logout "$registry" >/dev/null 2>&1 || true' EXIT

declare -A refs
for key in "${IMAGE_KEYS[@]}"; do
  local_image=$(local_ref "$key")
  # The image must come from this very commit, not from a stale or dirty build.
  label=$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.revision"}}' "$local_image")
  [[ $label == "$revision" ]] || die "$local_image has revision '$label', this commit is $revision"
  repo=$(release_repository "$key") # owner lowercased: registry paths are lowercase
  digest=
  for tag in "${tags[@]}"; do
    docker tag "$local_image" "$repo:$tag"
    docker push --quiet "$repo:$tag" >/dev/null
    # What the registry serves under that tag now (crane reads docker login's credentials).
    served=$("$crane" digest "$repo:$tag") || die "cannot read $repo:$tag back from the registry"
    [[ $served =~ ^sha256:[0-9a-f]{64}$ ]] || die "$repo:$tag: the registry answered '$served', not a digest"
    [[ -z $digest || $served == "$digest" ]] || die "$repo: tags $tag and ${tags[0]} name different digests"
    digest=$served
  done
  refs[$key]=$repo@$digest
  gh_output "$key-ref" "${refs[$key]}"
  log "pushed $repo:{$(IFS=,; echo "${tags[*]}")} = ${refs[$key]}"
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
  # shellcheck disable=SC2016 # backquotes are Markdown here
  for key in "${IMAGE_KEYS[@]}"; do echo "| $key | $(printf '`%s` ' "${tags[@]}")| \`${refs[$key]}\` |"; done
} | gh_summary
log "digests recorded in $dir/digests.json"
