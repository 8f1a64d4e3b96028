#!/usr/bin/env bash
# Deletes the three-node kind cluster and puts the host back as cluster-up-3 found it: node
# containers and their volumes, the network, the global kernel settings the nodes changed,
# /lib/modules if it was made for kind, and what podman leaves after its last container.
# The engines (Docker, podman) and the cached images stay.
set -euo pipefail
# shellcheck source=hack/kind/env.sh
. "$(dirname "$0")/env.sh"

[[ $(id -u) == 0 ]] || die "run as root"
[[ -n $KIND_PROVIDER ]] || { log "no kind cluster state in $KIND_DIR: nothing to do"; exit 0; }
t0=$SECONDS
kind=$(kind_bin)
if grep -qx "$CLUSTER" <<<"$("$kind" get clusters 2>/dev/null)"; then
  log "deleting kind cluster $CLUSTER ($KIND_PROVIDER)"
  "$kind" delete cluster --name "$CLUSTER" --kubeconfig "$KIND_KUBECONFIG"
fi
# Anything of ours kind did not remove (e.g. nodes left by a failed creation).
for n in $(kind_nodes); do "$KIND_PROVIDER" rm -f -v "$n" >/dev/null; done
if "$KIND_PROVIDER" network inspect "$KIND_NETWORK" >/dev/null 2>&1; then
  "$KIND_PROVIDER" network rm "$KIND_NETWORK" >/dev/null
  log "removed $KIND_PROVIDER network $KIND_NETWORK"
fi

# del_chains IPTABLES TABLE PREFIX: removes the jumps to chains named PREFIX*, then the chains.
del_chains() {
  local ipt=$1 table=$2 prefix=$3 rule chain
  "$ipt" -t "$table" -S 2>/dev/null | { grep -E "^-A [A-Z]+ .*-j $prefix" || true; } | sed 's/^-A /-D /' |
    while read -r rule; do eval "$ipt -t $table $rule"; done
  for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk -v p="^$prefix" '$1 == "-N" && $2 ~ p {print $2}'); do
    "$ipt" -t "$table" -F "$chain"
  done
  for chain in $("$ipt" -t "$table" -S 2>/dev/null | awk -v p="^$prefix" '$1 == "-N" && $2 ~ p {print $2}'); do
    "$ipt" -t "$table" -X "$chain"
  done
}
podman_idle() { [[ -z $(podman ps -aq) ]]; }
# The host firewall rules up.sh added (tagged).
iptables -S FORWARD | { grep -e "--comment $KIND_FW_TAG " || true; } | sed 's/^-A /-D /' |
  while read -r rule; do eval "iptables $rule"; done
if [[ -f $KIND_DIR/host-state ]]; then
  while read -r what value; do
    case "$what $value" in
      sysctl\ *) sysctl -qw "$value" || warn "could not restore $value" ;;
      "lib-modules absent")
        if [[ -d /lib/modules ]]; then rmdir /lib/modules || warn "/lib/modules is not empty: left in place"; fi ;;
      "netavark-chains absent")
        if [[ $KIND_PROVIDER == podman ]] && podman_idle; then
          for ipt in iptables ip6tables; do
            for table in filter nat; do del_chains "$ipt" "$table" NETAVARK; done
          done
        fi ;;
      "run-netns absent")
        if mountpoint -q /run/netns && [[ -z $(ls -A /run/netns) ]]; then umount /run/netns && rmdir /run/netns; fi ;;
      "libpod-cgroups absent")
        if [[ $KIND_PROVIDER == podman ]] && podman_idle; then
          for d in /sys/fs/cgroup/*/libpod_parent; do
            if [[ -d $d ]]; then find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || warn "$d is busy: left in place"; fi
          done
        fi ;;
    esac
  done <"$KIND_DIR/host-state"
fi
rm -rf "$KIND_DIR"
log "cluster $CLUSTER removed, host put back as cluster-up-3 found it ($((SECONDS - t0))s)"
