#!/usr/bin/env bash
# Renders an image root's nginx.conf into DIR for `nginx -t` outside the image: its absolute
# paths (pid and temp files under /tmp, upstream.d under /etc/nginx) move into DIR and ROOT,
# nothing else changes (7 lines, or it fails). mime.types is copied beside it.
# Standalone (bash, sed, diff): the flake's front-nginx-config check runs it in the Nix sandbox.
# Usage: nix/front-nginx-config.sh ROOT DIR   then: nginx -t -e stderr -c DIR/nginx.conf
set -euo pipefail

(($# == 2)) || { echo "usage: $0 ROOT DIR" >&2; exit 2; }
root=$1 dir=$2
src=$root/etc/nginx/nginx.conf
mkdir -p "$dir/run"
sed -e "s#^\(pid\|    [a-z_]*_temp_path\) /tmp/#\1 $dir/run/#" \
  -e "s#^\(    include\) /etc/nginx/upstream.d/#\1 $root/etc/nginx/upstream.d/#" "$src" >"$dir/nginx.conf"
cp "$root/etc/nginx/mime.types" "$dir/mime.types"
# diff exits 1 when the files differ (expected here), 2 on trouble.
changed=$({ diff "$src" "$dir/nginx.conf" || (($? == 1)); } | awk '/^>/ {n++} END {print n + 0}')
if [[ $changed != 7 ]]; then
  echo "front-nginx-config: rendering $src changed $changed lines instead of 7" >&2
  exit 1
fi
