#!/usr/bin/env bash
# Builds datapress-api and datapress-front offline: the static musl release binary
# (scripts/build-api.sh, checked by images/check-api-binary.sh), a minimal rootfs from Debian
# packages (mmdebstrap), deterministic layers (assemble.py), then FROM scratch with Docker's
# classic builder. Same inputs + SOURCE_DATE_EPOCH = same layers. The size limits are the
# contract's (images/contract.json, maxSizeMB), as for the Nix images.
# Usage: images/build.sh            (tags <workspace version> and the contract's extra tags)
# Env:   DATAPRESS_IMAGE_TAGS="a b"  tags to apply instead
#        DATAPRESS_IMAGES_WORK=DIR   work directory (default build/images)
#        CARGO_TARGET_DIR=DIR        cargo target directory (default build/images/target)
#        DATAPRESS_IMAGES_NO_CACHE=1 docker build --no-cache
#        SOURCE_DATE_EPOCH, DATAPRESS_REVISION  default: the last commit's date and hash
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"

contract="$DP_ROOT/images/contract.json"
cfield() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); [d:=d[k] for k in sys.argv[2:]]; print(" ".join(d) if isinstance(d, list) else d)' "$contract" "$@"; }

version=$(workspace_version)
revision=${DATAPRESS_REVISION:-$(git_revision)}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$DP_ROOT" log -1 --format=%ct)}
work=${DATAPRESS_IMAGES_WORK:-$DP_BUILD/images}
CARGO_TARGET_DIR=$(images_target_dir)
export CARGO_TARGET_DIR
tags=${DATAPRESS_IMAGE_TAGS:-"$version $(cfield extraTags)"}
mkdir -p "$work"
# Other suites (cluster, e2e) may build at the same time: one build per work directory.
exec 9>"$work/.lock"
if ! flock -n 9; then
  log "waiting for another images build to finish (lock $work/.lock)"
  flock 9
fi

ensure_apt mmdebstrap binutils
ensure_docker

# --- 1. The static release binary (scripts/build-api.sh, as the bench builds it), checked.
log "building datapress-api (revision ${revision:0:12}, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
api_bin=$(DATAPRESS_REVISION=$revision "$DP_ROOT/scripts/build-api.sh" shipped)
"$DP_ROOT/images/check-api-binary.sh" "$api_bin" "$version" "$revision"

# --- 2. A Debian rootfs to pick files from; mirrors come from the machine's apt configuration.
rootfs="$work/rootfs"
sources=/etc/apt/sources.list.d/debian.sources
[[ -f $sources ]] || sources=/etc/apt/sources.list
suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
log "extracting Debian $suite packages with mmdebstrap"
rm -rf "$rootfs"
mmdebstrap --quiet --variant=extract --skip=cleanup/apt/cache \
  --include=base-files,libc6,libgcc-s1,ca-certificates,nginx \
  "$suite" "$rootfs" "$sources"

# --- 3. The packaged site, then the layers and Dockerfiles.
[[ -x $DP_ROOT/front/build.sh ]] || die "front/build.sh is missing: the front image needs the packaged site"
[[ -f $DP_ROOT/front/nginx/nginx.conf ]] || die "front/nginx/nginx.conf is missing"
rm -rf "$work/site" "$work/context"
DATAPRESS_REVISION=$revision "$DP_ROOT/front/build.sh" "$work/site"
# The page names the revision the image's label does: rollout tests tell builds apart by it.
grep -qF "<meta name=\"datapress-revision\" content=\"$revision\">" "$work/site/index.html" \
  || die "the packaged page does not carry revision $revision"
python3 "$DP_ROOT/images/assemble.py" --contract "$contract" --rootfs "$rootfs" \
  --api-bin "$api_bin" --site "$work/site" \
  --nginx-conf "$DP_ROOT/front/nginx/nginx.conf" --mime-types "$DP_ROOT/front/nginx/mime.types" \
  --upstream-conf "$DP_ROOT/front/nginx/upstream.d/api.conf" \
  --version "$version" --revision "$revision" --epoch "$SOURCE_DATE_EPOCH" --out "$work/context"

# --- 4. FROM scratch with the classic builder (no BuildKit on these machines).
build_args=(--quiet)
[[ ${DATAPRESS_IMAGES_NO_CACHE:-0} == 1 ]] && build_args+=(--no-cache)
for key in api front; do
  name=$(cfield images "$key" name)
  tag_args=()
  for t in $tags; do tag_args+=(-t "$name:$t"); done
  log "docker build $name (${tags// /, })"
  # The CLI's legacy-builder deprecation notice is noise here: show stderr only on failure.
  DOCKER_BUILDKIT=0 docker build "${build_args[@]}" "${tag_args[@]}" "$work/context/$key" >/dev/null 2>"$work/docker-build.err" \
    || { cat "$work/docker-build.err" >&2; die "docker build $name failed"; }
done

# --- 5. Sizes against the contract's limits (docker image inspect .Size, 1 MB = 10^6 bytes).
first=${tags%% *}
oversize=()
for key in api front; do
  name=$(cfield images "$key" name) limit=$(cfield images "$key" maxSizeMB)
  size=$(docker image inspect -f '{{.Size}}' "$name:$first")
  mb=$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }')
  log "$name:$first  $mb MB (limit $limit MB)  layers: $(docker image inspect -f '{{len .RootFS.Layers}}' "$name:$first")"
  ((size <= limit * 1000000)) || oversize+=("$name:$first is $mb MB, over its $limit MB limit")
done
((${#oversize[@]} == 0)) || die "$(printf '%s; ' "${oversize[@]}")see images/contract.json"
