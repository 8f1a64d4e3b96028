#!/usr/bin/env bash
# `make bench-ab A=path B=path [C=path D=path]`: paired A/B of API release binaries
# (bench/ab.py), for a change whose cost must be measured (ADRs); A is the reference.
# Each build is named by its file name: give them distinct, telling names.
# Build each with `cargo build --release`; a build may also be a script that execs one with
# other settings (ADR 0009: `RUST_LOG=warn exec …`, the API without its request log).
# Output: a table on stdout, build/bench/ab/NAME/ab.json (NAME=ab unless given; NAME=logging
# is the A/B of ADR 0009, copied to docs/assets by make docs-assets).
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"

[[ -n ${A:-} && -n ${B:-} ]] || die "usage: make bench-ab A=path/to/datapress-api B=path/to/datapress-api [C=… D=…] [ROUNDS=7]"
builds=()
for name in A B C D; do
  bin=${!name:-}
  [[ -z $bin ]] && continue
  [[ -x $bin ]] || die "$name: not an executable: $bin"
  builds+=(--build "$(basename "$bin")=$bin")
done
(($(nproc) >= 2)) || die "the A/B needs two cores (servers and load generator pinned apart)"
ensure_apt nginx
oha=$(cargo_tool oha 1.16.0)
taskset -c 0 python3 "$DP_ROOT/bench/ab.py" "${builds[@]}" --rounds "${ROUNDS:-7}" \
  --nginx /usr/sbin/nginx --oha "$oha" --out "$DP_BUILD/bench/ab/${NAME:-ab}"
