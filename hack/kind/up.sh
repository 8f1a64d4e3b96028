#!/usr/bin/env bash
# Starts the three-node kind cluster (one control plane, two workers) from the offline-built
# node image, then kube-router as its CNI and NetworkPolicy firewall. Idempotent: a running
# cluster is kept (stopped nodes are started again). Prints the kubeconfig's export line.
set -euo pipefail
# shellcheck source=hack/kind/env.sh
. "$(dirname "$0")/env.sh"

t_start=$SECONDS
[[ $(id -u) == 0 ]] || die "the kind nodes change host settings this script records and restores: run as root"
ensure_docker
kind=$(kind_bin)
node_image=$("$DP_ROOT/hack/kind/build-node.sh")
t_built=$SECONDS
mkdir -p "$KIND_DIR"
chmod 700 "$KIND_DIR"

# The engine: Docker, unless it cannot start a privileged container (kind's nodes are). Docker
# 20.10 asks for every capability the kernel knows and runc fails on one missing from the
# machine's bounding set (CAP_SYS_RESOURCE here); podman asks only for those in the bounding set.
if [[ -z $KIND_PROVIDER ]]; then
  if docker run --rm --privileged --net=none --entrypoint /bin/true "$node_image" 2>"$KIND_DIR/docker-privileged.err"; then
    KIND_PROVIDER=docker
  else
    warn "Docker cannot start a privileged container here ($(head -n1 "$KIND_DIR/docker-privileged.err")): kind runs on podman"
    KIND_PROVIDER=podman
  fi
fi
echo "$KIND_PROVIDER" >"$KIND_DIR/provider"
export KIND_EXPERIMENTAL_PROVIDER=$KIND_PROVIDER
if [[ $KIND_PROVIDER == podman ]]; then
  ensure_apt podman netavark aardvark-dns
  # Our own hard limits (podman caps processes at kernel.pid_max), and no per-container pids cap.
  nproc=$(ulimit -Hu) pid_max=$(cat /proc/sys/kernel/pid_max)
  ((nproc <= pid_max)) || nproc=$pid_max
  cat >"$KIND_DIR/containers.conf" <<EOF
# Written by hack/kind/up.sh: without CAP_SYS_RESOURCE, no container limit may exceed ours.
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=$nproc:$nproc"]
pids_limit = 0
EOF
  export CONTAINERS_CONF="$KIND_DIR/containers.conf"
fi

# Host state that the nodes and their engine change, put back by cluster-down-3, recorded once
# before the first node starts: global kernel settings (the kubelet's; systemd as PID 1 raises
# fs.file-max), forwarding (the engine turns it on for its network, IPv6 included),
# /lib/modules (kind bind-mounts it), and what podman leaves after its last container
# (netavark's chains, the /run/netns mount, its cgroups).
state() { if "${@:2}" >/dev/null 2>&1; then echo "$1 present"; else echo "$1 absent"; fi; } # state NAME TEST...
netavark_chains() { grep -q '^:NETAVARK' <<<"$({ iptables-save; ip6tables-save; } 2>/dev/null)"; }
if [[ ! -f $KIND_DIR/host-state ]]; then
  {
    for k in vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops \
      kernel.keys.root_maxkeys kernel.keys.root_maxbytes fs.file-max fs.nr_open \
      net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv6.conf.default.forwarding; do
      echo "sysctl $k=$(sysctl -n "$k")"
    done
    state lib-modules test -e /lib/modules
    state netavark-chains netavark_chains
    state run-netns mountpoint -q /run/netns
    state libpod-cgroups compgen -G "/sys/fs/cgroup/*/libpod_parent"
  } >"$KIND_DIR/host-state.tmp"
  mv "$KIND_DIR/host-state.tmp" "$KIND_DIR/host-state"
fi

if [[ $KIND_PROVIDER == podman ]]; then
  # Docker creates a missing bind-mount source, podman refuses it.
  mkdir -p /lib/modules
  if ! podman image exists "$(node_image_ref "$node_image")"; then
    log "copying $node_image from Docker to podman"
    t0=$SECONDS
    docker save "$node_image" | podman load >/dev/null
    log "  copied in $((SECONDS - t0))s"
  fi
fi
node_ref=$(node_image_ref "$node_image")

etcd_tag=$(docker image inspect -f '{{index .Config.Labels "io.datapress.kind.etcd-image-tag"}}' "$node_image")
[[ -n $etcd_tag ]] || die "$node_image has no etcd image tag label"
cat >"$KIND_DIR/cluster.yaml.new" <<EOF
# Written by hack/kind/up.sh.
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
networking:
  # kube-router is applied after creation (kindnetd cannot be built offline).
  disableDefaultCNI: true
  podSubnet: $KIND_POD_CIDR
  serviceSubnet: $KIND_SERVICE_CIDR
  # The API server on 127.0.0.1, on a port kind picks.
kubeadmConfigPatches:
  # Kubernetes 1.35's kubelet refuses cgroup v1 hosts unless told otherwise (init uploads
  # this configuration, join downloads it: the workers get it too).
  # Failure detection (docs/exploitation.md): the kubelet renews its lease every 5 s (a quarter
  # of nodeLeaseDurationSeconds), the node controller calls a silent node unreachable after
  # 16 s (three missed renewals; defaults 10 s and 40 s): its pods then leave the endpoints.
  - |
    kind: KubeletConfiguration
    failCgroupV1: false
    nodeLeaseDurationSeconds: 20
  # The etcd the node image carries (the one Kubernetes' go.mod requires); kubeadm names 3.6.6.
  # (kind writes kubeadm's v1beta3 configuration for this node image: extraArgs is a map.)
  - |
    kind: ClusterConfiguration
    etcd:
      local:
        imageTag: "$etcd_tag"
    controllerManager:
      extraArgs:
        node-monitor-grace-period: 16s
