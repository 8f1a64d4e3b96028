#!/usr/bin/env python3
"""The platform's load harness: steady HTTP load on the front, every request accounted for.

Used by the zero-downtime cases (tests/e2e/k8s_disruptions.sh) and the compose suite.

  loadgen.py run    --base URL --out FILE [--rate 240] [--stop-file F] [--max-seconds N] ...
  loadgen.py report FILE --title T [--max-failed N]      one line; exit 1 over the bound
  loadgen.py plot   FILE... --out SVG                     per-second series, disruptions marked
  loadgen.py summary DIR --out JSON [--svg SVG]           every case of a run, controls apart

Two kinds of clients run at once, each paced at its share of --rate:
- keep-alive clients reuse one connection; a reused connection that the server closed before
  any byte of the response is retried once on a new connection (as browsers and Go's HTTP
  client do); such retries are counted apart;
- fresh clients open one connection per request (`Connection: close`), so kube-proxy
  balances each of them anew.
Routes are taken in turn: the page, /api/, /api/health, /api/info. A request succeeds only on
a 200 with the whole body, and the body the route must give (the page's closing tag, the
API's JSON); anything else, whatever the exception, is a failure: sent == succeeded + failed.
Marks (disruption times) are JSON lines {"t": epoch seconds, "label": "..."} appended to
--marks by the caller; they are copied into the result, relative to the start.
Only loopback targets are accepted; the run is bounded in time and in count.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import sys
import threading
import time
import urllib.parse
from collections import Counter, defaultdict
from pathlib import Path

ROUTES = ("/", "/api/", "/api/health", "/api/info")
REVISION_META = re.compile(rb'<meta name="datapress-revision" content="([^"]*)"')


class BadAnswer(Exception):
    """The server answered, but not what the route must give."""


def check_body(path: str, status: int, body: bytes) -> str | None:
    """Validates one answer; returns the revision it shows (page or API), if any."""
    if status != 200:
        raise BadAnswer(f"status {status}")
    if path == "/":
        if b"</html>" not in body:
            raise BadAnswer(f"page without its closing tag ({len(body)} bytes)")
        m = REVISION_META.search(body)
        return "page:" + m.group(1).decode() if m else None
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise BadAnswer(f"not JSON ({len(body)} bytes): {e}") from None
    if path == "/api/":
        if not (isinstance(doc, dict) and doc.get("service") == "api"):
            raise BadAnswer(f"unexpected /api/ body {body[:80]!r}")
        return f"api:{doc.get('version')}+{doc.get('revision')}"
    if path == "/api/health":
        if doc != {"status": "ok"}:
            raise BadAnswer(f"unexpected /api/health body {body[:80]!r}")
        return None
    if not (isinstance(doc, dict) and doc.get("env")):
        raise BadAnswer(f"unexpected /api/info body {body[:80]!r}")
    return None


class Recorder:
    """Thread-safe store of every request's outcome."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: list[tuple] = []  # (t_sent_rel, kind, route, ok, retried, latency_s, revision, error)
        self.sent = 0

    def start_one(self) -> None:
        with self.lock:
            self.sent += 1

    def add(self, rec: tuple) -> None:
        with self.lock:
            self.records.append(rec)


