#!/usr/bin/env python3
"""Writes a container image archive from layer tarballs, without Docker or a registry.

The archive is an OCI image layout (index.json, the name in the io.containerd.image.name
annotation, which `ctr images import` uses) that is also a docker-archive (manifest.json
with RepoTags, which `docker load` and kind's archive reader use). Same inputs, same bytes.

Usage: image_archive.py --ref REF --out FILE [--user U] [--entrypoint ARG]... [--cmd ARG]...
                        [--env K=V]... [--workdir DIR] --layer TAR [--layer TAR]...
"""
import argparse
import hashlib
import io
import json
import os
import shutil
import tarfile


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ref", required=True, help="image name, e.g. registry.k8s.io/pause:3.10.1")
    p.add_argument("--out", required=True)
    p.add_argument("--user", default="")
    p.add_argument("--entrypoint", action="append", default=[])
    p.add_argument("--cmd", action="append", default=[])
    p.add_argument("--env", action="append", default=[])
    p.add_argument("--workdir", default="")
    p.add_argument("--layer", action="append", required=True, help="an uncompressed layer tarball")
    a = p.parse_args()

    blobs = {}  # digest -> (path or bytes)
    layers = []
    for path in a.layer:
        digest = sha256_file(path)
        blobs[digest] = path
        layers.append((digest, os.path.getsize(path)))

    config = {"architecture": "amd64", "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d, _ in layers]}}
    for key, value in (("User", a.user), ("Entrypoint", a.entrypoint), ("Cmd", a.cmd),
                       ("Env", a.env), ("WorkingDir", a.workdir)):
        if value:
            config["config"][key] = value

    def blob(data):
        raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
        digest = hashlib.sha256(raw).hexdigest()
        blobs[digest] = raw
        return digest, len(raw)

    cfg_digest, cfg_size = blob(config)
    man_digest, man_size = blob({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + cfg_digest, "size": cfg_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": "sha256:" + d, "size": s} for d, s in layers],
    })
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + man_digest, "size": man_size,
        "annotations": {"io.containerd.image.name": a.ref,
                        "org.opencontainers.image.ref.name": a.ref.rsplit(":", 1)[-1]}}]}
    docker_manifest = [{"Config": "blobs/sha256/" + cfg_digest, "RepoTags": [a.ref],
                        "Layers": ["blobs/sha256/" + d for d, _ in layers]}]

    def add(tar, name, data=None, path=None):
        info = tarfile.TarInfo(name)
        info.mtime, info.mode, info.uid, info.gid = 0, 0o644, 0, 0
        if path is not None:
            info.size = os.path.getsize(path)
            with open(path, "rb") as f:
                tar.addfile(info, f)
        else:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

    tmp = a.out + ".tmp"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        add(tar, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        add(tar, "index.json", json.dumps(index, separators=(",", ":")).encode())
        add(tar, "manifest.json", json.dumps(docker_manifest, separators=(",", ":")).encode())
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mtime, info.mode = tarfile.DIRTYPE, 0, 0o755
            tar.addfile(info)
        for digest in sorted(blobs):
            content = blobs[digest]
            if isinstance(content, bytes):
                add(tar, "blobs/sha256/" + digest, data=content)
            else:
                add(tar, "blobs/sha256/" + digest, path=content)
    shutil.move(tmp, a.out)
    print(f"{a.ref} {a.out} sha256:{man_digest}")


if __name__ == "__main__":
    main()
