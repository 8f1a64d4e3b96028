#!/usr/bin/env bash
# The front's NGINX carries no module this job does not use: fails when its `nginx -V`
# output names XSLT, Perl, stream or mail proxying, or a third-party module.
# Standalone (bash, grep): the flake's front-nginx-minimal check runs it in the Nix sandbox.
# Usage: nix/front-nginx-minimal.sh NGINX_V_OUTPUT_FILE
set -euo pipefail

(($# == 1)) || { echo "usage: $0 NGINX_V_OUTPUT_FILE" >&2; exit 2; }
version=$(cat "$1")
grep -q '^configure arguments:' <<<"$version" || { echo "front-nginx-minimal: not an 'nginx -V' output" >&2; exit 2; }
found=()
for flag in --with-http_xslt_module --with-http_perl_module --with-perl --with-stream --with-mail --add-module --add-dynamic-module; do
  if grep -q -- "$flag" <<<"$version"; then found+=("$flag"); fi
done
if ((${#found[@]})); then
  echo "front-nginx-minimal: NGINX is built with ${found[*]}" >&2
  exit 1
fi
echo "front-nginx-minimal: no XSLT, Perl, stream, mail or third-party module"