class Client(threading.Thread):
    def __init__(self, kind: str, idx: int, args, t0: float, rec: Recorder, stop: threading.Event) -> None:
        super().__init__(daemon=True, name=f"{kind}-{idx}")
        self.kind, self.idx, self.args, self.t0, self.rec, self.stop = kind, idx, args, t0, rec, stop
        self.conn: http.client.HTTPConnection | None = None
        self.crashed: BaseException | None = None

    def new_conn(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.args.host, self.args.port, timeout=self.args.timeout)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def exchange(self, conn: http.client.HTTPConnection, path: str, close: bool) -> tuple[int, bytes, bool]:
        """One request on conn; returns (status, body, server_closes). Sets self.answered, and
        self.phase and self.port for the failure's message (which step, which local port: a
        connection's port finds its conntrack entries on the nodes)."""
        headers = {"User-Agent": "datapress-loadgen", "Accept-Encoding": "identity"}
        if close:
            headers["Connection"] = "close"
        self.answered = False
        if conn.sock is None:
            self.phase, self.port = "connect", None
            conn.connect()
        self.port = conn.sock.getsockname()[1]
        self.phase = "request"
        conn.request("GET", path, headers=headers)
        self.phase = "waiting for the answer"
        resp = conn.getresponse()
        self.answered = True
        self.phase = "reading the body"
        body = resp.read()  # IncompleteRead if the body is cut short
        return resp.status, body, resp.will_close

    def one(self, path: str) -> tuple[bool, bool, str | None, str | None]:
        """Returns (ok, retried, revision, error)."""
        retried = False
        self.phase, self.port = "connect", None
        try:
            if self.kind == "fresh":
                conn = self.new_conn()
                try:
                    status, body, _ = self.exchange(conn, path, close=True)
                finally:
                    conn.close()
            else:
                reused = self.conn is not None
                if self.conn is None:
                    self.conn = self.new_conn()
                try:
                    status, body, closes = self.exchange(self.conn, path, close=False)
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                        ConnectionAbortedError) as e:
                    # Retry only a reused connection closed before any byte of the answer.
                    self.close()
                    if not reused or self.answered:
                        raise
                    retried = True
                    self.conn = self.new_conn()
                    try:
                        status, body, closes = self.exchange(self.conn, path, close=False)
                    except Exception as e2:
                        raise type(e2)(f"{e2!r} (on retry after {e!r})") from None
                if closes:
                    self.close()
            self.phase = "checking the answer"
            return True, retried, check_body(path, status, body), None
        except Exception as e:  # every failure counts, whatever its type
            self.close()
            where = self.phase + (f", local port {self.port}" if self.port else "")
            return False, retried, None, f"{type(e).__name__}: {e} ({where})"

    def run(self) -> None:
        try:
            n_clients = self.args.keepalive_clients + self.args.fresh_clients
            interval = n_clients / self.args.rate
            due = time.monotonic() + interval * self.idx / n_clients
            turn = self.idx
            while not self.stop.is_set():
                now = time.monotonic()
                if now < due:
                    self.stop.wait(due - now)
                    continue
                # After a stall (a request that hung), resume the pace instead of bursting.
                due = max(due + interval, now - 1.0)
                if not self.args.reserve():
                    break
                path = ROUTES[turn % len(ROUTES)]
                turn += 1
                self.rec.start_one()
                t_sent = time.monotonic()
                ok, retried, revision, err = self.one(path)
                self.rec.add((t_sent - self.t0, self.kind, path, ok, retried, time.monotonic() - t_sent, revision, err))
        except BaseException as e:  # a crashed client is reported, never silently lost
            self.crashed = e
        finally:
            self.close()


def percentile(sorted_vals: list[float], p: float) -> float | None:
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


def ms(v: float | None) -> float | None:
    return None if v is None else round(v * 1000, 2)


