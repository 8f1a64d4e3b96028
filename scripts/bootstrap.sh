#!/usr/bin/env bash
# Make the toolchain named in rust-toolchain.toml resolvable by rustup without a download
# (rustup may know the installed toolchain only as "stable"), then add the targets the file
# lists: rustup installs them with a new toolchain, never for one already installed.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

toml="$DP_ROOT/rust-toolchain.toml"
want=$(sed -n 's/^channel = "\(.*\)"/\1/p' "$toml")
triple=x86_64-unknown-linux-gnu
toolchains="${RUSTUP_HOME:-$HOME/.rustup}/toolchains"
if [[ ! -e $toolchains/$want-$triple ]]; then
  have=$(rustc +stable --version 2>/dev/null | awk '{print $2}') || true
  if [[ $have != "$want" ]]; then
    die "rust-toolchain.toml pins $want but the installed stable toolchain is '${have:-none}'; install Rust $want (rustup cannot download here)"
  fi
  ln -s "stable-$triple" "$toolchains/$want-$triple"
  log "linked toolchain $want-$triple -> stable ($have)"
fi

# `rustup target add` fetches only that target's standard library; `rustup toolchain install`
# would reinstall the whole toolchain under the builds running on it.
mapfile -t targets < <(sed -n 's/^targets = \[\(.*\)\]/\1/p' "$toml" | tr -d '"' | tr -s ', ' '\n' | sed '/^$/d')
installed=$(rustup target list --installed --toolchain "$want")
for target in "${targets[@]}"; do
  if ! grep -qx "$target" <<<"$installed"; then
    log "rustup target add $target (toolchain $want)"
    rustup target add --toolchain "$want" "$target"
  fi
done
