# Shared by the CI helper scripts: the image contract read once, in one place.
# shellcheck shell=bash
# shellcheck source=scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# The image keys of images/contract.json, in a stable order.
# shellcheck disable=SC2034 # read by the scripts that source this file
IMAGE_KEYS=(api front)

# contract_name KEY: the image name the contract gives (api -> datapress-api).
contract_name() {
  python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["images"][sys.argv[2]]["name"])' \
    "$DP_ROOT/images/contract.json" "$1"
}

# local_ref KEY: the name:tag both build paths produce (tag = workspace version).
local_ref() { echo "$(contract_name "$1"):$(workspace_version)"; }

# contract_tags: every tag both build paths apply: the workspace version, then extraTags.
contract_tags() {
  echo "$(workspace_version) $(python3 -c 'import json, sys; print(" ".join(json.load(open(sys.argv[1]))["extraTags"]))' "$DP_ROOT/images/contract.json")"
}

# GitHub Actions annotations, plain lines elsewhere.
gh_notice() { if [[ -n ${GITHUB_ACTIONS:-} ]]; then echo "::notice title=$1::$2"; else log "$1: $2"; fi; }
gh_summary() { if [[ -n ${GITHUB_STEP_SUMMARY:-} ]]; then cat >>"$GITHUB_STEP_SUMMARY"; else cat >&2; fi; }
gh_output() { if [[ -n ${GITHUB_OUTPUT:-} ]]; then echo "$1=$2" >>"$GITHUB_OUTPUT"; fi; }

# A Python with PyYAML (the CI scripts and tests/ci parse YAML), cached by version.
ci_python() { echo "$(py_venv ci pyyaml==6.0.4 pytest==9.2.0)/bin/python"; }

# release_identity SERVER REPOSITORY: the anchored regexp (cosign --certificate-identity-regexp)
# of the only signer accepted: REPOSITORY's release workflow run from main or a v* tag.
release_identity() {
  local id="$1/$2/.github/workflows/release.yml"
  echo "^${id//./\\.}@refs/(heads/main|tags/v[0-9][^/]*)\$"
}

