#!/usr/bin/env bash
# Pins recette to released digests in Git: rewrites only the `images:` block of the recette
# overlay's kustomization.yaml (comments and every other line kept; `kustomize edit` would
# reformat the whole file), then renders the overlay and checks that its Deployments run
# exactly those digests. The release proposes the result as a pull request
# (.github/workflows/release.yml, job pin-recette), so that Git says what recette runs.
# Usage: scripts/ci/pin-recette.sh [--overlay DIR] API_REF FRONT_REF
#   *_REF      REGISTRY/OWNER/datapress-{api,front}@sha256:<64 hex> (checked as deploy-recette.sh does)
#   --overlay  the overlay to rewrite (default kustomize/overlays/recette; tests use a copy)
#   env: GITHUB_REPOSITORY_OWNER, REGISTRY (default ghcr.io)
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
. "$(dirname "$0")/common.sh"

overlay="$DP_ROOT/kustomize/overlays/recette"
if [[ ${1:-} == --overlay ]]; then overlay=${2:?--overlay needs a directory}; shift 2; fi
(($# == 2)) || die "usage: $0 [--overlay DIR] API_REF FRONT_REF"
[[ -f $overlay/kustomization.yaml ]] || die "no kustomization.yaml in $overlay"
declare -A refs=([api]=$1 [front]=$2)
for key in "${IMAGE_KEYS[@]}"; do check_release_digest "${refs[$key]}" "$key"; done

python3 - "$overlay/kustomization.yaml" "$(release_name api)=${refs[api]}" "$(release_name front)=${refs[front]}" <<'PY'
import re, sys
path, *pins = sys.argv[1:]
text = open(path).read()
# The block: the `images:` line and its indented (or blank) lines, up to the next top-level key.
block = re.compile(r"^images:\n(?:(?:[ \t]+.*|)\n)*?(?=^\S|\Z)", re.M)
if len(block.findall(text)) != 1:
    sys.exit(f"{path}: expected one top-level images: block")
lines = ["images:"]
for pin in pins:
    name, ref = pin.split("=", 1)
    repository, digest = ref.split("@")
    lines.append(f"  - name: {name}")
    if repository != name:
        lines.append(f"    newName: {repository}")
    lines.append(f"    digest: {digest}")
open(path, "w").write(block.sub("\n".join(lines) + "\n\n", text, count=1).rstrip("\n") + "\n")
PY

images=$("$DP_ROOT/hack/tools/kubectl" kustomize "$overlay" | python3 -c '
import sys
print(" ".join(sorted(line.split("image:", 1)[1].strip() for line in sys.stdin if line.strip().startswith(("image:", "- image:")))))')
want=$(printf '%s\n' "${refs[api]}" "${refs[front]}" | sort | xargs)
[[ $images == "$want" ]] || die "the pinned overlay runs '$images', not '$want'"
log "recette pinned to ${refs[api]} and ${refs[front]} in $overlay/kustomization.yaml"
