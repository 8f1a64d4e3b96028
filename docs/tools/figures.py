"""Figures in the docs and the deck, written from result files, never by hand.

A block between `<!-- figures:NAME -->` and `<!-- /figures:NAME -->` in docs/**/*.md is the
output of the renderer NAME below, from the JSON it reads in docs/assets/ (copied there by
`make docs-assets`). `write` rewrites every block; `check` (make docs-check) fails when a
block differs from what its JSON gives, so a figure typed by hand, or left stale, is caught.

Usage: python3 docs/tools/figures.py write|check DOCS_DIR
"""
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "e2e"))
from loadgen import CASE_TITLES  # noqa: E402  (one list of the cases' French titles)

BLOCK = re.compile(r"(<!-- figures:([a-z0-9-]+) -->\n)(.*?)(<!-- /figures:\2 -->)", re.S)


def fr(x: float, digits: int = 0) -> str:
    """A number in French typography: thin space between thousands, comma for decimals."""
    s = f"{x:,.{digits}f}".replace(",", "\u202f").replace(".", ",")
    return s


def pct(part: int, whole: int) -> str:
    return fr(100 * part / whole, 2) + " %" if whole else "—"


def cases(doc: dict) -> dict:
    return {c["case"]: c for c in doc["cases"]}


def node_cases(assets: Path) -> tuple:
    """The three-node run: its document, the drain, loss and return cases, and the loss's
    marks in seconds from the moment the node stopped."""
    doc = json.loads((assets / "node-loss.json").read_text())
    c = cases(doc)
    lose = c["lose-node"]
    stop = lose["marks_s"]["node stopped"]
    return doc, c["drain-node"], lose, c["node-back"], {k: v - stop for k, v in lose["marks_s"].items()}


def node_loss(assets: Path) -> str:
    doc, drain, lose, back, m = node_cases(assets)
    rows = [
        "| Mesure | Valeur |",
        "|---|---|",
        f"| Vidage d'un nœud (`kubectl drain`) : requêtes échouées | **{drain['failed']}** sur {fr(drain['sent'])} |",
        f"| Arrêt net d'un nœud : requêtes échouées | **{lose['failed']}** sur {fr(lose['sent'])} "
        f"({pct(lose['failed'], lose['sent'])}) |",
        f"| … dont après la sortie de ses pods des Services | {lose['failed_after']['its pods out of the endpoints']} |",
        f"| Nœud déclaré perdu après | {fr(m['node declared lost'], 1)} s |",
        f"| Ses pods retirés des Services après | {fr(m['its pods out of the endpoints'], 1)} s |",
        f"| Répliques de nouveau prêtes sur les autres nœuds après | "
        f"{fr(m['replicas Ready on the other nodes'], 1)} s |",
        f"| p99 le plus haut d'une seconde pendant la perte | {fr(lose['event']['worst_p99_ms'])} ms |",
        f"| Retour du nœud et nouvelle répartition : requêtes échouées | **{back['failed']}** sur "
        f"{fr(back['sent'])} ({pct(back['failed'], back['sent'])}) |",
    ]
    return "\n".join(rows) + f"\n\n{run_line(doc, lose['rate'])}\n"


def run_line(doc: dict, rate: float, html: bool = False) -> str:
    rev = f"<code>{doc['revision'][:12]}</code>" if html else f"`{doc['revision'][:12]}`"
    return (f"Exécution du {doc['generated_at'][:10]}, révision {rev}, "
            f"cluster {doc['cluster']}, charge de {fr(rate)} requêtes par seconde.")


def zero_downtime_deck(assets: Path) -> str:
    doc = json.loads((assets / "zero-downtime.json").read_text())
    shown = [c for c in doc["cases"] if not c["control"]]
    rows = ["| Changement en recette, sous charge | Requêtes | Échouées |", "|---|---|---|"]
    rows += [f"| {CASE_TITLES.get(c['case'], c['case'])} | {fr(c['sent'])} | **{c['failed']}** |" for c in shown]
    controls = [c for c in doc["cases"] if c["control"]]
    return ("\n".join(rows) + f"\n\n<p class=\"small\">{run_line(doc, shown[0]['rate'], html=True)} "
            f"{len(controls)} contrôles du test lui-même (changement cassé, perte provoquée) détectés.</p>\n")


def node_loss_deck(assets: Path) -> str:
    doc, drain, lose, back, m = node_cases(assets)
    rows = [
        "| Trois nœuds, sous charge | Requêtes | Échouées |",
        "|---|---|---|",
        f"| Entretien : un nœud vidé (`kubectl drain`) | {fr(drain['sent'])} | **{drain['failed']}** |",
        f"| Panne : un nœud arrêté net | {fr(lose['sent'])} | **{lose['failed']}** ({pct(lose['failed'], lose['sent'])}) |",
        f"| Retour du nœud | {fr(back['sent'])} | **{back['failed']}** ({pct(back['failed'], back['sent'])}) |",
    ]
    return ("\n".join(rows) + f"\n\nNœud déclaré perdu en **{fr(m['node declared lost'])} s**, "
            f"répliques remplacées et prêtes en **{fr(m['replicas Ready on the other nodes'])} s**.\n\n"
            f"<p class=\"small\">{run_line(doc, lose['rate'], html=True)}</p>\n")


def bench_deck(assets: Path) -> str:
    """The measured reasons for Rust over FastAPI, from the last full `make bench`."""
    r = json.loads((assets / "bench.json").read_text())
    if r["meta"]["mode"] != "full":
        sys.exit("figures: docs/assets/bench.json is not a full bench (make bench)")
    t, api, fast = r["ratios"]["targets"], r["servers"]["api"], r["servers"]["fastapi"]
    return (f"<p class=\"small\">Banc du {r['meta']['date'][:10]} (révision <code>{r['meta']['revision'][:12]}</code>, "
            f"{r['meta']['machine']}) : "
            f"API Rust {fr(t['rps_vs_fastapi_root']['value'], 1)} fois plus de requêtes par seconde que FastAPI sur "
            f"<code>/</code> ; mémoire {fr(api['rss_after_load_mb'], 1)} Mo contre {fr(fast['rss_after_load_mb'], 1)} Mo ; "
            f"démarrage {fr(api['start_ms_median'], 0)} ms contre {fr(fast['start_ms_median'], 0)} ms. "
            f"Détail : <code>docs/performance.md</code>.</p>\n")


RENDERERS = {"node-loss": node_loss, "zero-downtime-deck": zero_downtime_deck, "node-loss-deck": node_loss_deck,
             "bench-deck": bench_deck}


def render(text: str, assets: Path) -> str:
    def one(m: re.Match) -> str:
        name = m.group(2)
        if name not in RENDERERS:
            sys.exit(f"figures: unknown block {name!r} (known: {', '.join(RENDERERS)})")
        return m.group(1) + RENDERERS[name](assets) + m.group(4)
    return BLOCK.sub(one, text)


def main() -> int:
    mode, docs = sys.argv[1], Path(sys.argv[2])
    assets = docs / "assets"
    stale = []
    for md in sorted(docs.rglob("*.md")):
        text = md.read_text()
        if "<!-- figures:" not in text:
            continue
        new = render(text, assets)
        if new != text:
            if mode == "write":
                md.write_text(new)
                print(f"figures: {md} rewritten from docs/assets")
            else:
                stale.append(str(md))
    if stale:
        print("figures: blocks differ from their result files (run make docs-assets): " + ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
