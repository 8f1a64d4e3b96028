#!/usr/bin/env python3
"""Turns an extracted Debian rootfs, the API binary and the packaged site into Docker
build contexts (deterministic layer tarballs + a Dockerfile FROM scratch per image).

Layers (the base is byte-identical in both images, so Docker stores it once):
  base   users, CA bundle, os-release, dpkg status.d, copyrights
  libc   (front only) glibc + libgcc, for NGINX: the API binary is static (no C library)
  nginx  (front only) NGINX and only the libraries its loader resolves beyond those
  app    api: the binary; front: site, nginx.conf + mime.types, upstream.d/api.conf, the binary
         (its healthcheck probe)

Every entry gets mtime SOURCE_DATE_EPOCH, owner 0:0 (the home dir 65532), sorted order,
no user/group names, so the same inputs always give the same bytes.
Python standard library only; dpkg-deb reads the .deb files mmdebstrap left behind.
"""

import argparse
import io
import json
import os
import re
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

MULTIARCH = "lib/x86_64-linux-gnu"
LOADER = f"{MULTIARCH}/ld-linux-x86-64.so.2"


def die(msg):
    sys.exit(f"assemble.py: {msg}")


class Layer:
    """A set of paths (relative, no leading slash) with their content, written as a tar."""

    def __init__(self, epoch, packages):
        self.epoch = epoch
        self.entries = {}  # path -> (kind, data, mode, uid, gid)
        self.pkgs = packages  # path owner lookup (Packages)
        self.owners = set()  # Debian packages that contributed files

    def _parents(self, path):
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            self.entries.setdefault(d, ("dir", None, 0o755, 0, 0))

    def dir(self, path, mode=0o755, uid=0, gid=0):
        self._parents(path)
        self.entries[path] = ("dir", None, mode, uid, gid)

    def data(self, path, content, mode=0o644):
        if isinstance(content, str):
            content = content.encode()
        self._parents(path)
        self.entries[path] = ("file", content, mode, 0, 0)

    def symlink(self, path, target):
        self._parents(path)
        self.entries[path] = ("link", target, 0o777, 0, 0)

    def copy(self, src, path, mode=None):
        """Copies a host file or symlink (not followed) into the layer at `path`."""
        src = Path(src)
        st = os.lstat(src)
        if stat.S_ISLNK(st.st_mode):
            self.symlink(path, os.readlink(src))
        elif stat.S_ISREG(st.st_mode):
            self.data(path, src.read_bytes(), mode if mode is not None else stat.S_IMODE(st.st_mode))
        elif stat.S_ISDIR(st.st_mode):
            self.dir(path, mode if mode is not None else 0o755)
        else:
            die(f"unsupported file type: {src}")

    def copy_tree(self, src, dest):
        src = Path(src)
        for root, dirs, files in os.walk(src):
            dirs.sort()
            rel = Path(root).relative_to(src)
            base = dest if str(rel) == "." else f"{dest}/{rel}"
            self.dir(base)
            for name in sorted(files + [d for d in dirs if os.path.islink(os.path.join(root, d))]):
                p = Path(root) / name
                mode = 0o755 if os.access(p, os.X_OK) and not p.is_symlink() else 0o644
                self.copy(p, f"{base}/{name}", mode)

    def from_rootfs(self, rootfs, path):
        """Copies a rootfs path and records the Debian package that ships it."""
        owner = self.pkgs.owner(path)
        if owner is None:
            die(f"{path} belongs to no extracted package")
        self.owners.add(owner)
        self.copy(Path(rootfs) / path, path)

    def write(self, out):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path in sorted(self.entries):
                kind, data, mode, uid, gid = self.entries[path]
                ti = tarfile.TarInfo(path + ("/" if kind == "dir" else ""))
                ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = self.epoch, mode, uid, gid, "", ""
                if kind == "dir":
                    ti.type = tarfile.DIRTYPE
                    tar.addfile(ti)
                elif kind == "link":
                    ti.type, ti.linkname = tarfile.SYMTYPE, data
                    tar.addfile(ti)
                else:
                    ti.size = len(data)
                    tar.addfile(ti, io.BytesIO(data))
        Path(out).write_bytes(buf.getvalue())

    def paths(self):
        return set(self.entries)


