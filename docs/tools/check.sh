#!/usr/bin/env bash
# Suite `docs`: links and images resolve, `make` targets exist, figures match their result
# files (docs/tools/figures.py), every Mermaid block renders, and the deck renders to a non-blank PDF with the expected page count.
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"
out="$DP_BUILD/docs/mermaid"
rm -rf "$out"
python3 "$DP_ROOT/docs/tools/docs_check.py" "$out"
python3 "$DP_ROOT/docs/tools/figures.py" check "$DP_ROOT/docs"
n=0
for f in "$out"/*.mmd; do
  [[ -e $f ]] || continue
  "$DP_ROOT/docs/tools/render.sh" mermaid "$f" "${f%.mmd}.svg" || die "mermaid block does not render: $(basename "$f")"
  n=$((n + 1))
done
echo "docs: $n mermaid blocks rendered"
"$DP_ROOT/docs/presentation/build.sh" --check