def summarize(records: list[tuple], sent: int, args, start_epoch: float, duration: float, marks: list[dict]) -> dict:
    succeeded = sum(1 for r in records if r[3])
    failed = len(records) - succeeded
    per_sec: dict[int, dict] = defaultdict(lambda: {"ok": 0, "failed": 0, "retried": 0, "lat": [], "revisions": Counter()})
    by_kind: dict[str, Counter] = defaultdict(Counter)
    by_route: dict[str, Counter] = defaultdict(Counter)
    errors: Counter = Counter()
    first_errors: list[str] = []
    failures: list[dict] = []  # each failed request (started at t), to explain where it came from
    lat_all = []
    revisions: Counter = Counter()
    for t, kind, route, ok, retried, lat, rev, err in records:
        s = per_sec[int(t)]
        s["ok" if ok else "failed"] += 1
        s["retried"] += retried
        s["lat"].append(lat)
        lat_all.append(lat)
        if rev:
            s["revisions"][rev] += 1
            revisions[rev] += 1
        by_kind[kind]["ok" if ok else "failed"] += 1
        by_kind[kind]["retried"] += retried
        by_route[route]["ok" if ok else "failed"] += 1
        if err:
            errors[re.sub(r"\d+", "N", err.split(":")[0])] += 1
            if len(first_errors) < 10:
                first_errors.append(f"t={t:.2f}s {kind} {route}: {err}")
        if not ok and len(failures) < 2000:
            failures.append({"t": round(t, 3), "client": kind, "route": route, "ms": ms(lat), "error": err})
    series = []
    for sec in range(0, int(duration)):  # whole seconds only: the last partial one would look like a drop
        s = per_sec.get(sec)
        lat = sorted(s["lat"]) if s else []
        series.append({"t": sec, "ok": s["ok"] if s else 0, "failed": s["failed"] if s else 0,
                       "retried": s["retried"] if s else 0, "p50_ms": ms(percentile(lat, 50)),
                       "p99_ms": ms(percentile(lat, 99)), "revisions": dict(s["revisions"]) if s else {}})
    lat_all.sort()
    return {
        "target": args.base, "rate": args.rate, "routes": list(ROUTES),
        "clients": {"keepalive": args.keepalive_clients, "fresh": args.fresh_clients},
        "start_epoch": round(start_epoch, 3), "duration_s": round(duration, 2),
        "sent": sent, "succeeded": succeeded, "failed": failed,
        "retried": sum(r[4] for r in records),
        "by_client": {k: dict(v) for k, v in by_kind.items()},
        "by_route": {k: dict(v) for k, v in by_route.items()},
        "latency_ms": {"p50": ms(percentile(lat_all, 50)), "p99": ms(percentile(lat_all, 99)),
                       "max": ms(lat_all[-1] if lat_all else None)},
        "errors": dict(errors), "first_errors": first_errors, "failures": failures,
        "revisions": dict(revisions), "marks": marks, "series": series,
    }


def read_marks(path: str | None, start_epoch: float) -> list[dict]:
    if not path or not os.path.exists(path):
        return []
    marks = []
    with open(path) as f:
        for line in f:
            if line.strip():
                m = json.loads(line)
                marks.append({"t": round(m["t"] - start_epoch, 2), "label": m["label"]})
    return marks


def cmd_run(args) -> int:
    url = urllib.parse.urlparse(args.base)
    if url.scheme != "http" or url.hostname not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"loadgen: refusing {args.base!r}: only http:// on loopback")
    if args.keepalive_clients + args.fresh_clients < 1 or args.rate <= 0:
        sys.exit("loadgen: need at least one client and a positive rate")
    args.host, args.port = url.hostname, url.port or 80
    budget = threading.Semaphore(args.max_requests)
    args.reserve = lambda: budget.acquire(blocking=False)

    rec, stop = Recorder(), threading.Event()
    start_epoch, t0 = time.time(), time.monotonic()
    clients = [Client("keepalive", i, args, t0, rec, stop) for i in range(args.keepalive_clients)]
    clients += [Client("fresh", args.keepalive_clients + i, args, t0, rec, stop) for i in range(args.fresh_clients)]
    for c in clients:
        c.start()
    if args.ready_file:
        open(args.ready_file, "w").close()
    while True:
        elapsed = time.monotonic() - t0
        if (args.stop_file and os.path.exists(args.stop_file)) or elapsed >= args.max_seconds \
                or not any(c.is_alive() for c in clients):
            break
        time.sleep(0.05)
    stop.set()
    for c in clients:
        c.join(args.timeout * 3 + 5)
    duration = time.monotonic() - t0
    stuck = [c.name for c in clients if c.is_alive()]
    crashed = [f"{c.name}: {c.crashed!r}" for c in clients if c.crashed]
    with rec.lock:
        records, sent = list(rec.records), rec.sent
    result = summarize(records, sent, args, start_epoch, duration, read_marks(args.marks, start_epoch))
    result["stopped_by"] = "max-seconds" if duration >= args.max_seconds else "stop-file"
    result["harness_errors"] = crashed + [f"{n}: still running at the end" for n in stuck]
    # The harness's own accounting: a request neither succeeded nor failed is a harness bug.
    if result["sent"] != result["succeeded"] + result["failed"]:
        result["harness_errors"].append(f"sent {result['sent']} != succeeded + failed")
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    if result["harness_errors"]:
        print("loadgen: " + "; ".join(result["harness_errors"]), file=sys.stderr)
        return 2
    return 0


