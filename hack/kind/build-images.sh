#!/usr/bin/env bash
# The images a kind node preloads, written as archives from the project's own binaries (no
# registry, no Docker build): control plane, kube-proxy, etcd, CoreDNS, pause, kube-router.
# Cached by content in $DP_CACHE/kind/images/<key>; prints that directory on stdout, which
# holds one archive per image and images.txt ("REF FILE" per line).
set -euo pipefail
# shellcheck source=hack/kind/env.sh
. "$(dirname "$0")/env.sh"

# The binaries (built once, cached by version), then a key over everything that shapes the images.
"$DP_ROOT/hack/tools/build-k8s.sh" >/dev/null
"$DP_ROOT/hack/tools/build-k8s.sh" kube-router >/dev/null
[[ $(cat "$K8S_BIN/kube-router.version") == "$KUBE_ROUTER_VERSION" ]] || die "kube-router in $K8S_BIN is not $KUBE_ROUTER_VERSION"
CONTROL_PLANE=(kube-apiserver kube-controller-manager kube-scheduler)
# Userland for the two components that drive the node's netfilter (iptables, ipset, ip), the
# CNI install step and the iptables backend choice (sh, cp, mv, ln, grep).
NETBASE=(iptables ipset iproute2 conntrack kmod netbase dash coreutils grep)
bin_sums=()
for b in "${CONTROL_PLANE[@]}" kube-proxy etcd coredns pause kube-router; do bin_sums+=("$K8S_BIN/$b"); done
key=$(content_key "$0" "$DP_ROOT/hack/kind/image_archive.py" "$DP_ROOT/hack/kind/iptables-wrapper" "$DEBIAN_SUITE" "${NETBASE[*]}" "$K8S_VER" \
  "${bin_sums[@]}" "$K8S_BIN/pause.version" "$K8S_BIN/coredns.version" "$K8S_BIN/kube-router.version")
out="$KIND_CACHE/images/$key"
if [[ -f $out/images.txt ]]; then echo "$out"; exit 0; fi

mkdir -p "$out"
exec 9>"$out/.lock"
flock 9
[[ -f $out/images.txt ]] && { echo "$out"; exit 0; }
t0=$SECONDS
work="$out/work"
rm -rf "$work" && mkdir -p "$work"
# The Kubernetes release date (written by build-k8s.sh): the same binaries give the same archives.
SOURCE_DATE_EPOCH=$(date -d "$(cat "$DP_CACHE/k8s/$K8S_VER/module-k8s/.source-date")" +%s)
export SOURCE_DATE_EPOCH
: >"$out/images.txt.tmp"

# layer_tar DIR OUT: a deterministic layer (sorted, fixed times and owners, file capabilities kept).
layer_tar() {
  tar --format=pax --pax-option=delete=atime,delete=ctime --xattrs --xattrs-include=security.capability \
    --numeric-owner --owner=0 --group=0 --mtime=@"$SOURCE_DATE_EPOCH" --clamp-mtime --sort=name \
    -C "$1" -cf "$2" .
}
# bin_layer NAME DEST [CAPS]: a layer holding one binary at DEST (e.g. /usr/local/bin/etcd).
bin_layer() {
  local name=$1 dest=$2 caps=${3:-} d="$work/$1-root"
  mkdir -p "$d$(dirname "$dest")"
  install -m 0755 "$K8S_BIN/$name" "$d$dest"
  [[ -z $caps ]] || setcap "$caps" "$d$dest"
  layer_tar "$d" "$work/$name.layer.tar"
  echo "$work/$name.layer.tar"
}
# archive REF FILE ARGS...: writes the image and records it in images.txt.
archive() {
  local ref=$1 file=$2; shift 2
  python3 "$DP_ROOT/hack/kind/image_archive.py" --ref "$ref" --out "$out/$file" "$@" >/dev/null
  echo "$ref $file" >>"$out/images.txt.tmp"
  log "  $ref ($(du -m "$out/$file" | cut -f1) MB)"
}

command -v setcap >/dev/null || ensure_apt libcap2-bin
ensure_apt mmdebstrap
log "component images for Kubernetes v$K8S_VER (cache: $out)"
path_env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Control plane: one static binary each, run by name from kubeadm's static pod manifests.
for b in "${CONTROL_PLANE[@]}"; do
  archive "registry.k8s.io/$b:v$K8S_VER" "$b.tar" --env "$path_env" --entrypoint "/usr/local/bin/$b" \
    --layer "$(bin_layer "$b" "/usr/local/bin/$b")"
done
# etcd: the version Kubernetes' go.mod requires (the module proxy has no 3.6.6, which kubeadm
# names); hack/kind/up.sh sets kubeadm's etcd imageTag to this tag.
etcd_ver=$("$K8S_BIN/etcd" --version | sed -n 's/^etcd Version: //p')
[[ -n $etcd_ver ]] || die "cannot read the etcd version of $K8S_BIN/etcd"
archive "registry.k8s.io/etcd:$etcd_ver-0" etcd.tar --env "$path_env" --entrypoint /usr/local/bin/etcd \
  --layer "$(bin_layer etcd /usr/local/bin/etcd)"
# CoreDNS runs as 65532 and binds port 53 through the binary's file capability, like upstream.
archive "registry.k8s.io/coredns/coredns:$(cat "$K8S_BIN/coredns.version")" coredns.tar --user 65532:65532 \
  --entrypoint /coredns --layer "$(bin_layer coredns /coredns cap_net_bind_service=+ep)"
archive "registry.k8s.io/pause:$(cat "$K8S_BIN/pause.version")" pause.tar --user 65535:65535 \
  --entrypoint /pause --layer "$(bin_layer pause /pause)"

# kube-proxy and kube-router share one Debian layer.
sources=/etc/apt/sources.list.d/debian.sources
[[ -f $sources ]] || sources=/etc/apt/sources.list
nice -n 10 mmdebstrap --quiet --variant=extract --include="$(IFS=,; echo "${NETBASE[*]}")" \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  "$DEBIAN_SUITE" "$work/netbase" "$sources"
# The extract variant runs no maintainer script: make what they would (/bin/sh; iptables* go
# through the wrapper that picks the node's backend), and drop the package database.
install -m 0755 "$DP_ROOT/hack/kind/iptables-wrapper" "$work/netbase/usr/sbin/iptables-wrapper"
for t in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
  ln -sf iptables-wrapper "$work/netbase/usr/sbin/$t"
done
[[ -e $work/netbase/usr/bin/sh ]] || ln -s dash "$work/netbase/usr/bin/sh"
rm -rf "$work/netbase/var/lib/apt" "$work/netbase/var/cache/apt" "$work/netbase/var/lib/dpkg" \
  "$work/netbase/var/log"/*
layer_tar "$work/netbase" "$work/netbase.layer.tar"
archive "registry.k8s.io/kube-proxy:v$K8S_VER" kube-proxy.tar --env "$path_env" \
  --entrypoint /usr/local/bin/kube-proxy \
  --layer "$work/netbase.layer.tar" --layer "$(bin_layer kube-proxy /usr/local/bin/kube-proxy)"
archive "datapress.local/kube-router:$KUBE_ROUTER_VERSION" kube-router.tar --env "$path_env" \
  --entrypoint /usr/local/bin/kube-router \
  --layer "$work/netbase.layer.tar" --layer "$(bin_layer kube-router /usr/local/bin/kube-router)"

rm -rf "$work"
mv "$out/images.txt.tmp" "$out/images.txt"
log "component images written in $((SECONDS - t0))s"
echo "$out"
