#!/usr/bin/env bash
# `make down`: stops the Compose platform and removes its containers, network and volumes.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

ensure_compose
docker compose -f "$DP_ROOT/compose.yaml" down -v --remove-orphans
log "DataPress (Docker Compose) stopped"
