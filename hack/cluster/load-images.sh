#!/usr/bin/env bash
# Copies Docker images into the test cluster's containerd (namespace k8s.io), where the
# kubelet finds them without any registry. Usage: hack/cluster/load-images.sh IMAGE...
set -euo pipefail
# shellcheck source=hack/cluster/env.sh
. "$(dirname "$0")/env.sh"

(($#)) || die "usage: $0 IMAGE..."
[[ -S $CONTAINERD_SOCK ]] || die "the cluster's containerd is not running (make cluster-up)"
ensure_docker
for image in "$@"; do
  docker image inspect "$image" >/dev/null 2>&1 || die "no Docker image $image (build it first, e.g. make images)"
  log "loading $image into the cluster"
  docker save "$image" | ctr_k8s images import - >/dev/null
done
