#!/usr/bin/env bash
# The API binary both images ship, checked the same way by both builders (images/build.sh
# and the flake's `api-static` check): statically linked, so the image needs no loader and
# no C library (no PT_INTERP, no DT_NEEDED), and reporting the version and revision it was
# built for. Standalone on purpose: the Nix sandbox runs it with only bash, coreutils,
# grep and readelf.
# Usage: images/check-api-binary.sh BINARY VERSION REVISION
set -euo pipefail

(($# == 3)) || { echo "usage: $0 BINARY VERSION REVISION" >&2; exit 2; }
bin=$1 version=$2 revision=$3
fail() { echo "check-api-binary: $bin: $*" >&2; exit 1; }

[[ -f $bin && -x $bin ]] || fail "no executable file there"
headers=$(readelf --program-headers --wide "$bin") || fail "readelf cannot read it"
if grep -q '^ *INTERP ' <<<"$headers"; then
  fail "dynamically linked: it asks for the program interpreter $(grep -o 'interpreter: [^]]*' <<<"$headers" | cut -d' ' -f2)"
fi
dynamic=$(readelf --dynamic --wide "$bin") || fail "readelf cannot read its dynamic section"
if grep -q '(NEEDED)' <<<"$dynamic"; then
  fail "needs shared libraries: $(grep '(NEEDED)' <<<"$dynamic" | grep -o '\[.*\]' | tr '\n' ' ')"
fi

want="datapress-api $version ($revision)"
got=$("$bin" version) || fail "'$bin version' failed"
[[ $got == "$want" ]] || fail "reports '$got', expected '$want'"
echo "check-api-binary: static, reports '$want'"
