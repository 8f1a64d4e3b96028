#!/usr/bin/env bash
# `make docs-assets`: regenerates the images the docs and the deck embed, from the
# repository's own tools, into docs/assets/ (committed, so a fresh clone's docs are complete):
#  - diagrams/NAME.svg from each ```mermaid block whose first line is `%% asset: NAME`;
#  - front-after-click.png and front-api-down.png, the browser e2e's screenshots (from
#    make e2e-k8s when it ran, else from the front suite, which runs if needed);
#  - bench.svg and bench.json, the chart and results of the last full `make bench` (never
#    made up: missing = warning);
#  - zero-downtime.svg and zero-downtime.json, the per-second series and figures of the last
#    `make e2e-k8s` (missing = warning);
#  - node-loss.svg and node-loss.json, the same for the three-node cases of the last
#    `make cluster-test-3` (node drained, node stopped, node back; missing = warning);
#  - recette-sizing.json, what recette's pods reserve and may use (make lint-manifests);
#  - the figures blocks of the docs (docs/tools/figures.py), from those JSON files.
set -euo pipefail
. "$(dirname "$0")/../../scripts/lib.sh"
assets="$DP_ROOT/docs/assets"
mkdir -p "$assets/diagrams" "$DP_BUILD/docs/assets"

python3 - "$DP_ROOT/docs" "$DP_BUILD/docs/assets" <<'PY'
import re, sys
from pathlib import Path
docs, out = Path(sys.argv[1]), Path(sys.argv[2])
for md in sorted(docs.rglob("*.md")):
    for block in re.findall(r"```mermaid\n(.*?)```", md.read_text(), re.S):
        m = re.match(r"%% asset: ([a-z0-9-]+)\n", block)
        if m:
            (out / f"{m.group(1)}.mmd").write_text(block)
            print(f"diagram {m.group(1)} from {md.relative_to(docs.parent)}")
PY
for f in "$DP_BUILD"/docs/assets/*.mmd; do
  [[ -e $f ]] || continue
  "$DP_ROOT/docs/tools/render.sh" mermaid "$f" "$assets/diagrams/$(basename "${f%.mmd}").svg"
done

# Screenshots: the recette ones (make e2e-k8s) when present, else the local front suite's.
shots="$DP_BUILD/e2e/k8s"
if [[ ! -f $shots/front-after-click.png ]]; then
  shots="$DP_BUILD/e2e"
  [[ -f $shots/front-after-click.png && -f $shots/front-api-down.png ]] || "$DP_ROOT/scripts/test.sh" front
fi
cp "$shots/front-after-click.png" "$assets/front-after-click.png"
cp "$shots/front-api-down.png" "$assets/front-api-down.png" 2>/dev/null || warn "no API-down screenshot"

if [[ -f $DP_BUILD/bench/bench.svg && -f $DP_BUILD/bench/results.json ]]; then
  cp "$DP_BUILD/bench/bench.svg" "$assets/bench.svg"
  cp "$DP_BUILD/bench/results.json" "$assets/bench.json"
else
  warn "no full benchmark in build/bench: run 'make bench' first"
fi
# The A/Bs of ADR 0009 and 0010 (make bench-ab NAME=logging|memcpy A=… B=… C=… D=…).
for ab in logging memcpy; do
  if [[ -f $DP_BUILD/bench/ab/$ab/ab.json ]]; then
    cp "$DP_BUILD/bench/ab/$ab/ab.json" "$assets/$ab-ab.json"
  fi
done
zd="$DP_BUILD/e2e-k8s"
if [[ -f $zd/zero-downtime.svg && -f $zd/zero-downtime.json ]]; then
  cp "$zd/zero-downtime.svg" "$zd/zero-downtime.json" "$assets/"
else
  warn "no zero-downtime results in build/e2e-k8s: run 'make e2e-k8s' first"
fi
nodes="$DP_BUILD/e2e-nodes"
if [[ -f $nodes/zero-downtime.svg && -f $nodes/zero-downtime.json ]]; then
  cp "$nodes/zero-downtime.svg" "$assets/node-loss.svg"
  cp "$nodes/zero-downtime.json" "$assets/node-loss.json"
else
  warn "no three-node results in build/e2e-nodes: run 'make cluster-test-3' first"
fi
# What recette's pods reserve and may use, from the manifests suite's render.
if [[ -f $DP_BUILD/manifests/recette-sizing.json ]]; then
  cp "$DP_BUILD/manifests/recette-sizing.json" "$assets/recette-sizing.json"
else
  warn "no recette sizing in build/manifests: run 'make lint-manifests' first"
fi
# The figures blocks of the docs and the deck, from the JSON files above.
python3 "$DP_ROOT/docs/tools/figures.py" write "$DP_ROOT/docs"
ls -la "$assets" "$assets/diagrams"
