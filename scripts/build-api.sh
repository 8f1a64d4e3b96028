#!/usr/bin/env bash
# Builds one variant of the API release binary and prints its path. The images and the bench
# both build through here, so the bench measures exactly the binary the images ship.
# Usage: scripts/build-api.sh [VARIANT]
#   shipped      (default) x86_64-unknown-linux-musl, static, with the allocator and memcpy
#                the API selects by default (api/Cargo.toml): what both images carry
#   musl-system  the same target with musl's own malloc and memcpy (--no-default-features)
#   glibc        x86_64-unknown-linux-gnu with glibc's malloc: the binary shipped before
# Env: CARGO_TARGET_DIR    default: images_target_dir (scripts/lib.sh)
#      DATAPRESS_REVISION  the revision the binary reports, default: HEAD
# Every variant is copied to $CARGO_TARGET_DIR/variants/, where the next build of another
# variant (cargo's own output path is shared by musl builds) cannot replace it.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

variant=${1:-shipped}
case $variant in
  shipped) target=x86_64-unknown-linux-musl features=() ;;
  musl-system) target=x86_64-unknown-linux-musl features=(--no-default-features) ;;
  glibc) target=x86_64-unknown-linux-gnu features=(--no-default-features) ;;
  *) die "usage: scripts/build-api.sh [shipped|musl-system|glibc]" ;;
esac

"$DP_ROOT/scripts/bootstrap.sh"
if [[ $target == *-musl ]]; then
  # The allocator is C: compile it against musl's headers (Debian's musl-gcc), not glibc's.
  ensure_apt musl-tools
  export CC_x86_64_unknown_linux_musl=musl-gcc
fi
CARGO_TARGET_DIR=$(images_target_dir)
export CARGO_TARGET_DIR
export DATAPRESS_REVISION=${DATAPRESS_REVISION:-$(git_revision)}
cargo_home=${CARGO_HOME:-$HOME/.cargo}
# Build paths must not leak into the binary, or two target dirs would give two binaries.
export RUSTFLAGS="--remap-path-prefix=$cargo_home=/cargo --remap-path-prefix=$DP_ROOT=/src --remap-path-prefix=$CARGO_TARGET_DIR=/target"

# The dependency list embedded when cargo-auditable builds (Trivy and `cargo audit bin` read it).
cargo_cmd=(build)
if auditable=$(cargo_tool cargo-auditable 0.7.7 2>/dev/null); then
  PATH="$(dirname "$auditable"):$PATH"
  cargo_cmd=(auditable build)
else
  warn "cargo-auditable could not be built: the binary will not carry its dependency list"
fi
log "building datapress-api $variant ($target, revision ${DATAPRESS_REVISION:0:12})"
(cd "$DP_ROOT" && cargo "${cargo_cmd[@]}" --release --locked --target "$target" -p datapress-api "${features[@]}" >&2)

out="$CARGO_TARGET_DIR/variants/datapress-api-$variant"
mkdir -p "$(dirname "$out")"
cp "$CARGO_TARGET_DIR/$target/release/datapress-api" "$out.tmp"
mv -f "$out.tmp" "$out"
echo "$out"
