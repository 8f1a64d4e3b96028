#!/usr/bin/env bash
# The "next version" of the rollout cases: both images built again from the same sources
# with another revision (the page's meta and the API's GET / show it), tagged
# <version>-rollout. Skipped when that tag already carries the expected revision. Shares
# images/build.sh's cargo target dir (only the API crate is rebuilt); the bench rebuilds the
# binary of the revision it records (scripts/build-api.sh), whatever this left there.
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"

version=$(workspace_version)
label() { docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.revision"}}' "$1" 2>/dev/null; }
rev=$(label "datapress-api:$version") || die "image datapress-api:$version is missing: run 'make images' first"
roll_rev="${rev:0:12}.rollout" tag="$version-rollout"
if [[ $(label "datapress-api:$tag") == "$roll_rev" && $(label "datapress-front:$tag") == "$roll_rev" ]]; then
  log "rollout images $tag (revision $roll_rev) already built"
  exit 0
fi
log "building the rollout images $tag (revision $roll_rev)"
DATAPRESS_REVISION=$roll_rev DATAPRESS_IMAGE_TAGS=$tag CARGO_TARGET_DIR=$(images_target_dir) \
  DATAPRESS_IMAGES_WORK="$DP_BUILD/images-rollout" "$DP_ROOT/images/build.sh"
