#!/usr/bin/env bash
# Builds both images with Nix (`nix build .#api-image .#front-image`), loads them into Docker
# under the contract's names and tags (version and extraTags, all in the archive), checks
# those names and tags, and prints their sizes (the flake's checks hold them to the limits).
# Usage: scripts/ci/nix-images.sh [--save FILE]   (FILE: a `docker save` archive of both)
set -euo pipefail
# shellcheck source=scripts/ci/common.sh
. "$(dirname "$0")/common.sh"

save=
while (($#)); do
  case $1 in
    --save) save=$2; shift 2 ;;
    *) die "usage: $0 [--save FILE]" ;;
  esac
done

command -v nix >/dev/null || die "Nix is not installed (this script runs on GitHub Actions, where Nix can fetch its inputs)"
ensure_docker
out="$DP_BUILD/nix"
mkdir -p "$out"
cd "$DP_ROOT"

refs=()
for key in "${IMAGE_KEYS[@]}"; do
  log "nix build .#$key-image"
  nix build --print-build-logs --out-link "$out/$key-image" ".#$key-image"
  result=$(readlink -f "$out/$key-image")
  # streamLayeredImage gives a script that writes the archive; buildLayeredImage the archive.
  if [[ $(head -c 2 "$result") == '#!' ]]; then
    loaded=$("$result" | docker load)
  else
    loaded=$(docker load -i "$result")
  fi
  echo "$loaded"
  want=$(local_ref "$key")
  for tag in $(contract_tags); do
    grep -qx "Loaded image: $(contract_name "$key"):$tag" <<<"$loaded" ||
      die "nix built '$(grep -o 'Loaded image: .*' <<<"$loaded" | cut -d' ' -f3 | xargs)', the contract says $(contract_name "$key"):$tag"
  done
  refs+=("$want")
done

printf '\n%-32s %12s\n' IMAGE SIZE
for ref in "${refs[@]}"; do
  printf '%-32s %9.1f MB\n' "$ref" "$(docker image inspect -f '{{.Size}}' "$ref" | awk '{print $1 / 1e6}')"
done
{
  echo "### Images built by Nix"
  echo "| image | size (MB) | id |"
  echo "|---|---|---|"
  for ref in "${refs[@]}"; do
    echo "| \`$ref\` | $(docker image inspect -f '{{.Size}}' "$ref" | awk '{printf "%.1f", $1 / 1e6}') | \`$(docker image inspect -f '{{.Id}}' "$ref")\` |"
  done
} | gh_summary

if [[ -n $save ]]; then
  mkdir -p "$(dirname "$save")"
  all=()
  for ref in "${refs[@]}"; do
    for tag in $(contract_tags); do all+=("${ref%:*}:$tag"); done
  done
  docker save -o "$save" "${all[@]}"
  log "saved ${refs[*]} to $save"
fi
