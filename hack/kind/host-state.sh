#!/usr/bin/env bash
# Prints what a kind cluster can change on its host, one sorted line per item, so that two
# runs compare with diff: Docker and podman containers, networks and volumes, netfilter rules
# (nft and legacy backends), links, routes, mounts, kernel settings, cgroups, /lib/modules.
# --ignore-project-cluster leaves out what the project's single-node cluster (hack/cluster)
# changes while it runs or stops: its KUBE-* chains, pod addresses (10.244.0.0/16) and their
# veth links, its mounts and pod cgroups, route_localnet (its kube-proxy's). The kind nodes
# never write those in the host's namespaces.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../../scripts/lib.sh"

filter=(cat)
if [[ ${1:-} == --ignore-project-cluster ]]; then
  filter=(grep -vE 'KUBE-|10\.244\.|datapress-cluster|kubepods|(^| |\.)veth[0-9a-f]{8}( |\.|$)|^net\.ipv4\.conf\.all\.route_localnet ')
fi
section() { printf '## %s\n' "$1"; }
# A ruleset with its counters reset; a save command that fails is recorded as such (not as
# an empty ruleset), so the comparison shows it.
rules() {
  local out
  out=$("$@" 2>/dev/null) || { echo "unreadable: $* (exit $?)"; return 0; }
  sed -e '/^#/d' -e 's/\[[0-9]*:[0-9]*\]/[0:0]/' <<<"$out"
}
{
  for engine in docker podman; do
    command -v "$engine" >/dev/null || continue
    section "$engine containers"; "$engine" ps -a --format '{{.Names}} {{.Image}}' | sort
    section "$engine networks"; "$engine" network ls --format '{{.Name}} {{.Driver}}' | sort
    section "$engine volumes"; "$engine" volume ls -q | sort
  done
  for ipt in iptables-nft-save ip6tables-nft-save iptables-legacy-save ip6tables-legacy-save; do
    if command -v "$ipt" >/dev/null; then section "$ipt"; rules "$ipt"; fi
  done
  section "links"; ip -o link show | awk -F': ' '{print $2}' | sed 's/@.*//' | sort
  section "routes"; ip route show table all | sort
  section "rules"; ip rule show | sort
  section "mounts"; findmnt -rn -o TARGET,FSTYPE | sort
  # Kernel settings (the host's network namespace included), minus counters that move by themselves.
  section "sysctl"
  sysctl -a 2>/dev/null |
    grep -vE '^(fs\.(dentry-state|file-nr|inode-nr|inode-state|quota\.)|kernel\.(random\.|ns_last_pid|pty\.nr|sched_domain\.)|vm\.(stat_refresh|drop_caches)|net\.netfilter\.nf_conntrack_count)' | sort
  # (process_api: this machine's own per-command cgroups, which come and go with every command.)
  section "cgroups"; find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d -not -path '*/process_api/*' 2>/dev/null | sort
  section "lib-modules"; if [[ -e /lib/modules ]]; then echo present; else echo absent; fi
} | "${filter[@]}"
