#!/usr/bin/env bash
# The kind node image, offline: what `kind build node-image` does (pkg/build/nodeimage/
# buildcontext.go), with every image imported from local archives instead of pulled.
# base image + kubeadm/kubelet/kubectl/crictl + the preloaded images in containerd (k8s.io),
# committed with kind's entrypoint. Cached by content; prints the image tag on stdout.
set -euo pipefail
# shellcheck source=hack/kind/env.sh
. "$(dirname "$0")/env.sh"

base=$("$DP_ROOT/hack/kind/build-base.sh")
images=$("$DP_ROOT/hack/kind/build-images.sh")
NODE_BINS=(kubeadm kubelet kubectl crictl)
sums=()
for b in "${NODE_BINS[@]}"; do sums+=("$K8S_BIN/$b"); done
key=$(content_key "$0" "$base" "$(basename "$images")" "${sums[@]}")
tag="datapress-kind-node:v$K8S_VER-$key"
if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; exit 0; fi

mkdir -p "$KIND_CACHE"
exec 9>"$KIND_CACHE/.node-build.lock"
flock 9
t0=$SECONDS
log "node image $tag (base $base)"
name="datapress-kind-build-$key"
docker rm -f -v "$name" >/dev/null 2>&1 || true
# --init: a PID 1 that reaps, so that containerd, once stopped, is really gone.
docker run -d --init --name "$name" --entrypoint=sleep --security-opt seccomp=unconfined "$base" infinity >/dev/null
trap 'docker rm -f -v "$name" >/dev/null 2>&1 || true' EXIT
in_node() { docker exec -i "$name" "$@"; }

# Binaries where kind puts them: kubeadm, kubelet, kubectl in /usr/bin; crictl as in kind's base.
for b in kubeadm kubelet kubectl; do docker cp "$K8S_BIN/$b" "$name:/usr/bin/$b"; done
docker cp "$K8S_BIN/crictl" "$name:/usr/local/bin/crictl"
in_node chown root:root /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl /usr/local/bin/crictl
in_node chmod 0755 /usr/bin/kubeadm /usr/bin/kubelet /usr/bin/kubectl /usr/local/bin/crictl
echo "v$K8S_VER" | in_node tee /kind/version >/dev/null

# The sandbox image is ours (kubeadm's pause version), not kind's base default.
pause_ref="registry.k8s.io/pause:$(cat "$K8S_BIN/pause.version")"
in_node sed -i "s#^\(\s*sandbox_image = \).*#\1\"$pause_ref\"#" /etc/containerd/config.toml
in_node grep -q "sandbox_image = \"$pause_ref\"" /etc/containerd/config.toml || die "could not set sandbox_image"

# containerd inside the build container, only to import (no unpack: the nodes unpack on first use).
# shellcheck disable=SC2016 # expanded in the build container
in_node bash -c 'containerd >/tmp/containerd.log 2>&1 & echo $! >/tmp/containerd.pid'
deadline=$((SECONDS + 30))
until in_node ctr version >/dev/null 2>&1; do
  ((SECONDS < deadline)) || { in_node cat /tmp/containerd.log >&2; die "containerd did not start in the build container"; }
  sleep 0.5
done
# As kind's importer, minus --digests (it only adds import-<date>@sha256 aliases: our archives
# name their image) and --label (Debian's ctr 1.6 lacks it: the pinned label is set after).
while read -r ref file <&3; do
  in_node ctr -n k8s.io images import --all-platforms --no-unpack - <"$images/$file" >/dev/null
  in_node ctr -n k8s.io images label "$ref" io.cri-containerd.pinned=pinned >/dev/null
done 3<"$images/images.txt"

# Name drift means a failed pull at create time: every image kubeadm and containerd will ask for
# must be there under its exact name.
etcd_tag=$(awk '$1 ~ /^registry.k8s.io\/etcd:/ {sub(/.*:/, "", $1); print $1}' "$images/images.txt")
imported=$(in_node ctr -n k8s.io images ls -q)
required=$(printf 'apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v%s\netcd: {local: {imageTag: "%s"}}\n' \
  "$K8S_VER" "$etcd_tag" | in_node bash -c 'cat >/tmp/images.yaml && kubeadm config images list --config /tmp/images.yaml')
missing=()
for ref in $required $pause_ref $(cut -d' ' -f1 "$images/images.txt"); do
  grep -qxF "$ref" <<<"$imported" || missing+=("$ref")
done
((${#missing[@]} == 0)) || die "images missing from the node: ${missing[*]} (imported: $(xargs <<<"$imported"))"
log "  preloaded: $(cut -d' ' -f1 "$images/images.txt" | xargs)"

# shellcheck disable=SC2016 # expanded in the build container
in_node timeout 60 bash -c 'kill "$(cat /tmp/containerd.pid)"; while kill -0 "$(cat /tmp/containerd.pid)" 2>/dev/null; do sleep 0.2; done' ||
  die "containerd did not stop in the build container"
in_node rm -rf /tmp/containerd.log /tmp/containerd.pid /tmp/images.yaml /run/containerd
docker commit --change 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]' --change 'CMD []' \
  --change "LABEL io.datapress.kind.etcd-image-tag=$etcd_tag" "$name" "$tag" >/dev/null
log "node image $tag ready in $((SECONDS - t0))s ($(docker image inspect -f '{{.Size}}' "$tag" | awk '{printf "%d MB", $1 / 1e6}'))"
echo "$tag"
