#!/usr/bin/env python3
"""Paired A/B of API builds: CPU per request at the same imposed rate, in turns.

`make bench-ab A=path B=path` (bench/ab.sh): NGINX static and each build run side by side
on the server core; each round measures every server on `/health` and `/` at the same
open-loop rate (oha -q), in a rotating order, so a phase of the shared host hits them all.
Per route it prints the median server CPU per request, each build ÷ NGINX (the targets'
ratio) and each build ÷ the first one, as medians of the per-round ratios (paired), with
their spread. Output: a table on stdout and <out>/ab.json.
"""

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness  # noqa: E402

ROUTES = ("/health", "/")


def paired(rounds: list[dict], num: str, den: str, route: str) -> dict:
    ratios = [r[num][route] / r[den][route] for r in rounds]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", action="append", required=True,
                    help="NAME=path of a build; the first one is the reference (repeat)")
    ap.add_argument("--nginx", required=True)
    ap.add_argument("--oha", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--rate", type=int, default=harness.FIXED_RATE_MAX)
    ap.add_argument("--seconds", type=float, default=harness.FIXED_RATE_SECONDS)
    a = ap.parse_args()
    builds = dict(x.split("=", 1) for x in a.build)
    if len(builds) < 2 or len(builds) != len(a.build) or "nginx" in builds:
        ap.error("give at least two builds, each under its own name (not 'nginx')")
    ref = a.build[0].split("=", 1)[0]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    idle = harness.IdleStates(True)
    work = Path(tempfile.mkdtemp(prefix="datapress-ab-"))
    suite = harness.Suite(argparse.Namespace(nginx=a.nginx, api_bin=None), work)
    servers = {"nginx": suite.nginx_static(harness.free_port())}
    for name, path in builds.items():
        servers[name] = suite.api(harness.free_port(), name, path)
    rounds: list[dict] = []
    unheld: list[str] = []
    try:
        for s in servers.values():
            s.start()
        for s in servers.values():
            problems = harness.check_routes(s.port, {r: r for r in ROUTES}) if s.name != "nginx" else []
            if problems:
                raise RuntimeError(f"{s.name}: {problems}")
        order = list(servers)
        for i in range(-1, a.rounds):
            harness.log(f"{'warm-up' if i < 0 else f'round {i + 1}/{a.rounds}'} at {a.rate} req/s: {', '.join(order)}")
            got: dict = {n: {} for n in servers}
            for name in order:
                s = servers[name]
                for route in ROUTES:
                    url = f"http://127.0.0.1:{s.port}{route}"
                    secs = harness.FIXED_RATE_WARMUP if i < 0 else a.seconds
                    m = harness.measure(lambda: harness.run_oha_rate(a.oha, url, secs, a.rate), route, {name: s})
                    if m["errors"]:
                        raise RuntimeError(f"{name} {route}: {m['error_detail']}")
                    if i >= 0 and m["rps"] < 0.97 * a.rate:
                        unheld.append(f"round {i + 1} {name} {route}: {m['rps']:.0f} req/s")
                    got[name][route] = m["server_cpu_us_per_req"]
            if i >= 0:
                rounds.append(got)
            order = order[1:] + order[:1]
    finally:
        for s in servers.values():
            s.stop()
        idle.release()
    result = {"rate": a.rate, "seconds": a.seconds, "rounds": rounds, "idle": idle.note,
              "builds": builds, "machine": harness.machine(), "unheld": unheld, "routes": {}}
    print(f"\nPaired A/B at {a.rate} req/s, {a.rounds} rounds of {a.seconds:g} s per server and route ({idle.note})")
    names = list(builds)
    print(f"{'route':8} {'server':20} {'CPU µs/req':>10} {'÷ NGINX':>8} {'÷ ' + ref:>22}")
    for route in ROUTES:
        r = {"cpu_us_per_req": {n: statistics.median(x[n][route] for x in rounds) for n in servers},
             "vs_nginx": {n: paired(rounds, n, "nginx", route) for n in names},
             "vs_ref": {n: paired(rounds, n, ref, route) for n in names[1:]}}
        result["routes"][route] = r
        print(f"{route:8} {'nginx':20} {r['cpu_us_per_req']['nginx']:10.2f}")
        for n in names:
            vs = r["vs_ref"].get(n)
            spread = f"{vs['median']:.3f} [{vs['min']:.2f}–{vs['max']:.2f}]" if vs else "reference"
            print(f"{'':8} {n:20} {r['cpu_us_per_req'][n]:10.2f} {r['vs_nginx'][n]['median']:8.3f} {spread:>22}")
    print(f"runs below 97 % of the imposed rate: {len(unheld)}" + "".join(f"\n  {u}" for u in unheld))
    (out / "ab.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
