"""Figures in the docs and the deck, written from result files, never by hand.

A block between `<!-- figures:NAME -->` and `<!-- /figures:NAME -->` in docs/**/*.md (and in
hack/**/README.md, the clusters' notes) is the output of the renderer NAME below, from the
JSON it reads in docs/assets/ (copied there by `make docs-assets`). `write` rewrites every
block; `check` (make docs-check) fails when a block differs from what its JSON gives, so a
figure typed by hand, or left stale, is caught.

Usage: python3 docs/tools/figures.py write|check DOCS_DIR
"""
import json
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "e2e"))
from loadgen import CASE_TITLES  # noqa: E402  (one list of the cases' French titles)
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from harness import TARGETS  # noqa: E402  (the bench's targets, one definition)

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


def node_timings(assets: Path) -> str:
    """hack/kind/README.md: the timings of the last three-node run, step by step."""
    doc, drain, lose, back, m = node_cases(assets)
    d, b = drain["marks_s"], back["marks_s"]
    out = m["its pods out of the endpoints"] - m["node declared lost"]
    rows = [
        "| Étape | Mesuré |",
        "|---|---|",
        f"| Vidage : répliques prêtes sur l'autre nœud | {fr(d['drained, replicas Ready elsewhere'], 1)} s après `kubectl drain` |",
        f"| Arrêt net : nœud déclaré perdu | {fr(m['node declared lost'], 1)} s après l'arrêt |",
        f"| … ses Pods hors des Services | {fr(out, 1)} s plus tard |",
        f"| … remplaçants prêts sur les autres nœuds | {fr(m['replicas Ready on the other nodes'], 1)} s après l'arrêt |",
        f"| Retour : nœud `Ready` | {fr(b['node Ready again'], 1)} s après son redémarrage |",
        f"| … routes vers ses Pods rétablies sur les autres nœuds | {fr(b['node routes back'], 1)} s après son redémarrage |",
        f"| Requêtes échouées : vidage, arrêt net, retour | {drain['failed']}, {lose['failed']}, {back['failed']} |",
    ]
    return "\n".join(rows) + f"\n\n{run_line(doc, lose['rate'])}\n"


def cluster_fr(cluster: str) -> str:
    """'v1.35.4 kind-datapress' -> which of the project's clusters, in words."""
    version, _, context = cluster.partition(" ")
    what = {"kind-datapress": "kind à trois nœuds", "kubernetes-admin@datapress": "du projet à un nœud"}.get(context, context)
    return f"cluster {what} (Kubernetes {version})"


def run_line(doc: dict, rate: float, html: bool = False) -> str:
    rev = f"<code>{doc['revision'][:12]}</code>" if html else f"`{doc['revision'][:12]}`"
    return (f"Exécution du {doc['generated_at'][:10]}, révision {rev}, "
            f"{cluster_fr(doc['cluster'])}, charge de {fr(rate)} requêtes par seconde.")


CONTROL_TITLES = {"broken-rollout": "contrôle : mise à jour jamais prête (aucune perte attendue)",
                  "lossy": "contrôle : API privée de tout pod (des échecs attendus)"}


def zero_downtime(assets: Path) -> str:
    """exploitation.md: each case of the last `make e2e-k8s`, controls included."""
    doc = json.loads((assets / "zero-downtime.json").read_text())
    rows = ["| Opération, sous charge | Requêtes | Échouées |", "|---|---|---|"]
    for c in doc["cases"]:
        title = CONTROL_TITLES.get(c["case"], c["case"]) if c["control"] else CASE_TITLES.get(c["case"], c["case"])
        title = (title[0].upper() + title[1:]).replace("MAJ ", "Mise à jour ")
        rows.append(f"| {title} | {fr(c['sent'])} | **{c['failed']}** |")
    shown = [c for c in doc["cases"] if not c["control"]]
    return "\n".join(rows) + f"\n\n{run_line(doc, shown[0]['rate'])}\n"


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


SERVERS_FR = {"nginx": "NGINX statique", "api": "API livrée (musl + mimalloc + memcpy)", "api-musl-system": "API, musl seul",
              "api-glibc": "API, glibc", "bare": "Salvo nu", "fastapi": "FastAPI + uvicorn", "proxy": "API via le front"}
VERDICT_FR = {"PASS": "atteint", "MISS": "**manqué**", "N/A": "non mesuré"}


def full_bench(assets: Path) -> dict:
    r = json.loads((assets / "bench.json").read_text())
    if r["meta"]["mode"] != "full":
        sys.exit("figures: docs/assets/bench.json is not a full bench (make bench)")
    return r


def num(x, digits: int = 1) -> str:
    return "—" if x is None else fr(x, digits)


