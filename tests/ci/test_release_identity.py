"""scripts/ci/common.sh's release_identity: the only signer cosign accepts (sign-images.sh)
is the repository's release workflow run from main or a v* tag. The regexp is RE2 (cosign,
Go); this subset (escaped dots, a group, a class) means the same in Python's re."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = "https://github.com/Example-Org/datapress/.github/workflows/"


def identity():
    out = subprocess.run(["bash", "-c", '. "$1/scripts/ci/common.sh"; release_identity https://github.com Example-Org/datapress', "_", str(ROOT)],
                         capture_output=True, text=True, check=True).stdout.strip()
    return re.compile(out)


@pytest.mark.parametrize("signer", [WORKFLOW + "release.yml@refs/heads/main", WORKFLOW + "release.yml@refs/tags/v1.0.0"])
def test_accepts_the_release_workflow_from_main_or_a_version_tag(signer):
    assert identity().fullmatch(signer)


@pytest.mark.parametrize("signer", [
    WORKFLOW + "release.yml@refs/heads/feature",           # another branch
    WORKFLOW + "release.yml@refs/pull/7/merge",            # a pull request
    WORKFLOW + "release.yml@refs/tags/latest",             # a tag that is not a version
    WORKFLOW + "ci.yml@refs/heads/main",                   # another workflow
    WORKFLOW + "releaseXyml@refs/heads/main",              # a dot is a dot
    "https://github.com/Other-Org/datapress/.github/workflows/release.yml@refs/heads/main",
    WORKFLOW + "release.yml@refs/heads/main/extra",
])
def test_refuses_any_other_signer(signer):
    assert not identity().fullmatch(signer)
