"""scripts/ci/nix-images.sh on this machine, where Nix cannot build: a stand-in `nix` on PATH
answers `nix build --out-link OUT .#KEY-image` with a Docker archive of the offline-built
image (`make images`), in both shapes dockerTools produces (buildLayeredImage's .tar.gz and
streamLayeredImage's script). What is tested is the script's own part: loading, checking
names and tags against the contract, sizes, and the saved archive. The real `nix build`
runs in the GitHub Actions `nix` job only.
"""

import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "ci" / "nix-images.sh"
CONTRACT = json.loads((ROOT / "images" / "contract.json").read_text())
VERSION = next(
    line.split('"')[1]
    for line in (ROOT / "Cargo.toml").read_text().split("[workspace.package]")[1].splitlines()
    if line.startswith("version")
)
REFS = {key: f'{image["name"]}:{VERSION}' for key, image in CONTRACT["images"].items()}
TAGS = [VERSION, *CONTRACT["extraTags"]]


def docker_ok():
    if not shutil.which("docker") or subprocess.run(["docker", "info"], capture_output=True).returncode:
        return False
    return all(subprocess.run(["docker", "image", "inspect", r], capture_output=True).returncode == 0 for r in REFS.values())


pytestmark = pytest.mark.skipif(not docker_ok(), reason="needs a running Docker engine and the images of `make images`")

FAKE_NIX = """#!/usr/bin/env bash
# Stand-in for `nix build --print-build-logs --out-link OUT .#KEY-image` (test only).
set -euo pipefail
out=; attr=
while (($#)); do case $1 in --out-link) out=$2; shift 2 ;; .#*) attr=${1#.#}; shift ;; *) shift ;; esac; done
key=${attr%-image}
src="$FAKE_ARCHIVES/$key.tar.gz"
if [[ $FAKE_SHAPE == stream ]]; then
  printf '#!/bin/sh\\nexec gunzip -c %s\\n' "$src" >"$FAKE_ARCHIVES/$key-stream"
  chmod +x "$FAKE_ARCHIVES/$key-stream"
  src="$FAKE_ARCHIVES/$key-stream"
fi
ln -sfn "$src" "$out"
"""


def fake_env(tmp_path, shape, refs):
    """Archives holding every tag of the contract, as the flake's do (nix/contract-image.nix)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nix").write_text(FAKE_NIX)
    (bin_dir / "nix").chmod(0o755)
    archives = tmp_path / "archives"
    archives.mkdir()
    for key, ref in refs.items():
        name = ref.rsplit(":", 1)[0]
        for tag in TAGS[1:]:
            subprocess.run(["docker", "tag", ref, f"{name}:{tag}"], check=True)
        tags = " ".join(f'"{name}:{tag}"' for tag in ([ref.rsplit(":", 1)[1]] + TAGS[1:]))
        subprocess.run(f'docker save {tags} | gzip -1 > "{archives}/{key}.tar.gz"', shell=True, check=True)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_ARCHIVES": str(archives), "FAKE_SHAPE": shape}


@pytest.mark.parametrize("shape", ["archive", "stream"])
def test_loads_checks_sizes_and_saves(tmp_path, shape):
    save = tmp_path / "images.tar"
    result = subprocess.run(
        [str(SCRIPT), "--save", str(save)], env=fake_env(tmp_path, shape, REFS), capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    for ref in REFS.values():
        assert any(line.startswith(ref) and line.rstrip().endswith("MB") for line in result.stdout.splitlines()), result.stdout
    with tarfile.open(save) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
    assert sorted(t for m in manifest for t in m["RepoTags"]) == sorted(
        f'{image["name"]}:{tag}' for image in CONTRACT["images"].values() for tag in TAGS)


def test_archive_size_is_dockers(tmp_path):
    """nix/image-archive.py, which holds the Nix images to the contract's limits, measures
    what `docker image inspect` reports for the same image (offline images/build.sh)."""
    for ref in REFS.values():
        archive = tmp_path / "image.tar"
        subprocess.run(["docker", "save", "-o", str(archive), ref], check=True)
        ours = int(subprocess.run(["python3", str(ROOT / "nix" / "image-archive.py"), "size", str(archive)],
                                  capture_output=True, text=True, check=True).stdout)
        docker = int(subprocess.run(["docker", "image", "inspect", "-f", "{{.Size}}", ref],
                                    capture_output=True, text=True, check=True).stdout)
        assert abs(ours - docker) <= 0.01 * docker, (ref, ours, docker)


def test_refuses_an_image_the_contract_does_not_name(tmp_path):
    wrong = "datapress-api:0.0.0-not-the-contract"
    subprocess.run(["docker", "tag", REFS["api"], wrong], check=True)
    try:
        env = fake_env(tmp_path, "archive", {**REFS, "api": wrong})
        result = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
    finally:
        subprocess.run(["docker", "rmi", wrong], capture_output=True)
    assert result.returncode != 0
    assert f"the contract says {REFS['api']}" in result.stderr