def bench_results(assets: Path) -> str:
    """performance.md's results: the run, its saturated and imposed-rate tables, its targets."""
    r = full_bench(assets)
    m, servers = r["meta"], r["servers"]
    out = [f"Banc complet du {m['date']}, révision `{m['revision'][:12]}`"
           f"{' (arbre modifié)' if m.get('worktree_dirty') else ''} ; {m['machine']} ; "
           f"{'cœurs tenus hors veille (PM QoS)' if m['idle_states'].startswith('poll only') else 'veille des cœurs permise'} ; charge moyenne {m['loadavg_before'].replace('.', ',')} avant, {m['loadavg_after'].replace('.', ',')} après.",
           "", f"**À saturation** (wrk, {m['connections']} connexions, médiane de {m['runs']} × {fr(m['seconds'])} s) :", "",
           "| Serveur | Route | req/s | p50 (ms) | p99 (ms) | CPU/req (µs) | RSS (Mo) | Démarrage (ms) |",
           "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, s in servers.items():
        for i, v in enumerate(s["routes"].values()):
            rss, start = (s.get("rss_after_load_mb"), s.get("start_ms_median")) if i == 0 else (None, None)
            out.append(f"| {SERVERS_FR[name] if i == 0 else ''} | `{v['path']}` | {fr(v['rps'])} | {num(v['p50_ms'], 2)} "
                       f"| {num(v['p99_ms'], 2)} | {num(v['server_cpu_us_per_req'])} | {num(rss)} | {num(start)} |")
    fixed = {n: s["fixed_rate"] for n, s in servers.items() if s.get("fixed_rate")}
    if fixed:
        nginx = fixed.get("nginx", {})
        rate = next(iter(next(iter(fixed.values())).values()))["rate"]
        out += ["", f"**À débit imposé** (oha, {fr(rate)} requêtes par seconde en boucle ouverte) : CPU par requête "
                    "du serveur, et son rapport à celui de NGINX dans les mêmes tours :", "",
                "| Serveur | Route | CPU/req (µs) | ÷ NGINX | Débit tenu |", "|---|---|---:|---:|---|"]
        for name, routes in fixed.items():
            for i, (route, v) in enumerate(routes.items()):
                base = nginx.get(route, {}).get("server_cpu_us_per_req")
                ratio = v["server_cpu_us_per_req"] / base if base and name != "nginx" else None
                out.append(f"| {SERVERS_FR[name] if i == 0 else ''} | `{v['path']}` | {num(v['server_cpu_us_per_req'])} "
                           f"| {num(ratio, 2)} | {'oui' if v['rate_held'] else '**non**'} |")
    out += ["", "**Objectifs** (la limite est la même mesure pour NGINX statique dans ce banc) :", "",
            "| Objectif | Mesuré | Cible | Verdict | Limite |", "|---|---:|---:|---|---:|"]
    for t in r["ratios"]["targets"].values():
        op = "≥" if t["op"] == ">=" else "≤"
        out.append(f"| {t['label']} | {num(t['value'], 2)} | {op} {fr(t['target'], 2)} | {VERDICT_FR[t['verdict']]} "
                   f"| {num(t['limit'], 2)} |")
    sizes = " ; ".join(f"{k.replace('binary ', 'binaire ')} {num(v['mb'])} Mo" for k, v in r["sizes"].items() if v.get("mb") is not None)
    return "\n".join(out) + f"\n\nTailles : {sizes}.\n"


def bench_deck(assets: Path) -> str:
    """The measured reasons for Rust over FastAPI, from the last full `make bench`."""
    r = full_bench(assets)
    t, api, fast = r["ratios"]["targets"], r["servers"]["api"], r["servers"]["fastapi"]
    return (f"<p class=\"small\">Banc du {r['meta']['date'][:10]} (révision <code>{r['meta']['revision'][:12]}</code>, "
            f"{r['meta']['machine']}) : "
            f"l'API Rust sert {fr(t['rps_vs_fastapi_health']['value'], 1)} fois plus de requêtes par seconde que FastAPI "
            f"sur <code>/health</code>, {fr(t['rps_vs_fastapi_root']['value'], 1)} fois sur <code>/</code> ; mémoire {fr(api['rss_after_load_mb'], 1)} Mo contre {fr(fast['rss_after_load_mb'], 1)} Mo ; "
            f"démarrage {fr(api['start_ms_median'], 0)} ms contre {fr(fast['start_ms_median'], 0)} ms. "
            f"Détail : <code>docs/performance.md</code>.</p>\n")


# The bench's target for CPU per request at an imposed rate ÷ NGINX's, on `/` as on `/health`.
CPU_VS_NGINX_TARGET = TARGETS["cpu_per_req_vs_nginx_root"][1]


def ab_table(assets: Path, name: str) -> str:
    """A paired A/B of an ADR (NAME = logging: 0009, memcpy: 0010), from `make bench-ab`'s ab.json."""
    r = json.loads((assets / f"{name}-ab.json").read_text())
    names = list(r["builds"])
    rows = [f"| Route | Build | CPU par requête (µs) | ÷ NGINX (objectif ≤ {fr(CPU_VS_NGINX_TARGET, 2)}) "
            f"| ÷ `{names[0]}` (min–max des tours) |", "|---|---|---|---|---|"]
    for route, x in r["routes"].items():
        rows.append(f"| `{route}` | NGINX statique | {fr(x['cpu_us_per_req']['nginx'], 2)} | | |")
        for n in names:
            vs = x["vs_ref"].get(n)
            ref = f"{fr(vs['median'], 2)} ({fr(vs['min'], 2)}–{fr(vs['max'], 2)})" if vs else "référence"
            ratio = x["vs_nginx"][n]["median"]
            verdict = "atteint" if ratio <= CPU_VS_NGINX_TARGET else "**manqué**"
            rows.append(f"| | `{n}` | {fr(x['cpu_us_per_req'][n], 2)} | {fr(ratio, 3)} ({verdict}) | {ref} |")
    return ("\n".join(rows) + f"\n\n{len(r['rounds'])} tours de {fr(r['seconds'])} s par serveur et par route à "
            f"{fr(r['rate'])} requêtes par seconde imposées, {r['machine']} ; "
            f"{len(r['unheld']) or 'aucune'} mesure{'s' if len(r['unheld']) > 1 else ''} sous 97 % du débit imposé.\n")


def logging_bench(assets: Path) -> str:
    """ADR 0009: what the request log costs, from the A/B and the full bench."""
    ab, r = json.loads((assets / "logging-ab.json").read_text()), full_bench(assets)
    root = ab["routes"]["/"]["cpu_us_per_req"]
    cost = {n: root[n] - root["library-no-request-log"] for n in ("hand-written-line", "hand-line-span", "library-json-format")}
    info, t = r["ratios"]["informative"], r["ratios"]["targets"]
    rps = {n: r["servers"][n]["routes"]["/"]["rps"] for n in ("api", "bare")}
    return (f"- Coût du journal de requête sur `/` (A/B, écart des médianes à `library-no-request-log`) : "
            f"{fr(cost['hand-written-line'], 1)} µs par requête pour la ligne écrite à la main sans span (livrée), "
            f"{fr(cost['hand-line-span'], 1)} µs avec le span gardé, {fr(cost['library-json-format'], 1)} µs par la "
            f"bibliothèque seule.\n"
            f"- Banc complet du {r['meta']['date'][:10]} (binaire livré, révision `{r['meta']['revision'][:12]}`), "
            f"CPU par requête à débit imposé ÷ NGINX : API {fr(t['cpu_per_req_vs_nginx_health']['value'], 2)} sur "
            f"`/health` et {fr(t['cpu_per_req_vs_nginx_root']['value'], 2)} sur `/` ; **Salvo nu**, sans aucun "
            f"middleware ni journal, {fr(info['bare_cpu_per_req_vs_nginx_health'], 2)} et "
            f"{fr(info['bare_cpu_per_req_vs_nginx_root'], 2)}.\n"
            f"- Même banc, à saturation sur `/` : API {fr(rps['api'])} requêtes par seconde, Salvo nu {fr(rps['bare'])} ; "
            f"API ÷ FastAPI {fr(t['rps_vs_fastapi_root']['value'], 1)} (objectif ≥ 10 : "
            f"{VERDICT_FR[t['rps_vs_fastapi_root']['verdict']]}).\n")


def app_sizing(assets: Path) -> str:
    d = json.loads((assets / "recette-sizing.json").read_text())["deployments"]
    api, front = d["datapress-api"], d["datapress-front"]
    return (f"Mémoire de l'application, lue dans les manifestes de recette : API "
            f"{fr(api['requests_memory_mib'])} Mio réservés et {fr(api['limits_memory_mib'])} Mio au plus par "
            f"exemplaire ({api['replicas']} exemplaires) ; front {fr(front['requests_memory_mib'])} et "
            f"{fr(front['limits_memory_mib'])} Mio ({front['replicas']} exemplaires).\n")


RENDERERS = {"app-sizing": app_sizing, "logging-ab": lambda a: ab_table(a, "logging"),
             "memcpy-ab": lambda a: ab_table(a, "memcpy"), "logging-bench": logging_bench, "node-loss": node_loss, "node-timings": node_timings, "zero-downtime": zero_downtime,
             "zero-downtime-deck": zero_downtime_deck, "node-loss-deck": node_loss_deck,
             "bench-deck": bench_deck, "bench-results": bench_results}


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
    for md in sorted(docs.rglob("*.md")) + sorted((docs.parent / "hack").rglob("README.md")):
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
