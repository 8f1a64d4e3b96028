"""scripts/ci/publish-images.sh against a real registry on 127.0.0.1 (the CNCF distribution
registry, built from the Go module proxy), with the offline-built images of `make images`.

The script runs from a clone of this repository at the commit the images were built from
(their `org.opencontainers.image.revision` label), since it refuses to publish an image of
another commit. What GHCR adds (authentication, packages) is only exercised on GitHub.
"""

import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest
from local_registry import free_port, wait_ready

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = json.loads((ROOT / "images" / "contract.json").read_text())
NAMES = {key: image["name"] for key, image in CONTRACT["images"].items()}
VERSION = next(
    line.split('"')[1]
    for line in (ROOT / "Cargo.toml").read_text().split("[workspace.package]")[1].splitlines()
    if line.startswith("version")
)
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


def sh(*args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def image_revisions():
    if not shutil.which("docker") or sh("docker", "info").returncode:
        return None
    revisions = set()
    for name in NAMES.values():
        r = sh("docker", "image", "inspect", "-f", '{{index .Config.Labels "org.opencontainers.image.revision"}}', f"{name}:{VERSION}")
        if r.returncode:
            return None
        revisions.add(r.stdout.strip())
    return revisions


REVISIONS = image_revisions()
pytestmark = pytest.mark.skipif(
    not REVISIONS or len(REVISIONS) != 1 or not shutil.which("go"),
    reason="needs Docker, Go and both images of `make images` built from one commit",
)


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("registry")
    binary = sh(
        "bash", "-c", '. "$1/scripts/lib.sh"; go_tool github.com/distribution/distribution/v3/cmd/registry v3.1.2 registry', "_", str(ROOT)
    ).stdout.strip()
    port = free_port()
    (tmp / "config.yml").write_text(
        f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {tmp}/data\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen([binary, "serve", str(tmp / "config.yml")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    wait_ready(address, proc)
    yield address
    proc.kill()
    proc.wait()
    for line in sh("docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}").stdout.split():
        if line.startswith(address + "/"):
            sh("docker", "rmi", line)


def clone_at(parent, revision):
    """This repository at REVISION, with today's CI scripts laid over it."""
    repo = parent / "repo"
    assert sh("git", "clone", "-q", "--no-checkout", str(ROOT), str(repo)).returncode == 0
    if sh("git", "-C", str(repo), "checkout", "-q", revision).returncode:
        pytest.skip(f"the images were built from {revision!r}, not a commit of this repository")
    shutil.rmtree(repo / "scripts" / "ci", ignore_errors=True)
    shutil.copytree(ROOT / "scripts" / "ci", repo / "scripts" / "ci")
    shutil.copy2(ROOT / "scripts" / "lib.sh", repo / "scripts" / "lib.sh")
    return repo


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    # The repository at the images' commit.
    (revision,) = REVISIONS
    return clone_at(tmp_path_factory.mktemp("clone"), revision), revision


def publish(script_root, registry, tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env.update(GHCR_TOKEN="unused-by-this-registry", GITHUB_ACTOR="ci", GITHUB_REPOSITORY_OWNER="Example-Org",
               REGISTRY=registry, GITHUB_OUTPUT=str(tmp_path / "output"), **extra)
    return sh(str(script_root / "scripts" / "ci" / "publish-images.sh"), env=env, timeout=600)


@pytest.mark.parametrize("ref", ["main", "version tag"])
def test_pushes_the_commit_tag_the_version_only_from_its_tag_and_records_the_registrys_digests(registry, clone, tmp_path, ref):
    # Runs in this order on one registry: a push to main, then the v<version> tag.
    repo, revision = clone
    extra = {"GITHUB_REF_TYPE": "tag", "GITHUB_REF_NAME": f"v{VERSION}"} if ref == "version tag" else {}
    result = publish(repo, registry, tmp_path, **extra)
    assert result.returncode == 0, result.stderr[-3000:]
    recorded = json.loads((repo / "build" / "release" / "digests.json").read_text())
    assert recorded["version"] == VERSION and recorded["revision"] == revision
    outputs = dict(line.split("=", 1) for line in (tmp_path / "output").read_text().split())
    for key, name in NAMES.items():
        repository = f"{registry}/example-org/{name}"  # owner lowercased for the registry
        image = recorded["images"][key]
        assert image["repository"] == repository and image["ref"] == f"{repository}@{image['digest']}"
        assert outputs[f"{key}-ref"] == image["ref"]
        tags = json.load(urllib.request.urlopen(f"http://{registry}/v2/example-org/{name}/tags/list"))["tags"]
        assert sorted(tags) == sorted([revision[:7]] + ([VERSION] if ref == "version tag" else []))
        for tag in tags:
            request = urllib.request.Request(f"http://{registry}/v2/example-org/{name}/manifests/{tag}", method="HEAD")
            request.add_header("Accept", MANIFEST_TYPES)
            served = urllib.request.urlopen(request).headers["Docker-Content-Digest"]
            assert served == image["digest"], f"{name}:{tag} is {served} in the registry, {image['digest']} recorded"


def test_refuses_a_tag_that_is_not_the_version(registry, clone, tmp_path):
    repo, _ = clone
    result = publish(repo, registry, tmp_path, GITHUB_REF_TYPE="tag", GITHUB_REF_NAME="v0.0.0-other")
    assert result.returncode != 0 and "does not match the workspace version" in result.stderr


def test_refuses_images_of_another_commit(registry, tmp_path):
    (revision,) = REVISIONS
    repo = clone_at(tmp_path, revision)
    # One commit more: the images are now those of the previous commit.
    later = sh("git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.invalid",
               "commit", "-q", "--allow-empty", "-m", "a later commit")
    assert later.returncode == 0, later.stderr
    result = publish(repo, registry, tmp_path)
    assert result.returncode != 0 and f"has revision '{revision}'" in result.stderr
