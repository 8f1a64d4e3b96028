#!/usr/bin/env bash
# The Nix checks that run on this machine, where no flake input can be fetched. The flake
# itself is built by the GitHub Actions workflow (`nix flake check`, `nix build`).
# Usage: nix/tools.sh lint   parse every .nix file, nixpkgs-fmt --check, deadnix --fail,
#                            then nix/tests/test_flake.py (lock, outputs, image scripts)
#        nix/tools.sh fmt    format every .nix file with nixpkgs-fmt (the flake's formatter)
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"

# nixpkgs-fmt 1.3.0 is its last release, the one nixpkgs ships as the flake's `formatter`,
# so `nix fmt` and this script agree.
NIXPKGS_FMT_VERSION=1.3.0
DEADNIX_VERSION=1.3.1

# Every .nix file of the working tree (tracked or new, not ignored), relative to the root.
nix_files() {
  local f
  if git -C "$DP_ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    while IFS= read -r -d '' f; do
      if [[ -f $DP_ROOT/$f ]]; then printf '%s\n' "$f"; fi
    done < <(git -C "$DP_ROOT" ls-files -z --cached --others --exclude-standard -- '*.nix')
  else
    find "$DP_ROOT" -name '*.nix' -not -path '*/target/*' -not -path '*/build/*' -printf '%P\n'
  fi
}

lint() {
  # Debian's NGINX, patchelf and a C compiler stand in for nixpkgs' in the image-script tests.
  ensure_apt nix-bin nginx patchelf gcc libc6-dev
  local nixpkgs_fmt deadnix files
  nixpkgs_fmt=$(cargo_tool nixpkgs-fmt "$NIXPKGS_FMT_VERSION")
  deadnix=$(cargo_tool deadnix "$DEADNIX_VERSION")
  mapfile -t files < <(nix_files)
  ((${#files[@]})) || die "no .nix file found"
  cd "$DP_ROOT"

  log "nix-instantiate --parse (${#files[@]} files)"
  for f in "${files[@]}"; do
    nix-instantiate --parse "$f" >/dev/null || die "$f does not parse"
  done

  log "nixpkgs-fmt --check"
  "$nixpkgs_fmt" --check "${files[@]}" || die "run 'make fmt' (or nix/tools.sh fmt) to format the Nix files"

  log "deadnix --fail"
  "$deadnix" --fail "${files[@]}"

  log "flake.lock, flake outputs and image scripts (nix/tests/test_flake.py)"
  python3 nix/tests/test_flake.py
}

fmt() {
  local nixpkgs_fmt files
  nixpkgs_fmt=$(cargo_tool nixpkgs-fmt "$NIXPKGS_FMT_VERSION")
  mapfile -t files < <(nix_files)
  ((${#files[@]})) || return 0
  (cd "$DP_ROOT" && "$nixpkgs_fmt" "${files[@]}")
}

case ${1:-} in
  lint) lint ;;
  fmt) fmt ;;
  *) die "usage: nix/tools.sh lint|fmt" ;;
esac
