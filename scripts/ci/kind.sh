#!/usr/bin/env bash
# A kind cluster at K8S_VERSION for the GitHub Actions e2e job (kind needs node images from
# a container registry, which GitHub runners reach and our offline machines do not).
# Usage: scripts/ci/kind.sh up | load ARCHIVE | logs DIR | down
#   up       build kind from the Go module proxy, create the cluster, write its kubeconfig
#   load     `docker load` a `docker save` archive, then load its images into the cluster
#   logs     export the cluster's logs (for a failed run)
#   down     delete the cluster
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
. "$(dirname "$0")/common.sh"

KIND_VERSION=v0.32.0 # node images of this release line cover Kubernetes 1.35.x
CLUSTER=${KIND_CLUSTER:-datapress}
NODE_IMAGE=${KIND_NODE_IMAGE:-kindest/node:v$(k8s_version)}
KUBECONFIG_FILE="$DP_BUILD/kind/kubeconfig"

kind=$(go_tool sigs.k8s.io/kind "$KIND_VERSION" kind)
# tests/e2e/k8s.sh calls `kind load` itself for the images it retags (E2E_IMAGE_LOADER=kind).
if [[ -n ${GITHUB_PATH:-} ]]; then dirname "$kind" >>"$GITHUB_PATH"; fi

exists() { "$kind" get clusters 2>/dev/null | grep -qx "$CLUSTER"; }

case ${1:-} in
  up)
    ensure_docker
    mkdir -p "$(dirname "$KUBECONFIG_FILE")"
    if exists; then
      log "kind cluster $CLUSTER already exists"
      "$kind" export kubeconfig --name "$CLUSTER" --kubeconfig "$KUBECONFIG_FILE"
    else
      # No published node image for this exact version: build one from the official
      # Kubernetes release binaries (kind >= v0.32.0), so K8S_VERSION is still honoured.
      if ! docker image inspect "$NODE_IMAGE" >/dev/null 2>&1 && ! docker pull "$NODE_IMAGE"; then
        warn "$NODE_IMAGE is not published: building it from the v$(k8s_version) release binaries"
        "$kind" build node-image --type release "v$(k8s_version)" --image "$NODE_IMAGE"
      fi
      log "creating kind cluster $CLUSTER with $NODE_IMAGE (kind $KIND_VERSION)"
      "$kind" create cluster --name "$CLUSTER" --image "$NODE_IMAGE" \
        --config "$DP_ROOT/scripts/ci/kind-cluster.yaml" --kubeconfig "$KUBECONFIG_FILE" --wait 180s
    fi
    # One CoreDNS per node, replaced 10 s after its node is lost, as in hack/kind/up.sh.
    "$DP_ROOT/hack/kind/dns-per-node.sh" "$KUBECONFIG_FILE"
    # The node must run exactly the Kubernetes version the repository targets.
    server=$(KUBECONFIG=$KUBECONFIG_FILE "$DP_ROOT/hack/tools/kubectl" version -o json |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')
    [[ $server == "v$(k8s_version)" ]] || die "the kind node runs $server, K8S_VERSION says v$(k8s_version)"
    docker image inspect -f 'node image: {{index .RepoDigests 0}}' "$NODE_IMAGE" >&2 || true
    if [[ -n ${GITHUB_ENV:-} ]]; then echo "KUBECONFIG=$KUBECONFIG_FILE" >>"$GITHUB_ENV"; fi
    log "cluster $CLUSTER up ($server); KUBECONFIG=$KUBECONFIG_FILE"
    ;;
  load)
    archive=${2:?usage: $0 load ARCHIVE}
    exists || die "no kind cluster $CLUSTER: run '$0 up' first"
    docker load -i "$archive"
    refs=()
    for key in "${IMAGE_KEYS[@]}"; do refs+=("$(local_ref "$key")"); done
    "$kind" load docker-image --name "$CLUSTER" "${refs[@]}"
    log "loaded ${refs[*]} into kind cluster $CLUSTER"
    ;;
  logs)
    dir=${2:?usage: $0 logs DIR}
    if exists; then "$kind" export logs --name "$CLUSTER" "$dir"; else warn "no kind cluster $CLUSTER to export logs from"; fi
    ;;
  down)
    if exists; then "$kind" delete cluster --name "$CLUSTER"; fi
    ;;
  *) die "usage: $0 up | load ARCHIVE | logs DIR | down" ;;
esac