class Packages:
    """The .deb files mmdebstrap downloaded: control stanzas and which package ships which path."""

    def __init__(self, rootfs):
        self.control, self.files = {}, {}
        debs = sorted((Path(rootfs) / "var/cache/apt/archives").glob("*.deb"))
        if not debs:
            die("no .deb in the rootfs (run mmdebstrap with --skip=cleanup/apt/cache)")
        for deb in debs:
            ctl = subprocess.run(["dpkg-deb", "-f", str(deb)], check=True, capture_output=True, text=True).stdout
            name = re.search(r"^Package: (\S+)", ctl, re.M).group(1)
            self.control[name] = ctl
            listing = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)], check=True, capture_output=True).stdout
            with tarfile.open(fileobj=io.BytesIO(listing)) as tar:
                for m in tar.getmembers():
                    p = m.name.lstrip("./").rstrip("/")
                    if p and not m.isdir():
                        self.files[p] = name

    def owner(self, path):
        return self.files.get(path)

    def status(self, name):
        """A dpkg status stanza, as distroless writes it in /var/lib/dpkg/status.d/."""
        lines = self.control[name].rstrip("\n").split("\n")
        return "\n".join([lines[0], "Status: install ok installed", *lines[1:]]) + "\n"


def elf_closure(rootfs, binary):
    """The shared libraries the rootfs's own loader resolves for `binary` (paths in the rootfs)."""
    rootfs = Path(rootfs).resolve()
    libpath = f"{rootfs}/{MULTIARCH}:{rootfs}/usr/{MULTIARCH}"
    out = subprocess.run([str(rootfs / LOADER), "--library-path", libpath, "--list", str(binary)],
                         check=True, capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (\S+) \(", line)
        if m:
            if not m.group(2).startswith(f"{rootfs}/"):
                die(f"{binary}: {m.group(1)} resolves outside the rootfs ({m.group(2)})")
            libs.append(m.group(2)[len(str(rootfs)) + 1:])
        elif "not found" in line:
            die(f"{binary}: {line.strip()}")
    return libs


def with_link_targets(rootfs, path):
    """`path` and, when it is a symlink, the chain of files it points to (relative paths)."""
    out = [path]
    full = Path(rootfs) / path
    while full.is_symlink():
        target = os.readlink(full)
        nxt = os.path.normpath(target.lstrip("/") if target.startswith("/") else os.path.join(os.path.dirname(path), target))
        out.append(nxt)
        path, full = nxt, Path(rootfs) / nxt
    return out


def add_package_metadata(layer, rootfs, pkgs, declared=()):
    """status.d entries and copyright files for every package that contributed to the layer."""
    names = set(layer.owners) | set(declared)
    for name in sorted(names):
        doc = f"usr/share/doc/{name}"
        full = Path(rootfs) / doc
        if full.is_symlink():  # e.g. libgcc-s1 -> gcc-12-base: ship the link and the real file
            layer.symlink(doc, os.readlink(full))
            target = os.path.normpath(os.path.join("usr/share/doc", os.readlink(full)))
            if (Path(rootfs) / target / "copyright").exists():
                layer.from_rootfs(rootfs, f"{target}/copyright")
        elif (full / "copyright").exists():
            layer.from_rootfs(rootfs, f"{doc}/copyright")
    for name in sorted(set(layer.owners) | set(declared)):
        layer.data(f"var/lib/dpkg/status.d/{name}", pkgs.status(name))


def base_layer(rootfs, pkgs, contract, epoch):
    layer = Layer(epoch, pkgs)
    uid, gid, user = contract["uid"], contract["gid"], contract["username"]
    layer.data("etc/passwd", f"root:x:0:0:root:/root:/sbin/nologin\n"
               f"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
               f"{user}:x:{uid}:{gid}:{user}:/home/{user}:/sbin/nologin\n")
    layer.data("etc/group", f"root:x:0:\nnobody:x:65534:\n{user}:x:{gid}:\n")
    layer.data("etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")
    for path in contract["writablePaths"]:
        layer.dir(path.lstrip("/"), 0o1777)
    layer.dir(f"home/{user}", 0o700, uid, gid)
    layer.dir("root", 0o700)

    # The bundle update-ca-certificates would build, from the package's own certificates only.
    certs = sorted((Path(rootfs) / "usr/share/ca-certificates/mozilla").glob("*.crt"))
    if len(certs) < 100:
        die(f"only {len(certs)} certificates found in the ca-certificates package")
    bundle = b"".join(c.read_bytes().rstrip(b"\n") + b"\n" for c in certs)
    layer.data("etc/ssl/certs/ca-certificates.crt", bundle)

    # So that scanners recognise the distribution.
    for p in ("etc/os-release", "usr/lib/os-release", "etc/debian_version"):
        layer.from_rootfs(rootfs, p)
    add_package_metadata(layer, rootfs, pkgs, declared=["ca-certificates"])
    return layer


def libc_layer(rootfs, pkgs, epoch):
    """glibc and libgcc, minus the charset converters (gconv) nothing here uses."""
    layer = Layer(epoch, pkgs)
    for path, owner in sorted(pkgs.files.items()):
        if owner in ("libc6", "libgcc-s1") and path.startswith(("lib/", "lib64/")) and "/gconv/" not in path:
            layer.from_rootfs(rootfs, path)
    add_package_metadata(layer, rootfs, pkgs)
    return layer


def nginx_layer(rootfs, pkgs, below, epoch):
    layer = Layer(epoch, pkgs)
    layer.from_rootfs(rootfs, "usr/sbin/nginx")
    for lib in elf_closure(rootfs, Path(rootfs) / "usr/sbin/nginx"):
        for p in with_link_targets(rootfs, lib):
            if not any(p in b.paths() for b in below):
                layer.from_rootfs(rootfs, p)
    add_package_metadata(layer, rootfs, pkgs)
    return layer


def dockerfile(image, contract, layers, version, revision, epoch):
    """A Dockerfile FROM scratch whose metadata all comes from the contract."""
    from datetime import datetime, timezone

    q = json.dumps  # Dockerfile JSON form: safe quoting for every value
    created = datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    labels = {
        "org.opencontainers.image.title": image["title"],
        "org.opencontainers.image.description": image["description"],
        "org.opencontainers.image.source": contract["source"],
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.licenses": contract["licenses"],
        "org.opencontainers.image.created": created,
    }
    lines = ["# Generated by images/assemble.py from images/contract.json: do not edit.", "FROM scratch"]
    lines += [f"ADD {name}.tar /" for name in layers]
    lines.append("ENV " + " ".join(f"{k}={q(v)}" for k, v in (e.split("=", 1) for e in image["env"])) if image["env"] else "")
    lines.append("LABEL " + " ".join(f"{q(k)}={q(v)}" for k, v in labels.items()))
    lines.append("EXPOSE " + " ".join(image["ports"]))
    lines.append(f"USER {contract['user']}")
    lines.append("WORKDIR /")
    lines.append(f"STOPSIGNAL {image['stopSignal']}")
    hc = image.get("healthcheck")
    if hc:
        t = contract["healthcheckTiming"]
        lines.append(f"HEALTHCHECK --interval={t['intervalSeconds']}s --timeout={t['timeoutSeconds']}s "
                     f"--start-period={t['startPeriodSeconds']}s --retries={t['retries']} CMD {q(hc)}")
    lines.append(f"ENTRYPOINT {q(image['entrypoint'])}")
    lines.append(f"CMD {q(image['cmd'])}")
    return "\n".join(line for line in lines if line) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--contract", required=True)
    ap.add_argument("--rootfs", required=True, help="mmdebstrap --variant=extract output (directory)")
    ap.add_argument("--api-bin", required=True)
    ap.add_argument("--site", required=True, help="front/build.sh output")
    ap.add_argument("--nginx-conf", required=True)
    ap.add_argument("--mime-types", required=True, help="the front's own MIME map")
    ap.add_argument("--upstream-conf", required=True, help="the compose default, shipped as upstream.d/api.conf")
    ap.add_argument("--version", required=True)
    ap.add_argument("--revision", required=True)
    ap.add_argument("--epoch", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    contract = json.loads(Path(a.contract).read_text())
    rootfs, out = Path(a.rootfs), Path(a.out)
    pkgs = Packages(rootfs)

    # The API binary is static (images/check-api-binary.sh): its image needs no C library.
    base = base_layer(rootfs, pkgs, contract, a.epoch)
    libc = libc_layer(rootfs, pkgs, a.epoch)

    api_app = Layer(a.epoch, pkgs)
    api_app.copy(a.api_bin, "usr/bin/datapress-api", 0o755)

    front_app = Layer(a.epoch, pkgs)
    front_app.copy_tree(a.site, "usr/share/nginx/html")
    front_app.copy(a.nginx_conf, "etc/nginx/nginx.conf", 0o644)
    front_app.copy(a.mime_types, "etc/nginx/mime.types", 0o644)
    front_app.copy(a.upstream_conf, "etc/nginx/upstream.d/api.conf", 0o644)
    front_app.copy(a.api_bin, "usr/bin/datapress-api", 0o755)

    plan = {
        "api": {"base": base, "app": api_app},
        "front": {"base": base, "libc": libc, "nginx": nginx_layer(rootfs, pkgs, [base, libc], a.epoch), "app": front_app},
    }
    for key, layers in plan.items():
        ctx = out / key
        ctx.mkdir(parents=True, exist_ok=True)
        for name, layer in layers.items():
            layer.write(ctx / f"{name}.tar")
        image = contract["images"][key]
        (ctx / "Dockerfile").write_text(dockerfile(image, contract, layers, a.version, a.revision, a.epoch))
        print(f"{key}: layers {', '.join(layers)} in {ctx}", file=sys.stderr)


if __name__ == "__main__":
    main()
