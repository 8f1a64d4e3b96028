"""scripts/ci/propose-pin.sh in a small repository with a local bare remote and a fake `gh`:
one commit holding the recette overlay only, on recette/pin-<short sha>, and a pull request
against main; nothing when the overlay is unchanged; a refusal when anything else changed."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OVERLAY = "kustomize/overlays/recette/kustomization.yaml"
SHA = "abcdef1234567890abcdef1234567890abcdef12"
FAKE_GH = """#!/usr/bin/env bash
echo "$*" >>"$GH_LOG"
[[ $1 == pr ]] && echo https://github.example/datapress/datapress-poc/pull/7
exit 0
"""


def git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path):
    remote, repo = tmp_path / "remote.git", tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(remote)], check=True)
    (repo / "scripts").mkdir(parents=True)
    shutil.copytree(ROOT / "scripts" / "ci", repo / "scripts" / "ci")
    shutil.copy2(ROOT / "scripts" / "lib.sh", repo / "scripts" / "lib.sh")
    (repo / OVERLAY).parent.mkdir(parents=True)
    shutil.copy2(ROOT / OVERLAY, repo / OVERLAY)
    (repo / ".gitignore").write_text("build/\n")
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    git(repo, "add", "-A")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-qm", "init")
    git(repo, "remote", "add", "origin", str(remote))
    git(repo, "push", "-q", "origin", "main")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gh").write_text(FAKE_GH)
    (bin_dir / "gh").chmod(0o755)
    return repo


def propose(repo):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    env.update(PATH=f"{repo.parent / 'bin'}:{env['PATH']}", GH_LOG=str(repo.parent / "gh.log"),
               GH_TOKEN="unused", GITHUB_SHA=SHA, GITHUB_REPOSITORY="datapress/datapress-poc")
    return subprocess.run([str(repo / "scripts" / "ci" / "propose-pin.sh")], env=env, capture_output=True, text=True, timeout=60)


def gh_calls(repo):
    log = repo.parent / "gh.log"
    return log.read_text().splitlines() if log.exists() else []


def test_proposes_one_commit_with_the_overlay_only(repo):
    text = (repo / OVERLAY).read_text()
    (repo / OVERLAY).write_text(text.replace('newTag: "1.0.0"', "digest: sha256:" + "1" * 64))
    result = propose(repo)
    assert result.returncode == 0, result.stderr
    branch = "recette/pin-abcdef1"
    remote = repo.parent / "remote.git"
    assert git(remote, "rev-list", "--count", f"main..{branch}").strip() == "1"
    assert git(remote, "diff", "--name-only", "main", branch).split() == [OVERLAY]
    pr = [c for c in gh_calls(repo) if c.startswith("pr create")]
    assert len(pr) == 1 and "--base main --head recette/pin-abcdef1" in pr[0], gh_calls(repo)
    assert "auth setup-git" in gh_calls(repo)


def test_nothing_to_propose_when_the_overlay_is_unchanged(repo):
    result = propose(repo)
    assert result.returncode == 0, result.stderr
    assert "already names the deployed digests" in result.stdout + result.stderr
    assert gh_calls(repo) == []
    assert git(repo.parent / "remote.git", "branch", "--list", "--format=%(refname:short)").split() == ["main"]


def test_refuses_when_another_file_changed(repo):
    (repo / OVERLAY).write_text((repo / OVERLAY).read_text().replace('newTag: "1.0.0"', "digest: sha256:" + "1" * 64))
    (repo / "scripts" / "lib.sh").write_text((repo / "scripts" / "lib.sh").read_text() + "\n# changed\n")
    result = propose(repo)
    assert result.returncode != 0 and "may differ from the commit" in result.stderr, result.stderr
    assert gh_calls(repo) == []
