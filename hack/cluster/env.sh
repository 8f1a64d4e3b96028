# Shared settings of the test cluster, sourced by the scripts of hack/cluster/.
# shellcheck shell=bash disable=SC2034  # settings used by the scripts that source this file
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

K8S_VER=$(k8s_version)
K8S_BIN="$DP_CACHE/k8s/$K8S_VER/bin"
# Everything the cluster writes lives here (logs, PIDs, certificates, etcd, containerd, kubelet).
CLUSTER_DIR=${DATAPRESS_CLUSTER_DIR:-/var/lib/datapress-cluster}
# Runtime state that must not survive a reboot (containerd's state, sockets).
CLUSTER_RUN=/run/datapress-cluster
CONTAINERD_SOCK="$CLUSTER_RUN/containerd.sock"
KUBECONFIG_ADMIN="$CLUSTER_DIR/kubeconfig/admin.conf"
NODE_NAME=datapress-node
POD_CIDR=10.244.0.0/16
NODE_POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/12
CLUSTER_DNS=10.96.0.10
API_PORT=6443
# Tag of the comment on the host firewall rules the cluster adds, so down.sh removes exactly those.
FW_TAG=datapress-cluster

ctr_k8s() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
kc() { "$DP_ROOT/hack/tools/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# The IPv4 address of the interface carrying the default route, or else the first global one.
node_ip() {
  local ip
  ip=$(ip -4 route get 192.0.2.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n1)
  [[ -n $ip ]] || ip=$(ip -4 -o addr show scope global | awk '{sub(/\/.*/, "", $4); print $4; exit}')
  [[ -n $ip ]] || die "no IPv4 address to run the node on"
  echo "$ip"
}

# A PID file holds "PID STARTTIME" (field 22 of /proc/PID/stat), so a PID reused by another
# process after a reboot is never taken for ours, nor killed.
proc_starttime() { awk '{print $22}' "/proc/$1/stat" 2>/dev/null; }
record_pid() { echo "$2 $(proc_starttime "$2")" >"$CLUSTER_DIR/pids/$1.pid"; } # record_pid NAME PID
# The PID of a recorded host process if it is still the one we started: proc_pid NAME
proc_pid() {
  local f="$CLUSTER_DIR/pids/$1.pid" pid st
  [[ -f $f ]] || return 1
  read -r pid st <"$f"
  [[ -n $pid && -n $st && $(proc_starttime "$pid") == "$st" ]] && echo "$pid"
}
pid_alive() { proc_pid "$1" >/dev/null; }
# The project's test cluster is up: its API server and kubelet run and /readyz answers.
cluster_ready() { pid_alive kube-apiserver && pid_alive kubelet && kc get --raw /readyz >/dev/null 2>&1; }
# kube-router (NetworkPolicy controller) runs and its chains are hooked into INPUT, FORWARD, OUTPUT.
netpol_enforcer_running() {
  local c rules
  pid_alive kube-router || return 1
  rules=$(iptables -t filter -S) || return 1
  for c in INPUT FORWARD OUTPUT; do
    grep -qE -- "^-A $c .*-j KUBE-ROUTER-$c( |\$)" <<<"$rules" || return 1
  done
}
