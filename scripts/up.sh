#!/usr/bin/env bash
# `make up`: builds both images, starts them with Docker Compose and waits until healthy.
# Images come from `nix build` when Nix can build here, otherwise from the offline builder.
# Env: DATAPRESS_API_PORT (8080), DATAPRESS_FRONT_PORT (8081): host ports on 127.0.0.1;
#      DATAPRESS_BUILDER=offline: do not try Nix first.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ensure_compose

# Nix builds the same images from the same contract; it cannot fetch its inputs on the
# closed-network machines, so a failure there falls back to the offline builder.
# DATAPRESS_BUILDER=offline skips the attempt.
nix_images() {
  [[ ${DATAPRESS_BUILDER:-auto} != offline ]] && command -v nix >/dev/null 2>&1 || return 1
  local dir="$DP_BUILD/nix-images" version archive
  version=$(workspace_version)
  rm -rf "$dir" && mkdir -p "$dir"
  log "nix build .#api-image .#front-image"
  if ! (cd "$DP_ROOT" && timeout 3600 nix --extra-experimental-features 'nix-command flakes' \
    build --out-link "$dir/result" .#api-image .#front-image) >"$dir/build.log" 2>&1; then
    warn "Nix cannot build the images here (${dir#"$DP_ROOT"/}/build.log): using the offline builder"
    return 1
  fi
  for archive in "$dir"/result*; do docker load -q -i "$archive" >/dev/null; done
  docker tag "datapress-api:$version" datapress-api:dev
  docker tag "datapress-front:$version" datapress-front:dev
}
if nix_images; then
  log "images built by Nix"
else
  "$DP_ROOT/images/build.sh"
fi

log "docker compose up --wait"
docker compose -f "$DP_ROOT/compose.yaml" up -d --wait --wait-timeout 120 --remove-orphans

cat <<MSG

  DataPress is running (Docker Compose project "datapress"):
    API    http://127.0.0.1:${DATAPRESS_API_PORT:-8080}/
    front  http://127.0.0.1:${DATAPRESS_FRONT_PORT:-8081}/

  Logs: docker compose logs -f    Stop: make down

MSG
