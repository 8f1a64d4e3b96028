#!/usr/bin/env bash
# Stops every process cluster-up started (by recorded PID), removes the pods' sandboxes,
# firewall rules, mounts, cgroups and state, and puts back the host settings it changed.
# The Docker engine is left untouched. Harmless when no cluster runs.
set -euo pipefail
# shellcheck source=hack/cluster/env.sh
. "$(dirname "$0")/env.sh"

[[ $(id -u) == 0 ]] || die "run as root"
if [[ ! -d $CLUSTER_DIR && ! -d $CLUSTER_RUN ]]; then log "no cluster state in $CLUSTER_DIR: nothing to do"; exit 0; fi

stop_proc() { # stop_proc NAME: SIGTERM, then SIGKILL after 15 s
  local name=$1 f="$CLUSTER_DIR/pids/$1.pid" pid i
  [[ -f $f ]] || return 0
  if pid=$(proc_pid "$name"); then
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { warn "$name did not stop: SIGKILL"; kill -9 "$pid" 2>/dev/null || true; }
  fi
  rm -f "$f"
}

# The kubelet first, so it does not restart what we remove.
stop_proc kubelet
if pid_alive containerd; then
  log "removing pod sandboxes (CNI teardown, network namespaces)"
  "$K8S_BIN/crictl" --runtime-endpoint "unix://$CONTAINERD_SOCK" --timeout 30s rmp --all --force >/dev/null 2>&1 ||
    warn "crictl rmp failed; killing the remaining tasks"
  for t in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -s SIGKILL "$t" 2>/dev/null || true; done
  sleep 1
  for t in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks delete -f "$t" >/dev/null 2>&1 || true; done
fi
for p in kube-router kube-proxy kube-scheduler kube-controller-manager kube-apiserver etcd containerd; do stop_proc "$p"; done

# Firewall: kube-proxy's own chains, then the rules we tagged.
if [[ -x $K8S_BIN/kube-proxy ]]; then
  "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || warn "kube-proxy --cleanup reported errors"
fi
# del_rules [-6] TABLE GREP_ARGS...: deletes the rules of TABLE matching the pattern.
del_rules() {
  local ipt=iptables rule; [[ $1 == -6 ]] && { ipt=ip6tables; shift; }
  local table=$1; shift
  "$ipt" -t "$table" -S 2>/dev/null | { grep "$@" || true; } | sed 's/^-A /-D /' |
    while read -r rule; do eval "$ipt -t $table $rule" || true; done
}
del_rules filter -F -- "--comment $FW_TAG"
# kube-router's NetworkPolicy chains and ipsets, by their names (it removes nothing when it stops, and
# v2.1.0's --cleanup-config skips them): the jumps from the built-in chains, then its own chains.
del_rules filter -E -- "^-A (INPUT|FORWARD|OUTPUT) .*-j KUBE-ROUTER-(INPUT|FORWARD|OUTPUT)( |$)"
mapfile -t kr_chains < <(iptables -t filter -S 2>/dev/null | sed -n 's/^-N \(KUBE-ROUTER-\|KUBE-NWPLCY-\|KUBE-POD-FW-\)/\1/p')
for c in "${kr_chains[@]}"; do iptables -t filter -F "$c"; done
for c in "${kr_chains[@]}"; do iptables -t filter -X "$c" || warn "cannot remove chain $c"; done
if command -v ipset >/dev/null; then
  # TMP- sets are its atomic-swap buffers (TMP- and 16 base32 characters).
  for set in $(ipset list -n | grep -E '^(KUBE-SRC-|KUBE-DST-|TMP-[A-Z2-7]{16}$)' || true); do
    ipset destroy "$set" || warn "cannot destroy ipset $set"
  done
fi
# The kubelet's own chains (kube-proxy --cleanup leaves them): IPv4 and IPv6.
for v in "" -6; do
  ipt=iptables; [[ $v ]] && ipt=ip6tables
  del_rules $v filter -E -- "-j KUBE-FIREWALL( |$)"
  for tc in filter/KUBE-FIREWALL filter/KUBE-KUBELET-CANARY nat/KUBE-KUBELET-CANARY \
    mangle/KUBE-KUBELET-CANARY mangle/KUBE-IPTABLES-HINT; do
    if "$ipt" -t "${tc%/*}" -F "${tc#*/}" 2>/dev/null; then "$ipt" -t "${tc%/*}" -X "${tc#*/}" 2>/dev/null || true; fi
  done
done
# portmap's shared chains exist only if a pod used hostPort.
for chain in CNI-HOSTPORT-DNAT CNI-HOSTPORT-SETMARK CNI-HOSTPORT-MASQ; do
  del_rules nat -E -- "-j $chain( |$)"
  if iptables -t nat -F "$chain" 2>/dev/null; then iptables -t nat -X "$chain" 2>/dev/null || true; fi
done

# Host settings back as they were before the first cluster-up.
if [[ -f $CLUSTER_DIR/host-sysctl ]]; then
  while IFS='=' read -r k v; do sysctl -qw "$k=$v" || warn "could not restore $k"; done <"$CLUSTER_DIR/host-sysctl"
fi

# Mounts left by the kubelet (volumes), containerd (snapshots, shm) and CRI (network namespaces).
mapfile -t mounts < <(findmnt -rn -o TARGET | grep -E "^($CLUSTER_DIR|$CLUSTER_RUN)(/|$)" | sort -r)
for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" || warn "cannot unmount $m"; done
# Pod cgroups (cgroupfs driver): remove the kubepods trees, deepest first.
for root in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods; do
  if [[ -d $root ]]; then find "$root" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
done
rm -rf "$CLUSTER_DIR" "$CLUSTER_RUN"
log "cluster stopped and its state removed"
