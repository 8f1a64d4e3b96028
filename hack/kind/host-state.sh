#!/usr/bin/env bash
# Prints what a kind cluster can change on its host, one sorted line per item, so that two
# runs compare with diff: Docker containers, networks and volumes, netfilter rules (nft and
# legacy backends), links, routes, mounts, global kernel settings, cgroups, /lib/modules.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../../scripts/lib.sh"

section() { printf '## %s\n' "$1"; }
section "docker containers"; docker ps -a --format '{{.Names}} {{.Image}}' | sort
section "docker networks"; docker network ls --format '{{.Name}} {{.Driver}}' | sort
section "docker volumes"; docker volume ls -q | sort
# Rules without counters; chain policies with their counters reset.
rules() { "$@" 2>/dev/null | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]/[0:0]/' || true; }
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
section "cgroups"; find /sys/fs/cgroup -mindepth 2 -maxdepth 3 -type d 2>/dev/null | sort
section "lib-modules"; if [[ -e /lib/modules ]]; then echo present; else echo absent; fi
