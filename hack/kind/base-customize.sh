#!/usr/bin/env bash
# mmdebstrap customize hook of hack/kind/build-base.sh: the steps of kind's base Dockerfile
# (images/base/Dockerfile) applied to a Debian rootfs. Usage: base-customize.sh ROOTFS KIND_FILES
set -euo pipefail
root=$1 files=$2
[[ -d $root/etc && -d $files/etc ]] || { echo "usage: $0 ROOTFS KIND_FILES" >&2; exit 1; }

# kind's files, with the modes its Dockerfile gives them (0755 scripts and dirs, 0644 the rest).
install -m 0755 "$files"/usr/local/bin/* "$root/usr/local/bin/"
install -d -m 0755 "$root/kind/bin" "$root/LICENSES" "$root/etc/containerd" "$root/etc/default" \
  "$root/etc/sysctl.d" "$root/etc/systemd/system/kubelet.service.d"
install -m 0644 "$files"/kind/README.txt "$root/kind/"
install -m 0755 "$files"/kind/bin/* "$root/kind/bin/"
install -m 0644 "$files"/LICENSES/* "$root/LICENSES/"
install -m 0644 "$files"/etc/crictl.yaml "$root/etc/"
install -m 0644 "$files"/etc/containerd/* "$root/etc/containerd/"
install -m 0644 "$files"/etc/default/* "$root/etc/default/"
install -m 0644 "$files"/etc/sysctl.d/* "$root/etc/sysctl.d/"
install -m 0644 "$files"/etc/systemd/system/*.service "$files"/etc/systemd/system/*.slice "$root/etc/systemd/system/"
install -m 0644 "$files"/etc/systemd/system/kubelet.service.d/* "$root/etc/systemd/system/kubelet.service.d/"

# Debian's packages instead of kind's GitHub builds: containerd in /usr/bin, runc in /usr/sbin,
# CNI plugins in /usr/lib/cni (containerd looks in /opt/cni/bin). No rootless snapshotter.
sed -i 's#^ExecStart=/usr/local/bin/containerd$#ExecStart=/usr/bin/containerd#' "$root/etc/systemd/system/containerd.service"
grep -qx 'ExecStart=/usr/bin/containerd' "$root/etc/systemd/system/containerd.service"
rm "$root/etc/systemd/system/containerd-fuse-overlayfs.service"
mkdir -p "$root/opt/cni"
ln -s /usr/lib/cni "$root/opt/cni/bin"

# As kind's Dockerfile: only the units a node needs, no kmsg, systemd as /sbin/init.
find "$root/lib/systemd/system/sysinit.target.wants/" -name systemd-tmpfiles-setup.service -delete
rm -f "$root"/lib/systemd/system/multi-user.target.wants/* "$root"/etc/systemd/system/*.wants/* \
  "$root"/lib/systemd/system/local-fs.target.wants/* "$root"/lib/systemd/system/sockets.target.wants/*udev* \
  "$root"/lib/systemd/system/sockets.target.wants/*initctl* "$root"/lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >>"$root/etc/systemd/journald.conf"
# Debian's sysctl defaults (kernel.pid_max, fs.protected_*) are global to the host kernel: a node
# container must not apply them. Only kind's per-network-namespace settings stay.
rm "$root/usr/lib/sysctl.d/50-pid-max.conf" "$root/usr/lib/sysctl.d/99-protect-links.conf"
ln -sf /usr/lib/systemd/systemd "$root/sbin/init"
chroot "$root" systemctl --quiet enable kubelet.service containerd.service undo-mount-hacks.service
chroot "$root" systemctl --quiet mask systemd-binfmt.service
mkdir -p "$root/etc/kubernetes/manifests"

# The OCI spec every pod container starts from, with kind's product-files hook and no rlimits.
chroot "$root" ctr oci spec |
  jq '.hooks.createContainer[.hooks.createContainer | length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' |
  jq 'del(.process.rlimits)' >"$root/etc/containerd/cri-base.json"
# Nothing of the build host's identity stays in the image (the entrypoint makes a new one).
rm -f "$root/etc/machine-id" "$root/var/lib/dbus/machine-id"
