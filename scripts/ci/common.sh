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

# release_name KEY: the image's name in the Kubernetes base, the release's repository
# (contract releaseRepository/name, e.g. ghcr.io/datapress/datapress-api).
release_name() {
  python3 -c 'import json, sys; c = json.load(open(sys.argv[1])); print(c["releaseRepository"] + "/" + c["images"][sys.argv[2]]["name"])' \
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


# The registry releases are pushed to and deployed from: REGISTRY (default ghcr.io), a host[:port].
release_registry() {
  local registry=${REGISTRY:-ghcr.io}
  [[ $registry =~ ^[a-z0-9.-]+(:[0-9]+)?$ ]] || die "REGISTRY '$registry' is not a registry host[:port]"
  echo "$registry"
}

# release_repository KEY: REGISTRY/OWNER/NAME of the contract image KEY, the only repository a
# release is pushed to and deployed from (OWNER: GITHUB_REPOSITORY_OWNER, lowercased as
# registry paths are).
release_repository() {
  [[ -n ${GITHUB_REPOSITORY_OWNER:-} ]] || die "GITHUB_REPOSITORY_OWNER is not set (the owner of the release images)"
  local registry
  registry=$(release_registry) || exit 1
  echo "$registry/${GITHUB_REPOSITORY_OWNER,,}/$(contract_name "$1")"
}

# check_release_digest REF [KEY...]: dies unless REF is release_repository KEY@sha256:<64 hex>
# for one of KEYs (default: every contract image). No network: a reference to another registry
# or owner is refused before anything contacts it.
check_release_digest() {
  local ref=$1 keys=("${@:2}") key repo repos=()
  ((${#keys[@]})) || keys=("${IMAGE_KEYS[@]}")
  for key in "${keys[@]}"; do
    repo=$(release_repository "$key") || exit 1
    [[ $ref =~ ^(.+)@sha256:[0-9a-f]{64}$ && ${BASH_REMATCH[1]} == "$repo" ]] && return 0
    repos+=("$repo")
  done
  die "'$ref' is not an image digest of ${repos[*]} (REPOSITORY@sha256:<64 hex>; registry and owner from REGISTRY and GITHUB_REPOSITORY_OWNER)"
}

# registry_auth_json REGISTRY FILE: a Docker config (auths) holding GHCR_PULL_USER and
# GHCR_PULL_TOKEN for REGISTRY only, written mode 600. The token never reaches a command line.
registry_auth_json() {
  : "${GHCR_PULL_USER:?GHCR_PULL_USER is required with GHCR_PULL_TOKEN}" "${GHCR_PULL_TOKEN:?}"
  (umask 077 && python3 - "$1" "$2" <<'PY'
import base64, json, os, sys
registry, path = sys.argv[1], sys.argv[2]
auth = base64.b64encode(f'{os.environ["GHCR_PULL_USER"]}:{os.environ["GHCR_PULL_TOKEN"]}'.encode()).decode()
json.dump({"auths": {registry: {"auth": auth}}}, open(path, "w"))
PY
  )
}
