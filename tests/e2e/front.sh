#!/usr/bin/env bash
# Suite `front`: the packaged site behind a real NGINX running the project's configuration,
# proxying to the real API binary, all on 127.0.0.1 free ports; then the browser e2e.
# NGINX runs as uid 65532 (as in the image) when this script runs as root.
# Env: DP_API_BIN=path uses an already built API binary instead of `cargo build`.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../../scripts/lib.sh"

NGINX=${NGINX:-/usr/sbin/nginx}
[[ -x $NGINX ]] || ensure_apt nginx # the package the front image is built from
[[ -n ${CHROMIUM:-} ]] || ensure_chromium
log "$("$NGINX" -v 2>&1)"

log "unit tests of the page's modules (node --test front/tests/)"
command -v node >/dev/null 2>&1 || ensure_apt nodejs
node_tests --test "$DP_ROOT/front/tests/"

if [[ -n ${DP_API_BIN:-} ]]; then
  api_bin=$DP_API_BIN
else
  "$DP_ROOT/scripts/bootstrap.sh"
  log "cargo build -p datapress-api"
  (cd "$DP_ROOT" && cargo build -p datapress-api --locked --quiet)
  api_bin="${CARGO_TARGET_DIR:-$DP_ROOT/target}/debug/datapress-api"
fi
[[ -x $api_bin ]] || die "no API binary at $api_bin"

