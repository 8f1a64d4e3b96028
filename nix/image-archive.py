#!/usr/bin/env python3
"""Docker image archives (`docker save`, dockerTools' .tar.gz) for the flake.

  retag IN OUT NAME:TAG...   OUT = IN with every NAME:TAG in its manifest, so that `docker
                             load` creates all the contract's tags at once (uncompressed,
                             same bytes for the same input)
  size ARCHIVE               the bytes of its layers' files (Docker's uncompressed .Size:
                             regular files and symlinks, 1 MB = 10^6 bytes)
  check-size ARCHIVE MAX_MB  fails when that size is over MAX_MB

Standard library only: the Nix sandbox runs it with python3 and nothing else.
"""

import gzip
import io
import json
import sys
import tarfile


def read_archive(path):
    with open(path, "rb") as f:
        data = f.read()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def members(data):
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for m in tar.getmembers():
            yield m, (tar.extractfile(m).read() if m.isreg() else None)


def retag(src, dst, tags):
    data = read_archive(src)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for m, content in members(data):
            if m.name == "manifest.json":
                manifest = json.loads(content)
                if len(manifest) != 1:
                    sys.exit(f"image-archive: {src} holds {len(manifest)} images, expected 1")
                manifest[0]["RepoTags"] = list(tags)
                content = json.dumps(manifest, separators=(",", ":")).encode()
            elif m.name == "repositories":  # the legacy index, when the archive has one
                top = next(iter(next(iter(json.loads(content).values())).values()))
                repos = {}
                for name, tag in (t.rsplit(":", 1) for t in tags):
                    repos.setdefault(name, {})[tag] = top
                content = json.dumps(repos, separators=(",", ":")).encode()
            if content is not None:
                m.size = len(content)
                tar.addfile(m, io.BytesIO(content))
            else:
                tar.addfile(m)
    with open(dst, "wb") as f:
        f.write(out.getvalue())


def size(path):
    files = dict((m.name, c) for m, c in members(read_archive(path)) if c is not None)
    manifest = json.loads(files["manifest.json"])
    total = 0
    for layer in (name for image in manifest for name in image["Layers"]):
        blob = files[layer]
        if blob[:2] == b"\x1f\x8b":
            blob = gzip.decompress(blob)
        for m, _ in members(blob):
            if m.isreg():
                total += m.size
            elif m.issym():
                total += len(m.linkname)
    return total


def main(argv):
    if len(argv) >= 4 and argv[1] == "retag":
        retag(argv[2], argv[3], argv[4:])
    elif len(argv) == 3 and argv[1] == "size":
        print(size(argv[2]))
    elif len(argv) == 4 and argv[1] == "check-size":
        got, limit = size(argv[2]), float(argv[3])
        verdict = "within" if got <= limit * 1e6 else "OVER"
        print(f"image-archive: {argv[2]}: {got / 1e6:.1f} MB, {verdict} the {argv[3]} MB limit")
        return 0 if got <= limit * 1e6 else 1
    else:
        sys.exit(__doc__)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
