#!/usr/bin/env bash
# Suite `ci`: the GitHub Actions workflows checked offline, as far as a machine without
# GitHub can check them: actionlint (with shellcheck on every `run:`), zizmor (offline
# audits, auditor persona, accepted findings explained in .github/zizmor.yml), shellcheck
# of the CI scripts, and tests/ci/test_workflows.py (targets, scripts, images, overlays,
# pins, permissions, and the recette deploy script rendered without a cluster), plus
# scripts/lib.sh's start_daemon, which CI uses to start dockerd (tests/ci/test_start_daemon.py),
# and the test runner itself on fake suites (tests/ci/test_runner.py), and the image
# verification before a deploy (tests/ci/test_verify_images.py: crane's registry on 127.0.0.1,
# cosign with a local key, offline; crane and cosign built once from the Go module proxy).
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
. "$(dirname "$0")/../../scripts/ci/common.sh"

ACTIONLINT_VERSION=v1.7.12
ZIZMOR_VERSION=1.32.0

cd "$DP_ROOT"
ensure_go
command -v shellcheck >/dev/null || ensure_apt shellcheck
actionlint=$(go_tool github.com/rhysd/actionlint/cmd/actionlint "$ACTIONLINT_VERSION" actionlint)
zizmor="$(py_venv zizmor "zizmor==$ZIZMOR_VERSION")/bin/zizmor"

log "actionlint $ACTIONLINT_VERSION (shellcheck $(shellcheck --version | sed -n 's/^version: //p'))"
"$actionlint" -shellcheck "$(command -v shellcheck)"

# Online on GitHub (GH_TOKEN given by ci.yml): the audits that ask GitHub too (impostor
# commits, known vulnerable actions, tags that moved); offline here, with no token.
if [[ -n ${GH_TOKEN:-} ]]; then online=(); log "zizmor $ZIZMOR_VERSION --persona auditor (online)"
else online=(--offline); log "zizmor $ZIZMOR_VERSION --offline --persona auditor (online audits: GitHub only)"; fi
"$zizmor" "${online[@]}" --persona auditor --no-progress --config .github/zizmor.yml .github

log "shellcheck of the CI, deploy, test runner and kind cluster scripts"
shellcheck -x scripts/ci/*.sh scripts/deploy-recette.sh scripts/prune-config.sh scripts/test.sh scripts/lib.sh tests/ci/*.sh \
  hack/kind/*.sh hack/kind/iptables-wrapper hack/tools/kind

log "pytest tests/ci"
"$(ci_python)" -m pytest -q -p no:cacheprovider tests/ci
