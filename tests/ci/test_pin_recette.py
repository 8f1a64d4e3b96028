"""scripts/ci/pin-recette.sh on a copy of the kustomize tree, with the project's kubectl: the
recette overlay gets the released digests, only its images block changes, and the render runs
exactly those digests. tests/e2e/release-chain.sh checks on the cluster that the pinned overlay
is what the deploy left running (kubectl diff empty)."""

import difflib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PIN = ROOT / "scripts" / "ci" / "pin-recette.sh"
KUBECTL = ROOT / "hack" / "tools" / "kubectl"
API = "ghcr.io/datapress/datapress-api@sha256:" + "1" * 64
FRONT = "ghcr.io/datapress/datapress-front@sha256:" + "2" * 64


@pytest.fixture
def overlay(tmp_path):
    shutil.copytree(ROOT / "kustomize", tmp_path / "kustomize")
    return tmp_path / "kustomize" / "overlays" / "recette"


def pin(overlay, *refs, owner="DataPress"):
    env = {k: v for k, v in os.environ.items() if k not in ("REGISTRY", "GITHUB_ACTIONS")}
    env["GITHUB_REPOSITORY_OWNER"] = owner
    return subprocess.run([str(PIN), "--overlay", str(overlay), *refs], env=env, capture_output=True, text=True, timeout=300)


def images(overlay):
    out = subprocess.run([str(KUBECTL), "kustomize", str(overlay)], check=True, capture_output=True, text=True).stdout
    return sorted(c["image"] for d in yaml.safe_load_all(out) if d and d["kind"] == "Deployment"
                  for c in d["spec"]["template"]["spec"]["containers"])


def changed_lines(before, after):
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_pins_the_digests_changing_only_the_images_block(overlay):
    before = (overlay / "kustomization.yaml").read_text()
    result = pin(overlay, API, FRONT)
    assert result.returncode == 0, result.stderr
    after = (overlay / "kustomization.yaml").read_text()
    assert images(overlay) == [API, FRONT]
    changes = changed_lines(before, after)
    assert all("newTag:" in line or "digest:" in line for line in changes), changes
    assert sum(line.startswith("+") for line in changes) == 2, changes
    # A second release replaces the digests; the same one changes nothing.
    assert pin(overlay, API, FRONT).returncode == 0
    assert (overlay / "kustomization.yaml").read_text() == after


def test_a_fork_pins_its_own_repository(overlay):
    api = API.replace("/datapress/", "/fork/")
    result = pin(overlay, api, FRONT.replace("/datapress/", "/fork/"), owner="Fork")
    assert result.returncode == 0, result.stderr
    assert images(overlay) == [api, FRONT.replace("/datapress/", "/fork/")]
    assert "newName: ghcr.io/fork/datapress-api" in (overlay / "kustomization.yaml").read_text()


@pytest.mark.parametrize("api", [
    "ghcr.io/datapress/datapress-api:1.0.0",              # a tag
    "ghcr.io/other/datapress-api@sha256:" + "1" * 64,    # another owner
    "docker.io/datapress/datapress-api@sha256:" + "1" * 64,  # another registry
    FRONT,                                                # the other image
])
def test_refuses_what_is_not_a_release_digest_and_writes_nothing(overlay, api):
    before = (overlay / "kustomization.yaml").read_text()
    result = pin(overlay, api, FRONT)
    assert result.returncode != 0 and "is not an image digest of" in result.stderr, result.stderr
    assert (overlay / "kustomization.yaml").read_text() == before
