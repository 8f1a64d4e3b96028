#!/usr/bin/env bash
# `make bench-ab A=path B=path`: paired A/B of two API release binaries (bench/ab.py), for
# a change whose cost must be measured (ADRs). Build each with `cargo build --release`.
# Output: a table on stdout, build/bench/ab/ab.json.
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"

[[ -n ${A:-} && -n ${B:-} ]] || die "usage: make bench-ab A=path/to/datapress-api B=path/to/datapress-api [ROUNDS=7]"
for bin in "$A" "$B"; do [[ -x $bin ]] || die "not an executable: $bin"; done
(($(nproc) >= 2)) || die "the A/B needs two cores (servers and load generator pinned apart)"
ensure_apt nginx
oha=$(cargo_tool oha 1.16.0)
taskset -c 0 python3 "$DP_ROOT/bench/ab.py" --a "A=$A" --b "B=$B" --rounds "${ROUNDS:-7}" \
  --nginx /usr/sbin/nginx --oha "$oha" --out "$DP_BUILD/bench/ab"
