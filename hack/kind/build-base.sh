#!/usr/bin/env bash
# The kind base image, offline: a Debian bookworm rootfs (mmdebstrap: systemd, containerd,
# runc, CNI plugins, iptables...) with kind's own node files (images/base/files of the kind
# module, read from the module cache), `docker import`ed, then ENV/STOPSIGNAL/ENTRYPOINT
# with a classic-builder Dockerfile. Cached by content; prints the image tag on stdout.
set -euo pipefail
# shellcheck source=hack/kind/env.sh
. "$(dirname "$0")/env.sh"

# Everything kind's base Dockerfile installs from apt, minus what only rootless, storage e2e
# tests or its own builds need (fuse-overlayfs, nfs-common, open-iscsi, e2fsprogs, curl);
# plus the packages replacing its GitHub-built containerd, runc and CNI plugins.
PACKAGES=(systemd containerd runc containernetworking-plugins conntrack iptables nftables
  iproute2 ethtool util-linux mount kmod libseccomp2 pigz bash ca-certificates jq procps)

key=$(content_key "$0" "$DP_ROOT/hack/kind/base-customize.sh" "$KIND_VERSION" "$DEBIAN_SUITE" "${PACKAGES[*]}")
tag="datapress-kind-base:$key"
ensure_docker
if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; exit 0; fi

dir="$KIND_CACHE/base/$key"
mkdir -p "$dir"
exec 9>"$dir/.lock"
flock 9
t0=$SECONDS
if [[ ! -f $dir/rootfs.tar ]]; then
  ensure_apt mmdebstrap
  src=$(kind_src)
  [[ -f $src/images/base/files/usr/local/bin/entrypoint ]] || die "no kind base files in $src/images/base/files"
  sources=/etc/apt/sources.list.d/debian.sources
  [[ -f $sources ]] || sources=/etc/apt/sources.list
  log "base rootfs: Debian $DEBIAN_SUITE + kind $KIND_VERSION node files (mmdebstrap)"
  # The kind module's date: the same inputs give the same tarball.
  SOURCE_DATE_EPOCH=$(date -d "$(cd "$DP_CACHE" && go list -m -json "sigs.k8s.io/kind@$KIND_VERSION" | jq -r .Time)" +%s)
  export SOURCE_DATE_EPOCH
  nice -n 10 mmdebstrap --quiet --variant=minbase --include="$(IFS=,; echo "${PACKAGES[*]}")" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook="\"$DP_ROOT/hack/kind/base-customize.sh\" \"\$1\" \"$src/images/base/files\"" \
    "$DEBIAN_SUITE" "$dir/rootfs.tmp.tar" "$sources"
  mv "$dir/rootfs.tmp.tar" "$dir/rootfs.tar"
  log "  rootfs: $(du -m "$dir/rootfs.tar" | cut -f1) MB in $((SECONDS - t0))s"
fi

log "docker import $tag"
docker import "$dir/rootfs.tar" "datapress-kind-base-rootfs:$key" >/dev/null
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# As kind's base: systemd knows it runs in a container, stops on SIGRTMIN+3, entrypoint first.
cat >"$ctx/Dockerfile" <<EOF
FROM datapress-kind-base-rootfs:$key
ENV container=docker
STOPSIGNAL SIGRTMIN+3
ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]
LABEL org.opencontainers.image.description="kind $KIND_VERSION base image, Debian $DEBIAN_SUITE packages"
EOF
DOCKER_BUILDKIT=0 docker build --quiet -t "$tag" "$ctx" >/dev/null 2>"$ctx/err" || { cat "$ctx/err" >&2; die "docker build $tag failed"; }
docker rmi "datapress-kind-base-rootfs:$key" >/dev/null
log "base image $tag ready in $((SECONDS - t0))s"
echo "$tag"
