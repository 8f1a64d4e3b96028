#!/usr/bin/env bash
# Starts a real single-node Kubernetes (K8S_VERSION) as host processes: etcd, the control
# plane, kubelet, kube-proxy and kube-router's NetworkPolicy controller built from upstream
# sources, Debian's containerd/runc/CNI.
# Idempotent: a running cluster is left as is; prints the admin kubeconfig's path.
set -euo pipefail
# shellcheck source=hack/cluster/env.sh
. "$(dirname "$0")/env.sh"

t_start=$SECONDS
[[ $(id -u) == 0 ]] || die "the cluster runs host processes (containerd, kubelet): run as root"

# --- Binaries (cached by version outside the clone: a warm run builds nothing)
log "binaries: Kubernetes v$K8S_VER in $K8S_BIN"
before=$(date +%s)
"$DP_ROOT/hack/tools/build-k8s.sh" >/dev/null
if (($(stat -c %Y "$DP_CACHE/k8s/$K8S_VER/logs/last-build-seconds" 2>/dev/null || echo 0) >= before)); then
  log "cold build of the binaries: $(cat "$DP_CACHE/k8s/$K8S_VER/logs/last-build-seconds")s"
else
  log "binaries already built (cached), nothing to build (last build: $(cat "$DP_CACHE/k8s/$K8S_VER/logs/last-build-seconds" 2>/dev/null || echo '?')s)"
fi
t_built=$SECONDS
PAUSE_VER=$(cat "$K8S_BIN/pause.version")
COREDNS_VER=$(cat "$K8S_BIN/coredns.version")
PAUSE_IMAGE=registry.k8s.io/pause:$PAUSE_VER
COREDNS_IMAGE=registry.k8s.io/coredns/coredns:$COREDNS_VER

# --- Host packages and settings
ensure_apt containerd runc containernetworking-plugins iptables ipset conntrack libcap2-bin iproute2 curl
mkdir -p "$CLUSTER_DIR"/{pids,logs,config,kubeconfig,pki,cni/net.d,images} "$CLUSTER_RUN"
NODE_IP=$(node_ip)
log "node $NODE_NAME on $NODE_IP (state: $CLUSTER_DIR)"

# Remember host settings once, so down.sh can put them back exactly.
if [[ ! -f $CLUSTER_DIR/host-sysctl ]]; then
  # ip_forward (us), route_localnet (kube-proxy), kernel tunables the kubelet sets.
  for k in net.ipv4.ip_forward net.ipv4.conf.all.route_localnet vm.overcommit_memory vm.panic_on_oom \
    kernel.panic kernel.panic_on_oops kernel.keys.root_maxkeys kernel.keys.root_maxbytes; do
    echo "$k=$(sysctl -n "$k")"
  done >"$CLUSTER_DIR/host-sysctl"
fi
sysctl -qw net.ipv4.ip_forward=1
# Nothing to load on kernels with these built in; harmless where they are modules.
modprobe -q overlay 2>/dev/null || true
modprobe -q br_netfilter 2>/dev/null || true
# Docker sets the FORWARD policy to DROP, which silently blocks pod traffic: accept pod
# traffic explicitly (tagged rules that down.sh removes) instead of changing the policy.
for dir in -s -d; do
  rule=(FORWARD "$dir" "$POD_CIDR" -m comment --comment "$FW_TAG" -j ACCEPT)
  iptables -C "${rule[@]}" 2>/dev/null || iptables -I "${rule[@]}"
done

