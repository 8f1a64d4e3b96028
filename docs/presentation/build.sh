#!/usr/bin/env bash
# `make slides`: renders docs/presentation/presentation.md (Marp) to HTML and PDF under
# build/slides/, offline. With --check, also verifies the PDF: one page per slide, and a
# rendered page that is not blank.
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"
src="$DP_ROOT/docs/presentation/presentation.md"
out="$DP_BUILD/slides"
mkdir -p "$out"
render="$DP_ROOT/docs/tools/render.sh"
"$render" marp "$src" "$out/presentation.html"
"$render" marp "$src" "$out/presentation.pdf"
log "slides: $out/presentation.html and $out/presentation.pdf"
[[ ${1:-} == --check ]] || exit 0

ensure_apt poppler-utils
# Slides are separated by lines holding only '---' after the front matter.
expected=$(awk 'NR==1 && /^---$/ {fm=1; next} fm && /^---$/ {fm=0; next} fm {next}
  /^```/ {code=!code} !code && /^---$/ {n++} END {print n+1}' "$src")
pages=$(pdfinfo "$out/presentation.pdf" | awk '/^Pages:/ {print $2}')
[[ $pages == "$expected" ]] || die "the deck has $pages PDF pages, expected $expected slides"
((pages >= 10 && pages <= 14)) || die "the deck has $pages slides; the brief asks for 10 to 14"
pdftoppm -f 2 -l 2 -r 40 -gray "$out/presentation.pdf" "$out/page" 
python3 - "$out"/page*.pgm <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
# Binary PGM: header "P5\n<w> <h>\n<max>\n" then one byte per pixel.
parts = data.split(b"\n", 3)
pixels = parts[3]
dark = sum(1 for b in pixels if b < 128) / len(pixels)
print(f"slides: page 2 has {dark:.1%} dark pixels")
sys.exit(0 if 0.005 < dark < 0.9 else "page 2 looks blank")
PY
echo "slides: $pages pages, as many as slides; page 2 is not blank"