def window(r: dict, start: str, end: str) -> dict | None:
    """Between the last marks START and END: its length, requests, failures, worst per-second p99."""
    t = {m["label"]: m["t"] for m in r["marks"]}
    if start not in t or end not in t:
        return None
    secs = [s for s in r["series"] if t[start] - 1 < s["t"] < t[end]]
    return {"seconds": round(t[end] - t[start], 1), "sent": sum(s["ok"] + s["failed"] for s in secs),
            "failed": sum(s["failed"] for s in secs), "worst_p99_ms": max((s["p99_ms"] or 0 for s in secs), default=0)}


def cmd_report(args) -> int:
    r = json.load(open(args.file))
    problems = list(r.get("harness_errors", []))
    if r["sent"] != r["succeeded"] + r["failed"]:
        problems.append("sent != succeeded + failed")
    if r["sent"] < args.min_sent:
        problems.append(f"only {r['sent']} requests sent (< {args.min_sent})")
    if not args.measure_only and r["failed"] > args.max_failed:
        problems.append(f"{r['failed']} failed (bound {args.max_failed})")
    if args.no_failures_after:
        at = [m["t"] for m in r["marks"] if m["label"] == args.no_failures_after]
        late = sum(sec["failed"] for sec in r["series"] if at and sec["t"] >= at[-1] + 1)
        if not at or late > args.max_late:
            problems.append(f"{late} failed after {args.no_failures_after!r} (bound {args.max_late})" if at
                            else f"no mark {args.no_failures_after!r}")
        for f in r.get("failures", []):
            if at and int(f["t"]) >= at[-1] + 1:
                print(f"       late failure: started t={f['t']}s, {f['client']} {f['route']}, {f['ms']} ms: {f['error']}")
    if args.expect_revisions:
        # What serves once the old pods are gone: only the new revisions, each seen.
        want = set(args.expect_revisions.split(","))
        at = [m["t"] for m in r["marks"] if m["label"] == args.after_mark]
        if not at:
            problems.append(f"no mark {args.after_mark!r}")
        else:
            seen = Counter()
            for sec in r["series"]:
                if sec["t"] >= at[-1] + 1:
                    seen.update(sec["revisions"])
            if set(seen) != want:
                problems.append(f"after {args.after_mark!r} served {dict(seen)}, want only and all of {sorted(want)}")
    w = window(r, *args.window) if args.window else None
    if args.window and w is None:
        problems.append(f"no marks {args.window}")
    ka, fr = r["by_client"].get("keepalive", {}), r["by_client"].get("fresh", {})
    verdict = "FAIL" if problems else ("loss" if args.measure_only and r["failed"] else "ok  ")
    print(f"{verdict} {args.title:<34} sent={r['sent']} succeeded={r['succeeded']} "
          f"failed={r['failed']} retried={r['retried']} (keep-alive {ka.get('failed', 0)} failed, "
          f"new-connection {fr.get('failed', 0)} failed) p99={r['latency_ms']['p99']} ms {r['duration_s']} s"
          + (f" [{'; '.join(problems)}]" if problems else ""))
    for m in r["marks"]:
        print(f"       t={m['t']:>7.2f}s {m['label']}")
    if w:
        print(f"       from {args.window[0]!r} to {args.window[1]!r}: {w['seconds']:.1f} s, "
              f"{w['failed']} failed of {w['sent']}, worst p99 of a second {w['worst_p99_ms']} ms")
    for e in r["first_errors"][:5]:
        print(f"       {e}")
    return 1 if problems else 0