work=$(mktemp -d "${TMPDIR:-/tmp}/datapress-front.XXXXXX")
chmod 0755 "$work"
nginx_pid=
cleanup() {
  local rc=$?
  if [[ -n $nginx_pid ]] && kill -QUIT "$nginx_pid" 2>/dev/null; then wait "$nginx_pid" 2>/dev/null || true; fi
  if [[ -x $work/stop-api.sh ]]; then "$work/stop-api.sh" >/dev/null 2>&1 || true; fi
  mkdir -p "$DP_BUILD/e2e/front-logs"
  cp "$work"/*.log "$DP_BUILD/e2e/front-logs/" 2>/dev/null || true
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

# NGINX drops to the image's uid when we are root; otherwise it runs as the current user.
as_nginx_user=()
if ((EUID == 0)); then as_nginx_user=(setpriv --reuid=65532 --regid=65532 --clear-groups); fi

# --- The API, controllable by the e2e (stop, start again on the same port).
api_port=$(free_port)
metrics_port=$(free_port)
cat >"$work/start-api.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
. "$DP_ROOT/scripts/lib.sh"
APP_ENV=e2e APP_BANNER="Banc d'essai du front" DB_PASSWORD=e2e-secret \\
DATAPRESS_LISTEN=127.0.0.1:$api_port DATAPRESS_METRICS_LISTEN=127.0.0.1:$metrics_port \\
DATAPRESS_DRAIN_SECONDS=0 DATAPRESS_LOG_FORMAT=json \\
  nohup "$api_bin" >>"$work/api.log" 2>&1 </dev/null &
echo \$! >"$work/api.pid"
wait_http "http://127.0.0.1:$api_port/health" 30 || { tail -n 20 "$work/api.log" >&2; exit 1; }
EOF
cat >"$work/stop-api.sh" <<EOF
#!/usr/bin/env bash
# Stops the API and waits until it is gone (SIGKILL after 25 s).
set -uo pipefail
pid=\$(cat "$work/api.pid" 2>/dev/null) || exit 0
kill -TERM "\$pid" 2>/dev/null || exit 0
for _ in \$(seq 250); do kill -0 "\$pid" 2>/dev/null || exit 0; sleep 0.1; done
kill -KILL "\$pid" 2>/dev/null; exit 0
EOF
chmod +x "$work/start-api.sh" "$work/stop-api.sh"
log "starting the API on 127.0.0.1:$api_port"
"$work/start-api.sh"

# --- The packaged site and a test copy of nginx.conf: only the port and paths change.
front_port=$(free_port)
"$DP_ROOT/front/build.sh" "$work/site"
mkdir -p "$work/conf/upstream.d" "$work/run" "$work/check.d"
render_conf() { front_nginx_conf "$2" "$front_port" "$1" "$work/site" "$work/run"; } # UPSTREAM_DIR OUT
render_conf "$work/conf/upstream.d" "$work/conf/nginx.conf"
# shellcheck disable=SC2016 # NGINX variables, not shell ones
printf 'upstream datapress_api_e2e {\n    server 127.0.0.1:%s;\n}\nmap $host $datapress_api {\n    default datapress_api_e2e;\n}\n' \
  "$api_port" >"$work/conf/upstream.d/api.conf"
: >"$work/nginx-access.log"
: >"$work/nginx-error.log"
((EUID == 0)) && chown -R 65532:65532 "$work/run" "$work/nginx-access.log" "$work/nginx-error.log"

# stdout is where the access log goes; reopening it must work for the unprivileged user.
nginx_test() { "${as_nginx_user[@]}" "$NGINX" -t -q -e stderr -c "$1" >/dev/null; }

log "nginx -t: the shipped compose upstream (front/nginx/upstream.d/api.conf)"
cp "$DP_ROOT/front/nginx/upstream.d/api.conf" "$work/check.d/"
render_conf "$work/check.d" "$work/conf/check-compose.conf"
nginx_test "$work/conf/check-compose.conf"

log "nginx -t: the Kubernetes sample (Service name swapped for localhost: no cluster DNS here)"
rm -f "$work/check.d/"*
sed 's/server datapress-api:80\b/server localhost:80/' "$DP_ROOT/front/nginx/upstream.d/kubernetes.conf.example" \
  >"$work/check.d/api.conf"
k8s_conf=$(<"$work/check.d/api.conf")
[[ $k8s_conf == *"server localhost:80"* && $k8s_conf != *datapress-api:80* ]] ||
  die "the Kubernetes sample no longer names datapress-api:80 in its server lines"
render_conf "$work/check.d" "$work/conf/check-k8s.conf"
nginx_test "$work/conf/check-k8s.conf"

log "nginx -t: the e2e configuration"
nginx_test "$work/conf/nginx.conf"

log "starting NGINX on 127.0.0.1:$front_port"
"${as_nginx_user[@]}" "$NGINX" -e stderr -c "$work/conf/nginx.conf" -g 'daemon off;' \
  >>"$work/nginx-access.log" 2>>"$work/nginx-error.log" &
nginx_pid=$!
wait_http "http://127.0.0.1:$front_port/healthz" 15 || { cat "$work/nginx-error.log" >&2; die "NGINX did not start"; }
expected_uid=$EUID
((EUID != 0)) || expected_uid=65532
[[ $(stat -c %u "/proc/$nginx_pid") == "$expected_uid" ]] || die "NGINX runs as uid $(stat -c %u "/proc/$nginx_pid"), not $expected_uid"

log "browser e2e against http://127.0.0.1:$front_port"
"$DP_ROOT/tests/e2e/front.e2e.sh" --base-url "http://127.0.0.1:$front_port" \
  --api-stop-cmd "$work/stop-api.sh" --api-start-cmd "$work/start-api.sh" --expect-env e2e

for path in /api/ /api/info; do
  body=$(curl -fsS --max-time 5 "http://127.0.0.1:$front_port$path") || die "GET $path failed: cannot tell whether it reveals the database password"
  [[ $body != *e2e-secret* ]] || die "$path reveals the database password"
done

log "NGINX logs: JSON access lines with request ids on stdout, nothing alarming on stderr"
python3 - "$work/nginx-access.log" "$work/nginx-error.log" "$work/api.log" <<'PY'
import json, re, sys
for path in sys.argv[1:]:
    assert "e2e-secret" not in open(path).read(), f"the database password leaked into {path}"
lines = [l for l in open(sys.argv[1]) if l.strip()]
entries = [json.loads(l) for l in lines]
assert entries, "no access log line"
assert all(e["request_id"] for e in entries), "an access log line lacks its request id"
assert any(e["request_id"] == "e2e-front-0001" for e in entries), "the caller's X-Request-Id is not logged"
assert any(e["uri"] == "/api/" and e["status"] == 200 and e["upstream_addr"] for e in entries), "no proxied /api/ line"
api_log = open(sys.argv[3]).read()
proxied = [e for e in entries if e["uri"] == "/api/" and e["status"] == 200]
missing = [e["request_id"] for e in proxied if e["request_id"] not in api_log]
assert not missing, f"request ids not forwarded to the API (X-Request-Id): {missing}"
bad = [l for l in open(sys.argv[2]) if re.search(r"\[(emerg|alert|crit)\]", l)]
assert not bad, "NGINX error log:\n" + "".join(bad)
print(f"{len(entries)} JSON access log lines, all with a request id; {len(proxied)} proxied ids found in the API log")
PY
log "front suite passed; screenshots in build/e2e/"