# --- Start a host process once, with its PID recorded and its log in the state dir.
start_proc() { # start_proc NAME CMD...
  local name=$1; shift
  if pid_alive "$name"; then log "$name already running (pid $(proc_pid "$name"))"; return; fi
  log "starting $name"
  start_daemon "$CLUSTER_DIR/logs/$name.log" "$@"
  record_pid "$name" $!
}
# wait_for LABEL SECONDS CMD...: polls CMD every second, with a progress line every 15 s.
wait_for() {
  local label=$1 timeout=$2 t0=$SECONDS next=15; shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS - t0 >= timeout)); then warn "timed out after ${timeout}s waiting for $label (logs: $CLUSTER_DIR/logs)"; return 1; fi
    if ((SECONDS - t0 >= next)); then log "  waiting for $label ($((SECONDS - t0))s)"; next=$((next + 15)); fi
    sleep 1
  done
  log "  $label: ok ($((SECONDS - t0))s)"
}
# write_config FILE < content: rewrites FILE only when its content changes (kube-proxy exits
# as soon as its configuration file is written, even with the same content).
write_config() {
  local f=$1 tmp; tmp=$(mktemp "$1.XXXXXX")
  cat >"$tmp"
  if cmp -s "$tmp" "$f"; then rm -f "$tmp"; else mv -f "$tmp" "$f"; fi
}
need_alive() { pid_alive "$1" || { tail -n 30 "$CLUSTER_DIR/logs/$1.log" >&2; die "$1 exited (log: $CLUSTER_DIR/logs/$1.log)"; }; }

# --- containerd (our own instance: own socket, root and state; Docker's is left alone)
write_config "$CLUSTER_DIR/config/containerd.toml" <<EOF
version = 2
root = "$CLUSTER_DIR/containerd"
state = "$CLUSTER_RUN/containerd"
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CLUSTER_RUN/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CLUSTER_DIR/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Pod network namespaces under our run dir, so down.sh finds and removes every one.
  netns_mounts_under_state_dir = true
  # No CAP_SYS_RESOURCE in this machine's bounding set: negative OOM scores (pause: -998)
  # would make runc fail ("failed to update /proc/self/oom_score_adj"); clamp them to ours.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$CLUSTER_RUN/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CLUSTER_DIR/cni/net.d"