def cmd_plot(args) -> int:
    """One SVG: the cases side by side on one time axis, requests/s (ok, failed) and p99."""
    runs = [json.load(open(p)) for p in args.files]
    for r in runs:  # whole seconds only (results written before the series dropped the partial one)
        r["series"] = [s for s in r["series"] if s["t"] < int(r["duration_s"])]
    titles = args.titles.split("|") if args.titles else [os.path.basename(p) for p in args.files]
    gap, width, h1, h2, left, top = 4, 1200, 260, 140, 70, 60
    total = sum(len(r["series"]) for r in runs) + gap * (len(runs) - 1)
    xs = (width - left - 90) / max(total, 1)
    ymax = max(max((s["ok"] + s["failed"]) for s in r["series"]) for r in runs) or 1
    pmax = max((s["p99_ms"] or 0) for r in runs for s in r["series"]) or 1
    height = top + h1 + 40 + h2 + 110
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
         'font-family="sans-serif" font-size="15">', f'<rect width="{width}" height="{height}" fill="white"/>',
         f'<text x="{left}" y="28" font-size="20" font-weight="bold">{args.title}</text>',
         f'<text x="{left}" y="{top - 8}" fill="#555">requêtes par seconde (vert : réussies, rouge : échouées)</text>',
         f'<text x="{left}" y="{top + h1 + 32}" fill="#555">p99 de la latence (ms), max {pmax:.0f}</text>']
    x0 = left
    for i, (r, title) in enumerate(zip(runs, titles)):
        n = len(r["series"])
        o.append(f'<rect x="{x0:.1f}" y="{top}" width="{n * xs:.1f}" height="{h1}" fill="#f4f6f8"/>')
        o.append(f'<rect x="{x0:.1f}" y="{top + h1 + 40}" width="{n * xs:.1f}" height="{h2}" fill="#f4f6f8"/>')
        for s in r["series"]:
            x = x0 + s["t"] * xs
            hok = s["ok"] / ymax * h1
            hf = s["failed"] / ymax * h1
            o.append(f'<rect x="{x:.1f}" y="{top + h1 - hok:.1f}" width="{max(xs - 0.5, 0.5):.1f}" height="{hok:.1f}" fill="#2e7d32"/>')
            if s["failed"]:
                o.append(f'<rect x="{x:.1f}" y="{top + h1 - hok - hf:.1f}" width="{max(xs - 0.5, 0.5):.1f}" '
                         f'height="{max(hf, 3):.1f}" fill="#c62828"/>')
            if s["p99_ms"] is not None:
                hp = s["p99_ms"] / pmax * h2
                o.append(f'<rect x="{x:.1f}" y="{top + h1 + 40 + h2 - hp:.1f}" width="{max(xs - 0.5, 0.5):.1f}" '
                         f'height="{hp:.1f}" fill="#1565c0"/>')
        for m in r["marks"]:
            x = x0 + max(0.0, m["t"]) * xs
            o.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + h1 + 40 + h2}" stroke="#ef6c00" '
                     'stroke-width="2" stroke-dasharray="4 3"/>')
        row = 48 * (i % 2)  # alternate rows, so short cases keep readable labels
        o.append(f'<text x="{x0 + n * xs / 2:.1f}" y="{top + h1 + 40 + h2 + 24 + row}" text-anchor="middle" '
                 f'font-size="16">{title}</text>')
        o.append(f'<text x="{x0 + n * xs / 2:.1f}" y="{top + h1 + 40 + h2 + 44 + row}" text-anchor="middle" '
                 f'font-size="15" fill="{"#c62828" if r["failed"] else "#2e7d32"}">{r["failed"]} échec(s) / {r["sent"]}</text>')
        x0 += (n + gap) * xs
    o.append(f'<text x="{left - 8}" y="{top + 12}" text-anchor="end" fill="#555">{ymax}</text>')
    o.append(f'<text x="{left - 8}" y="{top + h1}" text-anchor="end" fill="#555">0</text>')
    o.append("</svg>")
    with open(args.out, "w") as f:
        f.write("\n".join(o) + "\n")
    return 0


CONTROLS = ("broken-rollout", "lossy")
# Short French names for the chart (the deck shows it); other cases keep their own name.
CASE_TITLES = {
    "api-rollout": "MAJ de l'API", "front-rollout": "MAJ du front", "config-change": "ConfigMap",
    "rollout-undo": "retour arrière", "rollback-durable": "retour arrière durable", "secret-rotation": "secret changé", "delete-api-pod": "pod API supprimé",
    "delete-front-pod": "pod front supprimé", "kill-api-container": "API tuée (SIGKILL)",
    "kill-front-container": "front tué (SIGKILL)", "drain-node": "nœud vidé (drain)",
    "lose-node": "nœud arrêté net", "node-back": "retour du nœud",
}


