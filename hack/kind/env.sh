# Shared settings of the three-node kind cluster, sourced by the scripts of hack/kind/.
# shellcheck shell=bash disable=SC2034  # settings used by the scripts that source this file
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

KIND_VERSION=v0.33.0
K8S_VER=$(k8s_version)
K8S_BIN="$DP_CACHE/k8s/$K8S_VER/bin"
# Base rootfs, component image archives and stamps, keyed by content (outside the clone).
KIND_CACHE=${DATAPRESS_KIND_CACHE:-$DP_CACHE/kind}
DEBIAN_SUITE=bookworm
CLUSTER=${DATAPRESS_KIND_CLUSTER:-datapress}
# Machine-wide state (kubeconfig, host settings to restore, the engine in use): not in a clone,
# since any clone may bring the cluster down.
KIND_DIR=${DATAPRESS_KIND_DIR:-/var/lib/datapress-kind}
KIND_KUBECONFIG="$KIND_DIR/kubeconfig"
# The engine running the node containers, recorded by up.sh: docker, or podman where Docker
# cannot start a privileged container (these machines: hack/kind/README.md). Empty: not chosen yet.
KIND_PROVIDER=$(cat "$KIND_DIR/provider" 2>/dev/null || echo "${DATAPRESS_KIND_PROVIDER:-}")
export KIND_EXPERIMENTAL_PROVIDER=$KIND_PROVIDER
# A network of our own (kind's default is "kind"): cluster-down-3 removes it.
KIND_NETWORK=${DATAPRESS_KIND_NETWORK:-datapress-kind}
export KIND_EXPERIMENTAL_DOCKER_NETWORK=$KIND_NETWORK KIND_EXPERIMENTAL_PODMAN_NETWORK=$KIND_NETWORK
# Comment on the host firewall rules the cluster adds, so that down.sh removes exactly those.
KIND_FW_TAG=datapress-kind
# Podman's defaults ask for more open files and processes than these machines allow without
# CAP_SYS_RESOURCE: the limits of our own containers.conf (written by up.sh) apply to the nodes.
if [[ $KIND_PROVIDER == podman ]]; then export CONTAINERS_CONF="$KIND_DIR/containers.conf"; fi
# The front's NodePort 30080, published on 127.0.0.1 outside the NodePort range (30000-32767)
# that the project's single-node cluster captures on every local address, and below the
# ephemeral port range (32768-60999): a load test's TIME_WAIT sockets there made the bind fail.
KIND_FRONT_PORT=${DATAPRESS_KIND_FRONT_PORT:-29080}
# Pod and Service ranges apart from the single-node cluster's (10.244.0.0/16, 10.96.0.0/12):
# both clusters' packets cross the host's netfilter (br_netfilter) side by side.
KIND_POD_CIDR=10.245.0.0/16
KIND_SERVICE_CIDR=10.112.0.0/16
# kube-router (CNI, pod routes between nodes, NetworkPolicy firewall): the version
# hack/tools/build-k8s.sh pins.
KUBE_ROUTER_VERSION=$(sed -n 's/^KUBE_ROUTER_VERSION=//p' "$DP_ROOT/hack/tools/build-k8s.sh")

kind_bin() { go_tool sigs.k8s.io/kind "$KIND_VERSION" kind; }
# kind's own source tree (module cache): its base image files come from there at build time.
kind_src() {
  command -v jq >/dev/null || ensure_apt jq
  (cd "$DP_CACHE" && go mod download -json "sigs.k8s.io/kind@$KIND_VERSION" | jq -r .Dir)
}
kc3() { "$DP_ROOT/hack/tools/kubectl" --kubeconfig "$KIND_KUBECONFIG" "$@"; }
# Node containers of the cluster (kind labels them with the cluster name).
kind_nodes() { "$KIND_PROVIDER" ps -a --filter "label=io.x-k8s.kind.cluster=$CLUSTER" --format '{{.Names}}' | sort; }
# The node image's name in the engine's store (podman prefixes local images with localhost/).
node_image_ref() { if [[ $KIND_PROVIDER == podman ]]; then echo "localhost/$1"; else echo "$1"; fi; }
# Short content hash of files and strings: content_key ITEM... (a path hashes its content).
content_key() {
  local item
  for item in "$@"; do
    if [[ -f $item ]]; then sha256sum "$item" | cut -d' ' -f1; else printf '%s\n' "$item"; fi
  done | sha256sum | cut -c1-16
}
