#!/usr/bin/env bash
# Proposes, as a pull request against main, the recette overlay that scripts/ci/pin-recette.sh
# rewrote: one commit on the branch recette/pin-<short sha>, holding that file only. Nothing is
# proposed when the overlay already pins these digests. Git credentials come from gh
# (`gh auth setup-git`, GH_TOKEN), never from a URL or an argument.
# A pull request opened with GITHUB_TOKEN starts no workflow by itself (a GitHub rule): ci.yml
# runs on it when a maintainer pushes to it or closes and reopens it (docs/ci-cd.md).
# Usage: scripts/ci/propose-pin.sh   env: GH_TOKEN, GITHUB_SHA, GITHUB_REPOSITORY
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
. "$(dirname "$0")/common.sh"

: "${GH_TOKEN:?GH_TOKEN is required}" "${GITHUB_SHA:?}" "${GITHUB_REPOSITORY:?}"
file=kustomize/overlays/recette/kustomization.yaml
cd "$DP_ROOT"
others=$(git status --porcelain | grep -v "^ M $file\$" || true)
[[ -z $others ]] || die "only $file may differ from the commit, not: $others"
if git diff --quiet -- "$file"; then
  gh_notice "Recette already pinned" "$file already names the deployed digests: no pull request"
  exit 0
fi

short=${GITHUB_SHA:0:7}
branch="recette/pin-$short"
gh auth setup-git
git switch --create "$branch"
git -c user.name="github-actions[bot]" -c user.email="41898282+github-actions[bot]@users.noreply.github.com" \
  commit --quiet --message "recette: pin the digests that release $short deployed" -- "$file"
git push --force origin "$branch"
body="Release $short was deployed to recette (workflow deploy-recette): this change writes its
digests into the overlay, so that Git says what recette runs.

\`\`\`diff
$(git show --format= -- "$file")
\`\`\`"
url=$(gh pr create --repo "$GITHUB_REPOSITORY" --base main --head "$branch" \
  --title "recette: pin the digests of release $short" --body "$body")
gh_notice "Recette pin proposed" "$url"
echo "- recette pin proposed: $url" | gh_summary
