#!/usr/bin/env bash
# `make images-repro`, suite `images`: builds both images twice, each from a clean, separate
# CARGO_TARGET_DIR, source copy and work directory (new rootfs, new layers, no docker cache), and
# requires identical layer digests. Also checks the sizes, the embedded dependency list and
# the dpkg metadata scanners read. Leaves the regular tags untouched.
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"

ensure_docker
contract="$DP_ROOT/images/contract.json"
field_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["images"][sys.argv[2]][sys.argv[3]])' "$contract" "$@"; }
name_of() { field_of "$1" name; }
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$DP_ROOT" log -1 --format=%ct)}
root="$DP_BUILD/images-repro"

cleanup() {
  local key run
  for key in api front; do
    for run in a b; do docker rmi -f "$(name_of "$key"):repro-$run" >/dev/null 2>&1 || true; done
  done
  rm -rf "$root"
}
trap cleanup EXIT
trap "exit 130" INT
trap "exit 143" TERM

# One snapshot of the working tree, copied to two places: the builds cannot see edits made
# meanwhile, and they also prove that the source path does not leak into the images.
export DATAPRESS_REVISION=${DATAPRESS_REVISION:-$(git_revision)}
rm -rf "$root" && mkdir -p "$root/a/src"
(cd "$DP_ROOT" && git ls-files -z --cached --others --exclude-standard | tar --null --ignore-failed-read --warning=none -T - -cf -) | tar -x -C "$root/a/src"
mkdir -p "$root/b" && cp -a "$root/a/src" "$root/b/src"
for run in a b; do
  log "build $run of 2 (source $root/$run/src, clean CARGO_TARGET_DIR $root/$run/target)"
  DATAPRESS_IMAGES_WORK="$root/$run/work" CARGO_TARGET_DIR="$root/$run/target" \
    DATAPRESS_IMAGE_TAGS="repro-$run" DATAPRESS_IMAGES_NO_CACHE=1 "$root/$run/src/images/build.sh"
done

fail=0
same() { # same WHAT A B: two values, neither empty (an empty one is a failed read, not a match)
  [[ -n $2 && -n $3 ]] || die "$1: nothing to compare (a: '$2', b: '$3')"
  if [[ $2 == "$3" ]]; then log "identical $1"; else warn "$1 differ:"$'\n'"  a: $2"$'\n'"  b: $3"; fail=1; fi
}
# file_hash FILE: its sha256; a missing file stops the script (set -e on the assignment).
file_hash() { [[ -f $1 ]] || die "missing: $1"; sha256sum <"$1" | cut -d' ' -f1; }

api_bin=target/variants/datapress-api-shipped # scripts/build-api.sh's copy
bin_a=$(file_hash "$root/a/$api_bin")
bin_b=$(file_hash "$root/b/$api_bin")
same "API binaries" "$bin_a" "$bin_b"
for key in api front; do
  name=$(name_of "$key")
  tars_a=$(cd "$root/a/work/context/$key" && find . -maxdepth 1 -name '*.tar' -printf '%f\n' | sort)
  tars_b=$(cd "$root/b/work/context/$key" && find . -maxdepth 1 -name '*.tar' -printf '%f\n' | sort)
  [[ -n $tars_a ]] || die "no layer tarball in $root/a/work/context/$key"
  same "$key layer tarball names" "$(tr '\n' ' ' <<<"$tars_a")" "$(tr '\n' ' ' <<<"$tars_b")"
  for tar in $tars_a; do
    hash_a=$(file_hash "$root/a/work/context/$key/$tar")
    hash_b=$(file_hash "$root/b/work/context/$key/$tar")
    same "$key layer tarball $tar" "$hash_a" "$hash_b"
  done
  layers_a=$(docker image inspect -f '{{json .RootFS.Layers}}' "$name:repro-a")
  layers_b=$(docker image inspect -f '{{json .RootFS.Layers}}' "$name:repro-b")
  same "$name layer digests" "$layers_a" "$layers_b"
  # Metadata too (entrypoint, env, user, labels...): only the builder's timestamps may differ.
  config_a=$(docker image inspect -f '{{json .Config}}' "$name:repro-a")
  config_b=$(docker image inspect -f '{{json .Config}}' "$name:repro-b")
  same "$name config" "$config_a" "$config_b"
  printf '%s\n' "$layers_a" | tr -d '[]"' | tr ',' '\n' | sed 's/^/    /'
done
api_a=$(docker image inspect -f '{{index .RootFS.Layers 0}}' "$(name_of api):repro-a")
front_a=$(docker image inspect -f '{{index .RootFS.Layers 0}}' "$(name_of front):repro-a")
same "base layer shared by both images" "$api_a" "$front_a"

# Sizes against the contract's limits (uncompressed, as `docker image inspect .Size`, 1 MB = 10^6 bytes).
for key in api front; do
  name=$(name_of "$key") limit=$(field_of "$key" maxSizeMB)
  size=$(docker image inspect -f '{{.Size}}' "$name:repro-a")
  if ((size <= limit * 1000000)); then
    log "$name: $size bytes <= $limit MB"
  else
    warn "$name: $size bytes exceeds $limit MB"; fail=1
  fi
done

# What scanners read: the binary's dependency list (cargo-auditable) and dpkg's status.d.
# Read whole, then grep: with pipefail, `readelf | grep -q` fails when grep exits before
# readelf's last write (SIGPIPE, exit 141), which the section table's 4 KB output does.
sections=$(readelf -S "$root/a/$api_bin") || die "readelf cannot read $root/a/$api_bin"
if grep -q '\.dep-v0' <<<"$sections"; then
  log "the API binary embeds its dependency list (.dep-v0, cargo-auditable)"
else
  warn "the API binary has no .dep-v0 section (cargo-auditable missing)"; fail=1
fi
status_pkgs() { tar -tf "$1" | sed -n 's#^var/lib/dpkg/status.d/\(.\+\)$#\1#p' | sort | tr '\n' ' '; }
log "dpkg status.d, api: $(status_pkgs "$root/a/work/context/api/base.tar")"
log "dpkg status.d, front adds: $(status_pkgs "$root/a/work/context/front/libc.tar") $(status_pkgs "$root/a/work/context/front/nginx.tar")"
has_status() { local status; status=$(tar -xOf "$1" "var/lib/dpkg/status.d/$2" 2>/dev/null) && grep -q '^Status: install ok installed' <<<"$status"; }
for entry in api/base:ca-certificates api/base:base-files front/libc:libc6 front/libc:libgcc-s1 front/nginx:nginx front/nginx:libssl3; do
  tar=$root/a/work/context/${entry%%:*}.tar pkg=${entry##*:}
  has_status "$tar" "$pkg" || { warn "no dpkg status for $pkg in ${entry%%:*}"; fail=1; }
done

((fail == 0)) || die "the images are not reproducible or miss a target (see above)"
log "reproducible: two clean builds gave identical layers"
