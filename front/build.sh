#!/usr/bin/env bash
# Packages the static site into OUTDIR: version line from the workspace version (major.minor),
# assets moved under a content-hash folder so NGINX can cache them for good.
# Usage: front/build.sh OUTDIR
# Env: DATAPRESS_VERSION (default: [workspace.package] version of Cargo.toml),
#      DATAPRESS_REVISION (default: unknown; the page carries it, so a rollout shows which build serves),
#      SOURCE_DATE_EPOCH (optional: fixed file times for reproducible images).
# Needs only bash and coreutils/sed/find, so an image builder or a Nix derivation can call it.
set -euo pipefail

front_dir="$(cd "$(dirname "$0")" && pwd)"
root_dir="$(dirname "$front_dir")"
src="$front_dir/site"
out="${1:?usage: front/build.sh OUTDIR}"

die() { printf 'front/build.sh: %s\n' "$*" >&2; exit 1; }

version="${DATAPRESS_VERSION:-}"
if [[ -z $version ]]; then
  version="$(sed -n '/^\[workspace.package\]/,/^\[/s/^version = "\(.*\)"/\1/p' "$root_dir/Cargo.toml")"
fi
[[ $version =~ ^([0-9]+)\.([0-9]+)\.[0-9]+([-+].*)?$ ]] || die "cannot read a semantic version (got '$version')"
short_version="${BASH_REMATCH[1]}.${BASH_REMATCH[2]}"
revision="${DATAPRESS_REVISION:-unknown}"
[[ $revision =~ ^[A-Za-z0-9._+-]{1,64}$ ]] || die "DATAPRESS_REVISION must be 1-64 characters of [A-Za-z0-9._+-] (got '$revision')"

# Only ever replace an empty folder or a site this script built before.
if [[ -e $out ]]; then
  [[ -d $out ]] || die "$out exists and is not a directory"
  if [[ -n "$(ls -A "$out")" && ! -f $out/index.html ]]; then
    die "$out is neither empty nor a previously built site; refusing to overwrite it"
  fi
  rm -rf "${out:?}"/* "${out:?}"/.[!.]* 2>/dev/null || true
fi
mkdir -p "$out"

cp -R "$src"/. "$out"/

# A content hash of every asset (names and bytes) names the folder they are served from.
hash="$(cd "$src/assets" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)"
mkdir "$out/assets.tmp"
mv "$out/assets" "$out/assets.tmp/$hash"
mv "$out/assets.tmp" "$out/assets"

while IFS= read -r -d '' page; do
  sed -i -e "s/__DATAPRESS_VERSION__/$short_version/g" -e "s/__DATAPRESS_REVISION__/$revision/g" \
    -e "s#\\(href\\|src\\)=\"assets/#\\1=\"assets/$hash/#g" "$page"
done < <(find "$out" -name '*.html' -print0)

if grep -rlE '__DATAPRESS_(VERSION|REVISION)__' "$out" >/dev/null; then
  die "a version placeholder is left in the packaged site"
fi
grep -q "assets/$hash/app.js" "$out/index.html" || die "index.html does not reference the hashed assets"

find "$out" -type d -exec chmod 0755 {} +
find "$out" -type f -exec chmod 0644 {} +
if [[ -n ${SOURCE_DATE_EPOCH:-} ]]; then
  find "$out" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
fi

printf 'front/build.sh: site v%s packaged in %s (assets/%s)\n' "$short_version" "$out" "$hash" >&2