EOF
# ptp + host-local + portmap, like kindnet: one veth per pod and a host route, no bridge.
write_config "$CLUSTER_DIR/cni/net.d/10-datapress.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "datapress",
  "plugins": [
    {
      "type": "ptp",
      "ipMasq": false,
      "mtu": 1500,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CLUSTER_DIR/cni/ipam",
        "ranges": [[{ "subnet": "$NODE_POD_CIDR" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
start_proc containerd containerd --config "$CLUSTER_DIR/config/containerd.toml"
wait_for "containerd" 30 ctr --address "$CONTAINERD_SOCK" version
need_alive containerd

# --- Images the cluster itself needs, built FROM scratch (no registry can be reached).
# Written as an OCI archive by hand rather than by `docker build`: the classic builder drops
# file capabilities, and CoreDNS runs non-root binding port 53 through one, like upstream.
sha() { sha256sum "$1" | cut -d' ' -f1; }
build_image() { # build_image REF USER BINARY [FILE_CAPS]: a one-binary image imported into k8s.io
  local ref=$1 user=$2 bin=$3 caps=${4:-} name dir
  if ctr_k8s images ls -q | grep -xF "$ref" >/dev/null; then return; fi
  log "building image $ref FROM scratch"
  name=$(basename "$bin") dir="$CLUSTER_DIR/images/$name"
  rm -rf "$dir" && mkdir -p "$dir/rootfs" "$dir/oci/blobs/sha256"
  install -m 0755 "$bin" "$dir/rootfs/$name"
  [[ -z $caps ]] || setcap "$caps" "$dir/rootfs/$name"
  tar --format=pax --pax-option=delete=atime,delete=ctime --xattrs --xattrs-include=security.capability \
    --numeric-owner --owner=0 --group=0 --mtime=@0 --sort=name -C "$dir/rootfs" -cf "$dir/layer.tar" "$name"
  local layer; layer=$(sha "$dir/layer.tar")
  mv "$dir/layer.tar" "$dir/oci/blobs/sha256/$layer"
  printf '{"architecture":"amd64","os":"linux","config":{"User":"%s","Entrypoint":["/%s"]},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
    "$user" "$name" "$layer" >"$dir/config.json"
  local cfg; cfg=$(sha "$dir/config.json")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%d}]}' \
    "$cfg" "$(stat -c %s "$dir/config.json")" "$layer" "$(stat -c %s "$dir/oci/blobs/sha256/$layer")" >"$dir/manifest.json"
  local man; man=$(sha "$dir/manifest.json")
  printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$man" "$(stat -c %s "$dir/manifest.json")" "$ref" "${ref##*:}" >"$dir/oci/index.json"
  mv "$dir/config.json" "$dir/oci/blobs/sha256/$cfg"
  mv "$dir/manifest.json" "$dir/oci/blobs/sha256/$man"
  echo '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci/oci-layout"
  tar --numeric-owner --owner=0 --group=0 --mtime=@0 --sort=name -C "$dir/oci" -cf "$dir/image.tar" oci-layout index.json blobs
  ctr_k8s images import "$dir/image.tar" >/dev/null
  ctr_k8s images ls -q | grep -xF "$ref" >/dev/null || die "image $ref did not import"
}
build_image "$PAUSE_IMAGE" 65535:65535 "$K8S_BIN/pause"
build_image "$COREDNS_IMAGE" 65532:65532 "$K8S_BIN/coredns" cap_net_bind_service=+ep

# --- Certificates and kubeconfigs from kubeadm
PKI="$CLUSTER_DIR/pki"
KCFG="$CLUSTER_DIR/kubeconfig"
write_config "$CLUSTER_DIR/config/kubeadm.yaml" <<EOF
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: $NODE_IP
  bindPort: $API_PORT
nodeRegistration:
  name: $NODE_NAME
  criSocket: unix://$CONTAINERD_SOCK
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v$K8S_VER
clusterName: datapress
certificatesDir: $PKI
controlPlaneEndpoint: $NODE_IP:$API_PORT
networking:
  dnsDomain: cluster.local
  podSubnet: $POD_CIDR
  serviceSubnet: $SERVICE_CIDR
apiServer:
  certSANs: [127.0.0.1, localhost, $NODE_IP]
etcd:
  local:
    dataDir: $CLUSTER_DIR/etcd
EOF
KUBEADM=("$K8S_BIN/kubeadm" --v=0)
if [[ ! -f $PKI/ca.crt ]]; then
  log "generating certificates (kubeadm init phase certs all)"
  "${KUBEADM[@]}" init phase certs all --config "$CLUSTER_DIR/config/kubeadm.yaml" >"$CLUSTER_DIR/logs/kubeadm-certs.log"
fi
if [[ ! -f $KCFG/admin.conf ]]; then
  log "generating kubeconfigs (kubeadm init phase kubeconfig all)"
  "${KUBEADM[@]}" init phase kubeconfig all --config "$CLUSTER_DIR/config/kubeadm.yaml" \
    --kubeconfig-dir "$KCFG" >"$CLUSTER_DIR/logs/kubeadm-kubeconfig.log"
fi
if [[ ! -f $KCFG/kube-proxy.conf ]]; then
  "${KUBEADM[@]}" kubeconfig user --config "$CLUSTER_DIR/config/kubeadm.yaml" \
    --client-name system:kube-proxy >"$KCFG/kube-proxy.conf.tmp" 2>>"$CLUSTER_DIR/logs/kubeadm-kubeconfig.log"
  mv "$KCFG/kube-proxy.conf.tmp" "$KCFG/kube-proxy.conf"
fi
if [[ ! -f $KCFG/kube-router.conf ]]; then
  "${KUBEADM[@]}" kubeconfig user --config "$CLUSTER_DIR/config/kubeadm.yaml" \
    --client-name kube-router >"$KCFG/kube-router.conf.tmp" 2>>"$CLUSTER_DIR/logs/kubeadm-kubeconfig.log"
  mv "$KCFG/kube-router.conf.tmp" "$KCFG/kube-router.conf"
fi
chmod 600 "$KCFG"/*.conf

# --- etcd
start_proc etcd "$K8S_BIN/etcd" --name "$NODE_NAME" --data-dir "$CLUSTER_DIR/etcd" \
  --listen-client-urls https://127.0.0.1:2379 --advertise-client-urls https://127.0.0.1:2379 \
  --listen-peer-urls https://127.0.0.1:2380 --initial-advertise-peer-urls https://127.0.0.1:2380 \
  --initial-cluster "$NODE_NAME=https://127.0.0.1:2380" --listen-metrics-urls http://127.0.0.1:2381 \
  --cert-file "$PKI/etcd/server.crt" --key-file "$PKI/etcd/server.key" --client-cert-auth \
  --trusted-ca-file "$PKI/etcd/ca.crt" --peer-cert-file "$PKI/etcd/peer.crt" --peer-key-file "$PKI/etcd/peer.key" \
  --peer-client-cert-auth --peer-trusted-ca-file "$PKI/etcd/ca.crt" --snapshot-count 10000
wait_for "etcd" 60 curl -fsS http://127.0.0.1:2381/health
need_alive etcd

# --- Control plane (flags as in kubeadm's static pod manifests for this version)
start_proc kube-apiserver "$K8S_BIN/kube-apiserver" --advertise-address "$NODE_IP" --secure-port "$API_PORT" \
  --allow-privileged=true --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
  --enable-bootstrap-token-auth=true --client-ca-file "$PKI/ca.crt" \
  --etcd-servers https://127.0.0.1:2379 --etcd-cafile "$PKI/etcd/ca.crt" \
  --etcd-certfile "$PKI/apiserver-etcd-client.crt" --etcd-keyfile "$PKI/apiserver-etcd-client.key" \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types InternalIP,ExternalIP,Hostname \
  --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
  --requestheader-allowed-names front-proxy-client --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" \
  --requestheader-extra-headers-prefix X-Remote-Extra- --requestheader-group-headers X-Remote-Group \
  --requestheader-username-headers X-Remote-User \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key"
wait_for "kube-apiserver /readyz" 120 curl -fsSk "https://127.0.0.1:$API_PORT/readyz"
need_alive kube-apiserver

# Since 1.29 admin.conf is in the kubeadm:cluster-admins group, which kubeadm binds during
# `init`; we bind it ourselves with the super-admin (system:masters) kubeconfig.
"$DP_ROOT/hack/tools/kubectl" --kubeconfig "$KCFG/super-admin.conf" create clusterrolebinding \
  kubeadm:cluster-admins --clusterrole cluster-admin --group kubeadm:cluster-admins \
  --dry-run=client -o yaml | "$DP_ROOT/hack/tools/kubectl" --kubeconfig "$KCFG/super-admin.conf" apply -f - >/dev/null

start_proc kube-controller-manager "$K8S_BIN/kube-controller-manager" --bind-address 127.0.0.1 \
  --kubeconfig "$KCFG/controller-manager.conf" --authentication-kubeconfig "$KCFG/controller-manager.conf" \
  --authorization-kubeconfig "$KCFG/controller-manager.conf" --client-ca-file "$PKI/ca.crt" \
  --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --root-ca-file "$PKI/ca.crt" \
  --cluster-name datapress --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --controllers '*,bootstrapsigner,tokencleaner' --leader-elect=false \
  --service-account-private-key-file "$PKI/sa.key" --use-service-account-credentials=true \
  --allocate-node-cidrs=true --cluster-cidr "$POD_CIDR" --service-cluster-ip-range "$SERVICE_CIDR"
start_proc kube-scheduler "$K8S_BIN/kube-scheduler" --bind-address 127.0.0.1 \
  --kubeconfig "$KCFG/scheduler.conf" --authentication-kubeconfig "$KCFG/scheduler.conf" \
  --authorization-kubeconfig "$KCFG/scheduler.conf" --leader-elect=false

# --- kubelet
# CoreDNS forwards to the kubelet's resolv.conf: it needs a non-loopback nameserver or the
# loop plugin stops it. Keep the host's non-loopback servers, else point at the node itself.
grep -E '^nameserver ' /etc/resolv.conf | grep -vE ' (127\.|::1)' >"$CLUSTER_DIR/config/resolv.conf" ||
  echo "nameserver $NODE_IP" >"$CLUSTER_DIR/config/resolv.conf"
write_config "$CLUSTER_DIR/config/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $PKI/ca.crt }
authorization: { mode: Webhook }
# cgroup v1 hybrid host: kubelet 1.35 refuses cgroup v1 unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
clusterDNS: [$CLUSTER_DNS]
clusterDomain: cluster.local
resolvConf: $CLUSTER_DIR/config/resolv.conf
podLogsDir: $CLUSTER_DIR/pod-logs
# Imported images can never be pulled again: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: { memory.available: 100Mi, nodefs.available: 2%, imagefs.available: 2% }
rotateCertificates: false
serializeImagePulls: false
EOF
start_proc kubelet "$K8S_BIN/kubelet" --config "$CLUSTER_DIR/config/kubelet.yaml" \
  --kubeconfig "$KCFG/kubelet.conf" --root-dir "$CLUSTER_DIR/kubelet" \
  --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"

# --- kube-proxy (iptables mode: it also serves NodePorts on 127.0.0.1)
write_config "$CLUSTER_DIR/config/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: { kubeconfig: $KCFG/kube-proxy.conf }
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
# Leave the host's conntrack table size and timeouts alone.
conntrack: { maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
EOF
start_proc kube-proxy "$K8S_BIN/kube-proxy" --config "$CLUSTER_DIR/config/kube-proxy.yaml"

# --- Node Ready, then CoreDNS (kubeadm's addon manifests for this version)
wait_for "node $NODE_NAME Ready" 180 kc wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s
wait_for "kube-proxy /healthz" 60 curl -fsS http://127.0.0.1:10256/healthz

# --- NetworkPolicies: kube-router with only its firewall (iptables + ipset), as k3s embeds it.
# A host process like kube-proxy: it drives the host's own iptables and ipset binaries.
kc apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: datapress:kube-router }
rules:
  - apiGroups: [""]
    resources: [namespaces, pods, services, nodes, endpoints]
    verbs: [get, list, watch]
  - apiGroups: [networking.k8s.io]
    resources: [networkpolicies]
    verbs: [get, list, watch]
  - apiGroups: [discovery.k8s.io]
    resources: [endpointslices]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: datapress:kube-router }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: datapress:kube-router }
subjects: [{ apiGroup: rbac.authorization.k8s.io, kind: User, name: kube-router }]
EOF
start_proc kube-router "$K8S_BIN/kube-router" --kubeconfig "$KCFG/kube-router.conf" \
  --hostname-override "$NODE_NAME" --run-firewall=true --run-router=false --run-service-proxy=false \
  --run-loadbalancer=false --enable-cni=false --enable-ipv4=true --enable-ipv6=false \
  --service-cluster-ip-range "$SERVICE_CIDR" --health-port 0 --metrics-port 0
wait_for "kube-router NetworkPolicy chains" 60 netpol_enforcer_running
if ! kc -n kube-system get deployment coredns >/dev/null 2>&1; then
  log "installing CoreDNS $COREDNS_VER (kubeadm init phase addon coredns)"
  "${KUBEADM[@]}" init phase addon coredns --config "$CLUSTER_DIR/config/kubeadm.yaml" \
    --kubeconfig "$KCFG/admin.conf" >"$CLUSTER_DIR/logs/kubeadm-coredns.log"
fi
wait_for "CoreDNS available" 180 kc -n kube-system wait --for=condition=Available deployment/coredns --timeout=1s

for p in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kube-router; do
  need_alive "$p"
done
log "cluster ready in $((SECONDS - t_start))s ($((SECONDS - t_built))s after the binaries were ready)"
log "kubeconfig: $KUBECONFIG_ADMIN"
echo "export KUBECONFIG=$KUBECONFIG_ADMIN"
