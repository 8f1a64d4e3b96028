#!/usr/bin/env bash
# Offline renderers for the docs: `render.sh mermaid IN.mmd OUT.svg` and
# `render.sh marp IN.md OUT.{html,pdf}`, both with Debian's Chromium (no browser download).
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"
ensure_chromium
modules=$(npm_deps "$DP_ROOT/docs/tools")
export CHROME_PATH=/usr/bin/chromium PUPPETEER_EXECUTABLE_PATH=/usr/bin/chromium
case ${1:-} in
  mermaid)
    cfg="$DP_BUILD/docs/puppeteer.json"
    mkdir -p "$(dirname "$cfg")"
    python3 -c 'import json,sys; print(json.dumps({"executablePath": "/usr/bin/chromium", "args": sys.argv[1:]}))' \
      "${CHROMIUM_FLAGS[@]:1}" "--user-data-dir=$(mktemp -d)" >"$cfg"
    # One font installed here, named in the SVG: the boxes are sized with the font the
    # slides and pages then draw (a fallback font at display time clipped the labels).
    theme="$DP_BUILD/docs/mermaid.json"
    echo '{"fontFamily": "DejaVu Sans", "themeVariables": {"fontFamily": "DejaVu Sans"}}' >"$theme"
    "$modules/.bin/mmdc" --quiet -p "$cfg" -c "$theme" -b white -i "$2" -o "$3" ;;
  marp)
    # --allow-local-files: the deck embeds images from docs/assets only (no remote resources).
    "$modules/.bin/marp" --no-stdin --allow-local-files --html "$2" -o "$3" ;;
  *) die "usage: render.sh mermaid IN.mmd OUT.svg | marp IN.md OUT.{html,pdf}" ;;
esac
