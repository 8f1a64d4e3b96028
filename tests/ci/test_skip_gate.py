"""scripts/skip_gate.py: which test skips tests/allowed-skips.txt accepts, and where."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import skip_gate  # noqa: E402
from skip_gate import Skip  # noqa: E402

API_DOWN = Skip("node", "DataPress front at http://127.0.0.1:8081, API down", "needs --expect-api-down")
NIX_IMAGES = Skip("pytest", "tests/ci/test_nix_images.py::test_loads_checks_sizes_and_saves[stream]",
                  "needs a running Docker engine and the images of `make images`")


def test_the_list_parses_and_every_entry_has_its_reason():
    assert len(skip_gate.entries()) >= 4


def test_an_entry_without_a_comment_is_refused(tmp_path):
    listing = tmp_path / "allowed.txt"
    listing.write_text("# why\n* | node: a | b\n\n* | node: c | d\n")
    with pytest.raises(SystemExit, match="needs a comment above it"):
        skip_gate.entries(listing)


@pytest.mark.parametrize("skip, suite, github, accepted", [
    (API_DOWN, "front", False, True),
    (API_DOWN._replace(reason="another reason"), "front", False, False),
    (NIX_IMAGES, "ci", True, True),   # GitHub's workflows job: no images there
    (NIX_IMAGES, "ci", False, False),  # make test: the compose suite built them
    (NIX_IMAGES, "front", True, False),
])
def test_where_a_skip_is_accepted(monkeypatch, skip, suite, github, accepted):
    monkeypatch.setenv("DP_SUITE", suite)
    monkeypatch.setenv("GITHUB_ACTIONS", "true" if github else "false")
    assert skip_gate.allowed(skip, skip_gate.entries()) is accepted


def test_an_unlisted_skip_fails_only_under_ci(monkeypatch, tmp_path):
    skips = tmp_path / "skips.jsonl"
    skips.write_text('{"runner": "node", "id": "t", "reason": "no widget"}\n')
    monkeypatch.delenv("DP_SUITE_STATUS", raising=False)
    monkeypatch.delenv("CI", raising=False)
    assert skip_gate.main(skips) == 0
    monkeypatch.setenv("CI", "true")
    assert skip_gate.main(skips) == 1
