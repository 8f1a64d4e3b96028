#!/usr/bin/env bash
# `make bench`: the API against NGINX static (the practical limit), FastAPI + uvicorn (the
# seed's stack), a bare Salvo app and the front's proxy hop, and the shipped API build (static
# musl + its allocator) beside the same code with musl's and glibc's own malloc; `--smoke`
# (`make bench-smoke`, suite `bench`): a few seconds of the same harness, with wrk only.
# Servers run on core 1, the load generator on core 0, on 127.0.0.1, bounded in time.
# Both modes build the API binaries with scripts/build-api.sh, the images' own build command,
# at HEAD's revision: the harness refuses a binary reporting another revision. The full bench
# also builds the images first (images/build.sh, with its Docker engine) to size them.
# Output: a table on stdout, build/bench/{results.json,bench.svg,report.txt} (smoke: build/bench/smoke/).
# Env: DP_API_BIN=path  measure this API binary instead of the shipped build (it must report
#                       HEAD's revision).
#      BENCH_IDLE=allowed let idle cores sleep (default: poll, cores kept out of idle
#                         states through PM QoS); results then go to build/bench/idle-allowed/.
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"

mode=full
case ${1:-} in
  --smoke) mode=smoke ;;
  "") ;;
  *) die "usage: bench/run.sh [--smoke]" ;;
esac
(($(nproc) >= 2)) || skip "the bench needs two cores (server and load generator pinned apart); this machine has $(nproc)"
checks_started

ensure_apt wrk nginx
"$DP_ROOT/scripts/bootstrap.sh"
log "harness unit tests (bench/test_harness.py)"
python3 "$DP_ROOT/bench/test_harness.py"
target=${CARGO_TARGET_DIR:-$DP_ROOT/target}
out=$DP_BUILD/bench
args=()

if [[ $mode == full ]]; then
  # The images, so their sizes are measured.
  "$DP_ROOT/images/build.sh"
  log "cargo build --release -p salvo-bare"
  (cd "$DP_ROOT" && cargo build --release --locked -p salvo-bare)
  args+=(--bare-bin "$target/release/salvo-bare" --oha "$(cargo_tool oha 1.16.0)")
else
  out=$out/smoke
  if [[ -x $target/release/salvo-bare ]]; then
    args+=(--bare-bin "$target/release/salvo-bare")
  else
    args+=(--skipped "bare=not built (make bench builds it)")
  fi
fi
# The shipped build (a no-op when images/build.sh just built it); the allocator baselines in
# full mode only (each is a whole release build with LTO: minutes on 2 cores).
api_bin=${DP_API_BIN:-$("$DP_ROOT/scripts/build-api.sh" shipped)}
for variant in musl-system glibc; do
  if [[ $mode == full ]]; then
    args+=(--api-variant "api-$variant=$("$DP_ROOT/scripts/build-api.sh" "$variant")")
  else
    args+=(--skipped "api-$variant=not built in smoke mode (make bench builds it)")
  fi
done
[[ -x $api_bin ]] || die "no API binary at $api_bin"

# The seed's original stack, from the Python package index, pinned.
mapfile -t reqs < <(grep -v '^\s*#' "$DP_ROOT/bench/fastapi/requirements.txt" | grep .)
venv=$(py_venv bench-fastapi "${reqs[@]}")
args+=(--python "$venv/bin/python")

# The proxy hop: the front's real nginx.conf with the Kubernetes upstream shape (keepalive pool),
# pointed at a bench API; one worker, since it shares the server core with that API.
work=$(mktemp -d "${TMPDIR:-/tmp}/datapress-bench-front.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work"
mkdir -p "$work/upstream.d" "$work/run" "$work/site"
front_port=$(free_port)
front_api_port=$(free_port)
front_nginx_conf "$work/nginx.conf" "$front_port" "$work/upstream.d" "$work/site" "$work/run"
sed -i 's/^worker_processes auto;$/worker_processes 1;/' "$work/nginx.conf"
grep -q '^worker_processes 1;$' "$work/nginx.conf" || die "front nginx.conf: no 'worker_processes auto;' line to pin"
sed "s/server datapress-api:80\b/server 127.0.0.1:$front_api_port/" \
  "$DP_ROOT/front/nginx/upstream.d/kubernetes.conf.example" >"$work/upstream.d/api.conf"
if ! grep -q "server 127.0.0.1:$front_api_port\b" "$work/upstream.d/api.conf" ||
  grep -q 'datapress-api:' "$work/upstream.d/api.conf"; then
  die "front/nginx/upstream.d/kubernetes.conf.example: its 'server datapress-api:80' lines changed shape"
fi
/usr/sbin/nginx -t -q -e stderr -c "$work/nginx.conf"
args+=(--front-conf "$work/nginx.conf" --front-port "$front_port" --front-api-port "$front_api_port")

idle=${BENCH_IDLE:-poll}
case $idle in
  poll) ;;
  allowed) out=$out/idle-allowed ;;
  *) die "BENCH_IDLE must be poll or allowed, not '$idle'" ;;
esac
version=$(workspace_version)
mkdir -p "$out"
if [[ $mode == full ]]; then
  # A shared machine: give running builds up to BENCH_QUIET_WAIT seconds to finish; the
  # harness reports the load and the CPU other processes took on the server's core anyway.
  deadline=$((SECONDS + ${BENCH_QUIET_WAIT:-300}))
  until awk '{exit !($1 < 1.0)}' /proc/loadavg || ((SECONDS >= deadline)); do sleep 10; done
  awk '{exit !($1 < 1.0)}' /proc/loadavg || warn "the machine is busy (load $(cut -d' ' -f1-3 /proc/loadavg)): numbers will be noisier"
fi
log "bench ($mode): load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
# The harness itself (and its health polling) stays off the server's core.
taskset -c 0 python3 "$DP_ROOT/bench/harness.py" --mode "$mode" --out "$out" --wrk "$(command -v wrk)" \
  --nginx /usr/sbin/nginx --api-bin "$api_bin" --idle "$idle" \
  --image "datapress-api:$version" --image "datapress-front:$version" "${args[@]}" | tee "$out/report.txt"