def cmd_summary(args) -> int:
    """Every case of a directory (load-CASE.json, in run order): one JSON and one SVG."""
    files = sorted(Path(args.dir).glob("load-*.json"), key=lambda p: p.stat().st_mtime)
    cases = []
    for f in files:
        r = json.loads(f.read_text())
        name = f.stem[len("load-"):]
        t = {m["label"]: m["t"] for m in r["marks"]}
        first = r["marks"][0]["t"] if r["marks"] else None
        gone = t.get("old pods gone")
        cases.append({"case": name, "control": name in CONTROLS, "sent": r["sent"], "succeeded": r["succeeded"],
                      "failed": r["failed"], "retried": r["retried"], "p99_ms": r["latency_ms"]["p99"],
                      "duration_s": r["duration_s"], "rate": r["rate"], "start_epoch": r["start_epoch"],
                      "old_pods_gone_after_s": round(gone - first, 1) if gone is not None and first is not None else None,
                      "marks_s": {label: round(at - first, 1) for label, at in t.items()},
                      # Failures from the second after each mark (as report --no-failures-after counts).
                      "failed_after": {label: sum(sec["failed"] for sec in r["series"] if sec["t"] >= at + 1)
                                       for label, at in t.items()},
                      # From the disruption's first mark to its last: failures and worst p99 of a second.
                      "event": window(r, r["marks"][0]["label"], r["marks"][-1]["label"]) if r["marks"] else None,
                      "file": f.name})
    if not cases:
        sys.exit(f"loadgen: no load-*.json in {args.dir}")
    with open(args.out, "w") as f:
        json.dump({"generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "revision": args.revision,
                   "cluster": args.cluster, "cases": cases}, f, indent=1)
    shown = [c for c in cases if not c["control"]]
    if args.svg and shown:
        plot = argparse.Namespace(files=[str(Path(args.dir) / c["file"]) for c in shown], out=args.svg,
                                  title=args.title, titles="|".join(CASE_TITLES.get(c["case"], c["case"]) for c in shown))
        cmd_plot(plot)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run")
    run.add_argument("--base", required=True, help="http://127.0.0.1:PORT of the front")
    run.add_argument("--out", required=True)
    run.add_argument("--rate", type=float, default=240.0, help="requests per second, all clients together")
    run.add_argument("--keepalive-clients", type=int, default=4)
    run.add_argument("--fresh-clients", type=int, default=4)
    run.add_argument("--timeout", type=float, default=5.0, help="per request, seconds")
    run.add_argument("--stop-file")
    run.add_argument("--ready-file", help="created once the clients run")
    run.add_argument("--marks")
    run.add_argument("--max-seconds", type=float, default=600.0)
    run.add_argument("--max-requests", type=int, default=500_000)
    rep = sub.add_parser("report")
    rep.add_argument("file")
    rep.add_argument("--title", required=True)
    rep.add_argument("--max-failed", type=int, default=0)
    rep.add_argument("--min-sent", type=int, default=1)
    rep.add_argument("--measure-only", action="store_true",
                     help="print the loss without bounding it (still fails on accounting errors)")
    rep.add_argument("--no-failures-after", metavar="LABEL", help="no failure from the second after this mark")
    rep.add_argument("--max-late", type=int, default=0, help="failures allowed after --no-failures-after's mark")
    rep.add_argument("--expect-revisions", help="comma-separated revisions that alone must serve after --after-mark")
    rep.add_argument("--after-mark", default="old pods gone")
    rep.add_argument("--window", nargs=2, metavar=("START", "END"),
                     help="also print the failures and the worst per-second p99 between two marks")
    plot = sub.add_parser("plot")
    plot.add_argument("files", nargs="+")
    plot.add_argument("--out", required=True)
    plot.add_argument("--title", default="Charge continue pendant les changements")
    plot.add_argument("--titles", help="one title per file, separated by |")
    summ = sub.add_parser("summary")
    summ.add_argument("dir")
    summ.add_argument("--out", required=True)
    summ.add_argument("--svg")
    summ.add_argument("--revision", default="unknown", help="the images' revision, kept with the figures")
    summ.add_argument("--cluster", default="unknown", help="the cluster's version and context")
    summ.add_argument("--title", default="Charge continue pendant chaque changement de la recette")
    args = ap.parse_args()
    return {"run": cmd_run, "report": cmd_report, "plot": cmd_plot, "summary": cmd_summary}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