containerdConfigPatches:
  # No CAP_SYS_RESOURCE on these machines: runc cannot lower oom_score_adj (pause asks -998).
  - |-
    [plugins."io.containerd.grpc.v1.cri"]
      restrict_oom_score_adj = true
nodes:
  - role: control-plane
    # The front's NodePort, on the node that the node-loss tests never stop.
    extraPortMappings:
      - containerPort: 30080
        hostPort: $KIND_FRONT_PORT
        listenAddress: "127.0.0.1"
        protocol: TCP
  - role: worker
  - role: worker
EOF
if grep -qx "$CLUSTER" <<<"$("$kind" get clusters 2>/dev/null)"; then
  log "kind cluster $CLUSTER exists"
  cmp -s "$KIND_DIR/cluster.yaml.new" "$KIND_DIR/cluster.yaml" ||
    warn "the cluster was created from another configuration than $KIND_DIR/cluster.yaml.new: make cluster-down-3 cluster-up-3 to use it"
  running=$("$KIND_PROVIDER" inspect -f '{{.Config.Image}}' "$CLUSTER-control-plane" 2>/dev/null || true)
  [[ $running == "$node_ref" ]] || warn "the cluster runs $running, not $node_ref: make cluster-down-3 cluster-up-3 to use it"
  for n in $(kind_nodes); do
    if [[ $("$KIND_PROVIDER" inspect -f '{{.State.Running}}' "$n") != true ]]; then
      log "starting stopped node $n"
      "$KIND_PROVIDER" start "$n" >/dev/null
    fi
  done
  "$kind" export kubeconfig --name "$CLUSTER" --kubeconfig "$KIND_KUBECONFIG" 2>/dev/null
else
  mv "$KIND_DIR/cluster.yaml.new" "$KIND_DIR/cluster.yaml"
  log "creating kind cluster $CLUSTER ($node_ref on $KIND_PROVIDER, kind $KIND_VERSION)"
  t0=$SECONDS
  retain=() # DATAPRESS_KIND_RETAIN=1 keeps the nodes of a failed creation, to debug them
  [[ ${DATAPRESS_KIND_RETAIN:-0} == 1 ]] && retain=(--retain)
  "$kind" create cluster --name "$CLUSTER" --image "$node_ref" --config "$KIND_DIR/cluster.yaml" \
    --kubeconfig "$KIND_KUBECONFIG" "${retain[@]}"
  log "  kind create cluster: $((SECONDS - t0))s"
fi
chmod 600 "$KIND_KUBECONFIG"
if [[ $KIND_PROVIDER == podman ]]; then
  # Pod traffic between nodes crosses the host's bridge with pod addresses: netavark only
  # accepts its own subnet, and Docker's FORWARD policy (DROP) would drop the rest. Docker
  # accepts bridge-internal traffic of its own networks the same way (tagged: down.sh removes it).
  bridge=$(podman network inspect "$KIND_NETWORK" -f '{{.NetworkInterface}}')
  rule=(FORWARD -i "$bridge" -o "$bridge" -m comment --comment "$KIND_FW_TAG" -j ACCEPT)
  iptables -C "${rule[@]}" 2>/dev/null || iptables -I "${rule[@]}"
fi

log "kube-router $KUBE_ROUTER_VERSION (CNI, routes, NetworkPolicy)"
sed "s#@KUBE_ROUTER_IMAGE@#datapress.local/kube-router:$KUBE_ROUTER_VERSION#g" "$DP_ROOT/hack/kind/kube-router.yaml" |
  kc3 apply -f - >/dev/null
t0=$SECONDS
kc3 -n kube-system rollout status daemonset/kube-router --timeout=300s >&2
kc3 wait --for=condition=Ready nodes --all --timeout=300s >/dev/null
kc3 -n kube-system rollout status deployment/coredns --timeout=300s >&2
# One CoreDNS per node, replaced 10 s after its node is lost (see the script).
"$DP_ROOT/hack/kind/dns-per-node.sh" "$KIND_KUBECONFIG"
log "  nodes Ready and CoreDNS available $((SECONDS - t0))s after kube-router was applied"
kc3 get nodes -o wide >&2
# kube-proxy must write its rules with the backend the node's kubelet uses (it may still be
# starting on a node that has just joined: up to 60 s).
kc3 -n kube-system rollout status daemonset/kube-proxy --timeout=120s >/dev/null
for n in $(kind_nodes); do
  deadline=$((SECONDS + 60))
  # (The whole output first: grep -q on the pipe could SIGPIPE the writer, a false failure.)
  until grep -q '^:KUBE-SERVICES' <<<"$("$KIND_PROVIDER" exec "$n" iptables-save -t nat 2>/dev/null)"; do
    ((SECONDS < deadline)) ||
      die "$n: no kube-proxy rules in the node's iptables ($("$KIND_PROVIDER" exec "$n" readlink -f /etc/alternatives/iptables))"
    sleep 1
  done
done
log "cluster $CLUSTER ready on $KIND_PROVIDER in $((SECONDS - t_start))s ($((SECONDS - t_built))s after the images" \
  "were ready); front NodePort 30080 on http://127.0.0.1:$KIND_FRONT_PORT"
echo "export KUBECONFIG=$KIND_KUBECONFIG"
