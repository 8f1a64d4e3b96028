#!/usr/bin/env bash
# Make the toolchain named in rust-toolchain.toml resolvable by rustup without a download:
# rustup may know the installed toolchain only as "stable".
set -euo pipefail
. "$(dirname "$0")/lib.sh"

want=$(sed -n 's/^channel = "\(.*\)"/\1/p' "$DP_ROOT/rust-toolchain.toml")
triple=x86_64-unknown-linux-gnu
toolchains="${RUSTUP_HOME:-$HOME/.rustup}/toolchains"
if [[ -e $toolchains/$want-$triple ]]; then exit 0; fi
have=$(rustc +stable --version 2>/dev/null | awk '{print $2}') || true
if [[ $have != "$want" ]]; then
  die "rust-toolchain.toml pins $want but the installed stable toolchain is '${have:-none}'; install Rust $want (rustup cannot download here)"
fi
ln -s "stable-$triple" "$toolchains/$want-$triple"
log "linked toolchain $want-$triple -> stable ($have)"
