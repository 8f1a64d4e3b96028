#!/usr/bin/env python3
"""The bench harness behind `make bench` (and `make bench-smoke`): starts each server pinned
to one core, loads it from the other core, reads CPU and memory from /proc, and writes a
table (stdout), JSON and an SVG chart. Standard library only. Called by bench/run.sh."""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import http.client
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CLK = os.sysconf("SC_CLK_TCK")
SERVER_CORE, LOAD_CORE = "1", "0"
CONNECTIONS = 64

# Per mode: saturated runs per route, their seconds, warm-up seconds, starts timed, and
# imposed-rate runs per route (those need oha, which only the full bench installs).
MODES = {"full": (3, 10, 2, 7, 8), "smoke": (1, 1, 0, 2, 0)}

# Targets of issue 11, reported as PASS/MISS, never asserted by a timed test.
TARGETS = {
    "health_rps_vs_nginx": (">=", 0.8, "/health req/s : API ÷ NGINX statique"),
    "cpu_per_req_vs_nginx_health": ("<=", 1.25, "CPU/requête /health : API ÷ NGINX"),
    "cpu_per_req_vs_nginx_root": ("<=", 1.25, "CPU/requête / : API ÷ NGINX (journalisés)"),
    "rps_vs_fastapi_health": (">=", 10.0, "/health req/s : API ÷ FastAPI"),
    "rps_vs_fastapi_root": (">=", 10.0, "/ req/s : API ÷ FastAPI"),
    "p99_ms_health": ("<=", 1.5, "p99 /health de l'API (ms)"),
    "p99_ms_root": ("<=", 1.5, "p99 / de l'API (ms)"),
    "rss_mb": ("<=", 12.0, "RSS de l'API après la charge (Mo)"),
    "start_ms": ("<=", 20.0, "Démarrage → premier /health (ms)"),
    "api_image_mb": ("<=", 15.0, "Image datapress-api (Mo)"),
    "proxy_hop_keep": (">=", 0.7, "/api/health via le front ÷ /health direct"),
    # Issue 21: the shipped allocator, within 5 % of the best of the compared builds.
    "alloc_rps_vs_best": (">=", 0.95, "req/s API livrée ÷ meilleur build (pire route)"),
    "alloc_cpu_vs_best": ("<=", 1.05, "CPU/requête API livrée ÷ meilleur build (pire route)"),
}

# What a bare Salvo app measured on these machines, as the issue reports it.
ISSUE_REFERENCE = {
    "bare_health_rps_vs_nginx": "0.72–0.76",
    "bare_rps_vs_fastapi_health": "9–10",
    "bare_p99_ms_health": "1.0–1.1",
    "bare_rss_mb": "7",
    "bare_start_ms": "< 7",
}

# The API builds compared in the same run (bench/run.sh builds them with scripts/build-api.sh):
# the shipped one ("api") against the same code with the C library's own malloc and memcpy.
API_VARIANTS = ("api-musl-system", "api-glibc")


def shipped_allocator() -> str:
    """The allocator the shipped build selects: api/Cargo.toml's default feature."""
    features = tomllib.loads((ROOT / "api/Cargo.toml").read_text()).get("features", {})
    return " + ".join(features.get("default", [])) or "malloc de musl"


LABELS = {
    "nginx": "NGINX statique (limite pratique)",
    "api": f"API livrée (musl + {shipped_allocator()})",
    "api-musl-system": "API musl seul (son malloc et son memcpy)",
    "api-glibc": "API glibc, malloc de glibc",
    "bare": "Salvo nu (sans middleware)",
    "fastapi": "FastAPI + uvicorn (pile d'origine)",
    "proxy": "API via le front NGINX",
}


def log(msg: str) -> None:
    print(f"\033[1;34m==>\033[0m {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- /proc readings -------------------------------------------------------------------


def proc_tree(pid: int) -> list[int]:
    """The process and all its descendants (NGINX's workers, for instance)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def cpu_ticks(pid: int) -> int:
    """utime + stime of every process in the tree, in clock ticks."""
    total = 0
    for p in proc_tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            pass
    return total


def cpu_ns(pid: int) -> tuple[int, frozenset[int]]:
    """Time on CPU of every thread in the tree, in ns (schedstat, exact), and the thread
    ids it summed: utime/stime are sampled at the 100 Hz tick, which a server running in
    short bursts between idle periods can fool. Threads gone by the second reading would
    take their time with them, so callers compare the thread sets."""
    total, tids = 0, set()
    for p in proc_tree(pid):
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
                tids.add(int(tid))
        except (OSError, ValueError, IndexError):
            pass
    return total, frozenset(tids)


class CpuReading:
    """CPU of a process tree between two points: exact when no thread came or went,
    from the sampled tick counters otherwise."""

    def __init__(self, pid: int):
        self.pid = pid
        self.ns0, self.tids0 = cpu_ns(pid)
        self.ticks0 = cpu_ticks(pid)

    def seconds(self) -> tuple[float, str]:
        ns1, tids1 = cpu_ns(self.pid)
        if ns1 and tids1 == self.tids0:
            return (ns1 - self.ns0) / 1e9, "schedstat"
        return (cpu_ticks(self.pid) - self.ticks0) / CLK, "ticks"


def rss_kb(pid: int) -> int:
    total = 0
    for p in proc_tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                total += next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total


def threads(pid: int) -> list[str]:
    names = []
    for tid in sorted(os.listdir(f"/proc/{pid}/task")):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            names.append(f.read().strip())
    return names


def core_ticks() -> dict[str, tuple[int, int]]:
    """Per core, from /proc/stat: busy ticks (everything but idle, iowait and steal) and
    steal ticks (time the hypervisor gave this virtual core to someone else)."""
    ticks = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *vals = line.split()
            if name.startswith("cpu") and name != "cpu":
                v = [int(x) for x in vals[:8]]
                ticks[name[3:]] = (sum(v) - v[3] - v[4] - v[7], v[7])
    return ticks


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def log_dir() -> str | None:
    """Where servers write their logs: a RAM file system when there is room, so that the
    disk writeback of one run's log (hundreds of MB) does not slow the next server down.
    Still real files: each access line costs both sides a write to the page cache."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return None
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) and st.f_bavail * st.f_frsize > 4 << 30 else None


class IdleStates:
    """Keeps the CPUs out of their sleep states while held, through the kernel's PM QoS
    interface (/dev/cpu_dma_latency = 0, as tuned's latency-performance profile does):
    idle cores poll instead of halting. In this VM a halted vCPU costs each request a
    wake-up through the hypervisor, charged to whichever process runs next; that made CPU
    per request depend on how busy the server and the generator were (docs/performance.md)."""

    PATH = "/dev/cpu_dma_latency"

    def __init__(self, wanted: bool):
        self.fd: int | None = None
        self.note = "allowed (as asked)"
        if wanted:
            self.hold()

    @property
    def held(self) -> bool:
        return self.fd is not None

    def hold(self) -> None:
        try:
            self.fd = os.open(self.PATH, os.O_WRONLY)
            os.write(self.fd, (0).to_bytes(4, sys.byteorder))
            self.note = "poll only (PM QoS cpu_dma_latency = 0)"
        except OSError as e:
            self.fd = None
            self.note = f"allowed ({self.PATH} not writable: {e.strerror})"

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# --- HTTP -------------------------------------------------------------------------------


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def first_ok(port: int, path: str, deadline: float) -> bool:
    """Polls as fast as the kernel refuses connections: one raw request per attempt."""
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
    while time.perf_counter() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(req)
                if s.recv(64).startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")):
                    return True
        except OSError:
            pass
        time.sleep(0.0005)
    return False


# --- Servers ----------------------------------------------------------------------------


def clean_env() -> dict:
    """The caller's environment without settings that would change what is measured."""
    drop = ("DATAPRESS_", "APP_", "DB_PASSWORD", "RUST_LOG", "OTEL_")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


class Server:
    """One server process pinned to the server core, its output in a log file."""

    def __init__(self, name: str, cmd: list[str], port: int, log_path: Path, env: dict | None = None,
                 stop_signal: int = signal.SIGTERM, probe: str = "/health"):
        self.name, self.cmd, self.port, self.log_path = name, cmd, port, log_path
        self.env, self.stop_signal, self.probe = env, stop_signal, probe
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 30) -> float:
        """Starts the process; returns seconds from spawn to the first 200 on the probe."""
        log_f = open(self.log_path, "ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(["taskset", "-c", SERVER_CORE, *self.cmd], stdout=log_f,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env={**clean_env(), **(self.env or {})}, start_new_session=True)
        log_f.close()
        ok = first_ok(self.port, self.probe, t0 + timeout)
        elapsed = time.perf_counter() - t0
        if not ok or self.proc.poll() is not None:
            self.stop()
            tail = self.log_path.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(f"{self.name} did not answer {self.probe} on :{self.port}\n" + "\n".join(tail))
        return elapsed

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(self.stop_signal)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class Suite:
    """Builds the servers under test from the command line's binaries and paths."""

    def __init__(self, args: argparse.Namespace, work: Path):
        self.a, self.work = args, work

    def _dir(self, name: str) -> Path:
        d = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.work))
        d.chmod(0o755)
        return d

    def nginx_static(self, port: int) -> Server:
        d = self._dir("nginx")
        conf = (BENCH / "nginx/static.conf").read_text().replace("__PORT__", str(port)).replace("__DIR__", str(d))
        (d / "nginx.conf").write_text(conf)
        return Server("nginx", [self.a.nginx, "-e", "stderr", "-p", str(d), "-c", str(d / "nginx.conf")],
                      port, d / "server.log", stop_signal=signal.SIGTERM)

    def api(self, port: int, name: str = "api", binary: str | None = None) -> Server:
        d = self._dir(name)
        env = {"APP_ENV": "bench", "DATAPRESS_LISTEN": f"127.0.0.1:{port}",
               "DATAPRESS_METRICS_LISTEN": f"127.0.0.1:{free_port()}", "DATAPRESS_DRAIN_SECONDS": "0",
               "DATAPRESS_LOG_FORMAT": "json"}
        return Server(name, [binary or self.a.api_bin], port, d / "server.log", env=env)

    def bare(self, port: int) -> Server:
        d = self._dir("bare")
        return Server("bare", [self.a.bare_bin], port, d / "server.log", env={"DATAPRESS_LISTEN": f"127.0.0.1:{port}"})

    def fastapi(self, port: int) -> Server:
        d = self._dir("fastapi")
        cmd = [self.a.python, "-m", "uvicorn", "app:app", "--app-dir", str(BENCH / "fastapi"), "--host", "127.0.0.1",
               "--port", str(port), "--loop", "uvloop", "--http", "httptools"]
        return Server("fastapi", cmd, port, d / "server.log")

    def front(self) -> Server:
        d = self._dir("front")
        return Server("front", [self.a.nginx, "-e", "stderr", "-c", self.a.front_conf, "-g", "daemon off;"],
                      self.a.front_port, d / "server.log", stop_signal=signal.SIGTERM, probe="/healthz")

    def server(self, name: str, port: int) -> Server:
        """One server by its bench name (the proxy pair is built by start_target)."""
        if name in self.a.api_variant:
            return self.api(port, name, self.a.api_variant[name])
        return getattr(self, {"nginx": "nginx_static"}.get(name, name))(port)

    def available(self) -> list[str]:
        names = ["nginx", "api", *(n for n in API_VARIANTS if n in self.a.api_variant)]
        if self.a.bare_bin:
            names.append("bare")
        if self.a.python:
            names.append("fastapi")
        if self.a.front_conf:
            names.append("proxy")
        return names


# --- Load -------------------------------------------------------------------------------


def run_wrk(wrk: str, url: str, seconds: int) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(["taskset", "-c", LOAD_CORE, wrk, "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "2s",
                        "-s", str(BENCH / "wrk-report.lua"), url],
                       capture_output=True, text=True, timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next((l for l in p.stdout.splitlines() if l.startswith("WRK-JSON ")), None)
    if p.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed on {url}: {p.stdout}{p.stderr}")
    r = wrk_result(json.loads(line[len("WRK-JSON "):]))
    r["loadgen_cpu_s"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return r


def wrk_result(summary: dict) -> dict:
    """wrk's summary with `requests` = correct answers only: wrk counts an HTTP error (status
    >= 400) as a request too, so a server answering fast errors would score well. Socket
    errors (connect, read, write, timeout) stay in `errors`, and any error fails the bench."""
    return {**summary, "answers": summary["requests"], "requests": summary["requests"] - summary["errors"]["status"]}


def oha_json(oha: str, url: str, seconds: float, rate: int | None = None) -> tuple[dict, float]:
    """One bounded oha run (open loop at `rate` when given, waiting for the requests in
    flight at the end); its JSON summary and the CPU seconds oha used."""
    extra = ["-q", str(rate), "-w"] if rate else []
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(["taskset", "-c", LOAD_CORE, oha, "--no-tui", "--output-format", "json", "-c", str(CONNECTIONS),
                        *extra, "-z", f"{seconds}s", url], capture_output=True, text=True, timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(f"oha failed on {url}: {p.stderr.strip()[-300:]}")
    return json.loads(p.stdout), (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def run_oha_rate(oha: str, url: str, seconds: float, rate: int) -> dict:
    """Open loop at an imposed rate: every server gets the same requests per second, so CPU
    per request no longer depends on how fast the server keeps the generator busy. Same
    shape as run_wrk's result."""
    d, cpu_s = oha_json(oha, url, seconds, rate)
    codes = {int(k): v for k, v in (d.get("statusCodeDistribution") or {}).items()}
    errors = {"status": sum(v for k, v in codes.items() if k >= 400),
              "other": sum((d.get("errorDistribution") or {}).values())}
    lat = d["latencyPercentiles"]
    return {"requests": sum(v for k, v in codes.items() if k < 400), "duration_us": d["summary"]["total"] * 1e6,
            "latency_us": {k: (lat.get(k) or 0) * 1e6 for k in ("p50", "p90", "p99")} | {"max": (d["summary"].get("slowest") or 0) * 1e6},
            "errors": errors, "loadgen_cpu_s": cpu_s}


def measure(load, path: str, servers: dict[str, Server]) -> dict:
    """One bounded load run (`load()` runs the generator); the server side's CPU comes from
    /proc, not from the generator."""
    cpu0 = {n: CpuReading(s.pid) for n, s in servers.items()}
    core0, t0 = core_ticks(), time.perf_counter()
    w = load()
    wall = time.perf_counter() - t0
    core1 = core_ticks()
    cpu1 = {n: r.seconds() for n, r in cpu0.items()}
    reqs = w["requests"]
    dur = w["duration_us"] / 1e6
    cpu_s = {n: secs for n, (secs, _) in cpu1.items()}
    server_core_s = (core1[SERVER_CORE][0] - core0[SERVER_CORE][0]) / CLK
    load_core_s = (core1[LOAD_CORE][0] - core0[LOAD_CORE][0]) / CLK
    steal_s = max((core1[c][1] - core0[c][1]) / CLK for c in (SERVER_CORE, LOAD_CORE))
    return {
        "path": path,
        "requests": reqs,
        "rps": reqs / dur if dur else 0.0,
        "p50_ms": w["latency_us"]["p50"] / 1000,
        "p90_ms": w["latency_us"]["p90"] / 1000,
        "p99_ms": w["latency_us"]["p99"] / 1000,
        "max_ms": w["latency_us"]["max"] / 1000,
        "errors": sum(w["errors"].values()),
        "error_detail": w["errors"],
        "cpu_us_per_req": {n: (c * 1e6 / reqs if reqs else None) for n, c in cpu_s.items()},
        "server_cpu_us_per_req": (sum(cpu_s.values()) * 1e6 / reqs) if reqs else None,
        "server_cpu_cores": sum(cpu_s.values()) / wall,
        "cpu_source": {n: src for n, (_, src) in cpu1.items()},
        # Another process on the server's core would bias the run: report how much there was.
        "foreign_on_server_core_pct": max(0.0, server_core_s - sum(cpu_s.values())) / wall * 100,
        "loadgen_cpu_cores": w["loadgen_cpu_s"] / wall,
        "load_core_busy_pct": load_core_s / wall * 100,
        # A shared host: time the hypervisor took from either core makes the run noisier.
        "steal_pct": steal_s / wall * 100,
    }


def median_of(runs: list[dict]) -> dict:
    keys = ("rps", "p50_ms", "p90_ms", "p99_ms", "server_cpu_us_per_req", "foreign_on_server_core_pct",
            "loadgen_cpu_cores", "load_core_busy_pct", "server_cpu_cores", "steal_pct")
    m = {k: statistics.median(r[k] for r in runs) for k in keys}
    m["errors"] = sum(r["errors"] for r in runs)
    m["error_detail"] = {k: sum(r["error_detail"].get(k, 0) for r in runs) for k in runs[0]["error_detail"]}
    m["requests"] = sum(r["requests"] for r in runs)
    m["path"] = runs[0]["path"]
    m["cpu_us_per_req"] = {n: statistics.median(r["cpu_us_per_req"][n] for r in runs) for n in runs[0]["cpu_us_per_req"]}
    return m


# --- Response checks ----------------------------------------------------------------------


def check_routes(port: int, paths: dict[str, str]) -> list[str]:
    """The servers must answer the same JSON before their numbers mean anything."""
    problems = []
    st, hd, body = http_get(port, paths["/health"])
    if st != 200 or json.loads(body) != {"status": "ok"}:
        problems.append(f"{paths['/health']} → {st} {body[:80]!r}")
    st, hd, body = http_get(port, paths["/"])
    try:
        doc = json.loads(body)
        ok = st == 200 and doc.get("service") == "api" and doc.get("version") and str(doc.get("ts", "")).endswith(("Z", "+00:00"))
    except ValueError:
        ok = False
    if not ok:
        problems.append(f"{paths['/']} → {st} {body[:120]!r}")
    if not hd.get("content-type", "").startswith("application/json"):
        problems.append(f"{paths['/']} content-type {hd.get('content-type')}")
    return problems


# --- Sizes ------------------------------------------------------------------------------


def image_size_mb(ref: str) -> tuple[float | None, str]:
    if not shutil.which("docker"):
        return None, "non construite (pas de Docker)"
    try:
        p = subprocess.run(["docker", "image", "inspect", "--format", "{{.Size}}", ref], capture_output=True,
                           text=True, timeout=15)
    except subprocess.TimeoutExpired:
        return None, "non mesurée (Docker ne répond pas)"
    if p.returncode != 0:
        return None, "non construite" if "No such image" in p.stderr or "No such object" in p.stderr \
            else "non mesurée (moteur Docker arrêté)"
    return int(p.stdout.strip()) / 1e6, ""


def dir_size_mb(path: str) -> float:
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            fp = os.path.join(dirpath, f)
            if not os.path.islink(fp):
                total += os.path.getsize(fp)
    return total / 1e6


# --- Chart --------------------------------------------------------------------------------


def svg_chart(results: dict, meta: dict) -> str:
    """Two panels of horizontal bars: requests/s and server CPU per request, per route."""
    order = [n for n in ("nginx", "api", *API_VARIANTS, "bare", "proxy", "fastapi") if n in results["servers"]]
    colors = {"/health": "#2b6cb0", "/": "#dd8a1f"}
    width, label_w, bar_h, gap = 940, 300, 16, 14
    panel_h = len(order) * (2 * bar_h + gap) + 50
    height = 70 + 2 * panel_h + 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
           'font-family="DejaVu Sans, Arial, sans-serif" font-size="13" role="img" '
           'aria-label="Banc de performance DataPress">',
           f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
           f'<text x="20" y="28" font-size="17" font-weight="bold">Banc DataPress : 64 connexions, serveur sur 1 cœur '
           f'({"médiane de " + str(meta["runs"]) + " mesures" if meta["runs"] > 1 else "1 mesure"})</text>',
           f'<text x="20" y="48" fill="#555">{_esc(meta["machine"])} · {meta["date"]} · révision {meta["revision"][:12]} · '
           f'charge avant le banc {meta["loadavg_before"].split()[0]} · cœurs '
           f'{"maintenus hors veille (PM QoS)" if meta.get("idle_states", "").startswith("poll") else "libres de se mettre en veille"}</text>']
    legend_x = width - 230
    for i, (route, c) in enumerate(colors.items()):
        out.append(f'<rect x="{legend_x + i * 110}" y="56" width="12" height="12" fill="{c}"/>'
                   f'<text x="{legend_x + 18 + i * 110}" y="67">{route}</text>')

    def panel(y0: float, title: str, value, fmt) -> None:
        vals = [value(n, r) for n in order for r in ("/health", "/")]
        vmax = max([v for v in vals if v] or [1])
        scale = (width - label_w - 110) / vmax
        out.append(f'<text x="20" y="{y0 + 20}" font-size="15" font-weight="bold">{_esc(title)}</text>')
        y = y0 + 36
        for n in order:
            out.append(f'<text x="{label_w - 10}" y="{y + bar_h + 4}" text-anchor="end">{_esc(LABELS[n])}</text>')
            for r in ("/health", "/"):
                v = value(n, r)
                w = (v or 0) * scale
                out.append(f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_h - 2}" fill="{colors[r]}"/>')
                out.append(f'<text x="{label_w + w + 6:.1f}" y="{y + bar_h - 4}" fill="#222">'
                           f'{fmt(n)(v) if v is not None else "n/d"}</text>')
                y += bar_h
            y += gap

    rps = lambda n, r: results["servers"][n]["routes"].get(r, {}).get("rps")  # noqa: E731
    # CPU per request at the imposed rate where measured (make bench), saturated otherwise.
    fixed = {n: s["fixed_rate"] for n, s in results["servers"].items() if s.get("fixed_rate")}
    rate = next((r["rate"] for f in fixed.values() for r in f.values()), None)
    cpu = lambda n, r: (fixed.get(n) or results["servers"][n]["routes"]).get(r, {}).get("server_cpu_us_per_req")  # noqa: E731
    cpu_fmt = lambda n: (lambda v: f"{v:.1f}" + ("" if n in fixed or not fixed else " (saturé)"))  # noqa: E731
    panel(70, "Requêtes par seconde, saturé (plus c'est long, mieux c'est)", rps,
          lambda n: lambda v: f"{v:,.0f}".replace(",", " "))
    panel(70 + panel_h, f"CPU serveur par requête, en µs, {f'à {rate} req/s imposées' if rate else 'saturé'} "
          "(plus c'est court, mieux c'est)", cpu, cpu_fmt)
    out.append(f'<text x="20" y="{height - 14}" fill="#555" font-size="11">Générateur de charge wrk épinglé sur l\'autre '
               'cœur ; « via le front » = NGINX du front + API sur le même cœur. Source : make bench.</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- Report -------------------------------------------------------------------------------


def verdict(key: str, value: float | None) -> str:
    if value is None:
        return "N/A"
    op, target, _ = TARGETS[key]
    return "PASS" if (value >= target if op == ">=" else value <= target) else "MISS"


def ratios(res: dict) -> dict:
    s = res["servers"]

    def route(name: str, r: str, k: str, phase: str = "routes"):
        return s.get(name, {}).get(phase, {}).get(r, {}).get(k)

    def div(a, b):
        return a / b if a is not None and b else None

    # With 64 connections kept busy, Little's law sets the mean latency at 64 ÷ req/s: p99 over
    # that mean says how unevenly a server serves its connections, whatever its throughput.
    def tail_factor(name: str, r: str):
        rps, p99 = route(name, r, "rps"), route(name, r, "p99_ms")
        return p99 / (CONNECTIONS / rps * 1e3) if rps and p99 else None

    def own(name: str) -> dict:
        """The targets one server's own runs give (FastAPI ratios, latency, memory, start)."""
        return {
            "rps_vs_fastapi_health": div(route(name, "/health", "rps"), route("fastapi", "/health", "rps")),
            "rps_vs_fastapi_root": div(route(name, "/", "rps"), route("fastapi", "/", "rps")),
            "p99_ms_health": route(name, "/health", "p99_ms"),
            "p99_ms_root": route(name, "/", "p99_ms"),
            "rss_mb": s.get(name, {}).get("rss_after_load_mb"),
            "start_ms": s.get(name, {}).get("start_ms_median"),
        }

    def cpu_ratio(name: str, r: str, phase: str):
        return div(route(name, r, "server_cpu_us_per_req", phase), route("nginx", r, "server_cpu_us_per_req", phase))

    # CPU per request is judged at the imposed rate when it was measured (make bench), at
    # saturation otherwise (the smoke); both are reported.
    cpu_phase = "fixed_rate" if all(route(n, r, "rate", "fixed_rate") for n in ("api", "nginx")
                                    for r in ("/health", "/")) else "routes"
    out = {
        **allocator_vs_best(s, cpu_phase),
        "health_rps_vs_nginx": div(route("api", "/health", "rps"), route("nginx", "/health", "rps")),
        "cpu_per_req_vs_nginx_health": cpu_ratio("api", "/health", cpu_phase),
        "cpu_per_req_vs_nginx_root": cpu_ratio("api", "/", cpu_phase),
        **own("api"),
        "api_image_mb": res["sizes"].get("image datapress-api", {}).get("mb"),
        "proxy_hop_keep": div(route("proxy", "/health", "rps"), route("api", "/health", "rps")),
    }
    # The same measure for NGINX static, the practical limit of the box, in the same run:
    # where the API's target lies beyond it, no server on this box would meet it either.
    limits = {
        **own("nginx"),
        # Front and API share the server core: the hop can keep at most the direct CPU cost
        # over the pair's, whatever either does.
        "proxy_hop_keep": div(route("api", "/health", "server_cpu_us_per_req"),
                              route("proxy", "/health", "server_cpu_us_per_req")),
    }
    info = {
        "bare_health_rps_vs_nginx": div(route("bare", "/health", "rps"), route("nginx", "/health", "rps")),
        "bare_rps_vs_fastapi_health": div(route("bare", "/health", "rps"), route("fastapi", "/health", "rps")),
        "api_vs_bare_health_rps": div(route("api", "/health", "rps"), route("bare", "/health", "rps")),
        "api_vs_bare_root_rps": div(route("api", "/", "rps"), route("bare", "/", "rps")),
        "root_rps_vs_nginx": div(route("api", "/", "rps"), route("nginx", "/", "rps")),
        "proxy_hop_keep_root": div(route("proxy", "/", "rps"), route("api", "/", "rps")),
        "proxy_front_cpu_us_health": (route("proxy", "/health", "cpu_us_per_req") or {}).get("front"),
        "proxy_api_cpu_us_health": (route("proxy", "/health", "cpu_us_per_req") or {}).get("api"),
        # Server CPU per request, FastAPI's over the API's (saturated runs): the ratio of what
        # one core serves, whatever the load generator could send.
        "fastapi_cpu_per_req_vs_api_health": div(route("fastapi", "/health", "server_cpu_us_per_req"),
                                                 route("api", "/health", "server_cpu_us_per_req")),
        "fastapi_cpu_per_req_vs_api_root": div(route("fastapi", "/", "server_cpu_us_per_req"),
                                               route("api", "/", "server_cpu_us_per_req")),
        "cpu_phase": cpu_phase,
        "fixed_rate_rps": route("api", "/health", "rate", "fixed_rate"),
        "cpu_per_req_vs_nginx_health_saturated": cpu_ratio("api", "/health", "routes"),
        "cpu_per_req_vs_nginx_root_saturated": cpu_ratio("api", "/", "routes"),
        "cpu_per_req_vs_nginx_health_idle_allowed": cpu_ratio("api", "/health", "fixed_rate_idle"),
        "cpu_per_req_vs_nginx_root_idle_allowed": cpu_ratio("api", "/", "fixed_rate_idle"),
        "bare_cpu_per_req_vs_nginx_health": cpu_ratio("bare", "/health", cpu_phase),
        "bare_cpu_per_req_vs_nginx_root": cpu_ratio("bare", "/", cpu_phase),
        "api_cpu_per_req_vs_bare_health": div(route("api", "/health", "server_cpu_us_per_req", cpu_phase),
                                              route("bare", "/health", "server_cpu_us_per_req", cpu_phase)),
        "api_cpu_per_req_vs_bare_root": div(route("api", "/", "server_cpu_us_per_req", cpu_phase),
                                            route("bare", "/", "server_cpu_us_per_req", cpu_phase)),
        "bare_p99_ms_health": route("bare", "/health", "p99_ms"),
        **{f"p99_tail_factor_{n}_{r.strip('/') or 'root'}": tail_factor(n, r)
           for n in ("api", "bare", "nginx") for r in ("/health", "/")},
        "bare_rss_mb": s.get("bare", {}).get("rss_after_load_mb"),
        "bare_start_ms": s.get("bare", {}).get("start_ms_median"),
    }
    return {"targets": {k: {"value": v, "op": TARGETS[k][0], "target": TARGETS[k][1], "label": TARGETS[k][2],
                            "verdict": verdict(k, v), "limit": limits.get(k)} for k, v in out.items()},
            "informative": info}


def allocator_builds(servers: dict) -> list[str]:
    return [n for n in ("api", *API_VARIANTS) if n in servers]


def allocator_vs_best(servers: dict, cpu_phase: str) -> dict:
    """The shipped build against the best of the compared API builds, on its worst route:
    req/s (saturated) ÷ the highest, CPU per request ÷ the lowest (imposed rate when measured)."""
    builds = allocator_builds(servers)
    if "api" not in builds or len(builds) < 2:
        return {"alloc_rps_vs_best": None, "alloc_cpu_vs_best": None}

    def value(n: str, r: str, k: str, phase: str):
        return servers[n].get(phase, {}).get(r, {}).get(k)

    rps, cpu = [], []
    for r in ("/health", "/"):
        got = [value(n, r, "rps", "routes") for n in builds]
        if all(got):
            rps.append(value("api", r, "rps", "routes") / max(got))
        got = [value(n, r, "server_cpu_us_per_req", cpu_phase) for n in builds]
        if all(got):
            cpu.append(value("api", r, "server_cpu_us_per_req", cpu_phase) / min(got))
    return {"alloc_rps_vs_best": min(rps) if rps else None, "alloc_cpu_vs_best": max(cpu) if cpu else None}


def fmt(v, spec: str = ".2f") -> str:
    return "—" if v is None else v if isinstance(v, str) else format(v, spec)


def print_report(res: dict) -> None:
    m = res["meta"]
    print(f"\nDataPress bench ({m['mode']}) — {m['date']} — {m['machine']}")
    print(f"server on core {SERVER_CORE}, load generator (wrk -t1 -c{CONNECTIONS}) on core {LOAD_CORE}, "
          f"{m['runs']}×{m['seconds']}s per route, median; load average before {m['loadavg_before']}, "
          f"after {m['loadavg_after']}; server logs under {m['log_dir']}; CPU idle states {m['idle_states']}")
    hdr = f"{'server':<34}{'route':<13}{'req/s':>10}{'p50 ms':>8}{'p99 ms':>8}{'err':>5}{'CPU µs/req':>11}" \
          f"{'gen core':>9}{'foreign':>8}{'steal':>7}{'RSS MB':>8}{'start ms':>9}"
    print("\n" + hdr + "\n" + "-" * len(hdr))
    for name, s in res["servers"].items():
        for r, v in s["routes"].items():
            print(f"{LABELS[name]:<34}{v['path']:<13}{v['rps']:>10.0f}{v['p50_ms']:>8.3f}{v['p99_ms']:>8.3f}"
                  f"{v['errors']:>5}{fmt(v['server_cpu_us_per_req'], '.1f'):>11}{v['load_core_busy_pct']:>8.0f}%"
                  f"{v['foreign_on_server_core_pct']:>7.1f}%{v['steal_pct']:>6.1f}%"
                  f"{fmt(s.get('rss_after_load_mb'), '.1f'):>8}"
                  f"{fmt(s.get('start_ms_median'), '.1f'):>9}")
    print("\n'gen core' = busy share of the load generator's core (≈100 % means wrk was the limit); "
          "'foreign' = CPU of other processes on the server's core during the run; 'steal' = time the "
          "hypervisor took from either core. Servers are loaded in turns (run 1 of each, then run 2...).")
    for phase in FIXED_RATE_PHASES:
        fixed = [(n, s[phase]) for n, s in res["servers"].items() if s.get(phase)]
        if not fixed:
            continue
        rate = fixed[0][1][next(iter(fixed[0][1]))]["rate"]
        idle = m["idle_states"] if phase == "fixed_rate" else "allowed (comparison)"
        print(f"\nat an imposed rate (oha -q {rate} -c{CONNECTIONS}, open loop, {FIXED_RATE_SECONDS}s runs in turns, "
              f"median), CPU idle states {idle}:")
        hdr = f"{'server':<34}{'route':<13}{'req/s':>10}{'held':>6}{'p50 ms':>8}{'p99 ms':>8}{'err':>5}{'CPU µs/req':>11}" \
              f"{'÷ NGINX':>9}{'spread':>8}"
        print(hdr + "\n" + "-" * len(hdr))
        nginx = dict(fixed).get("nginx", {})
        for name, routes in fixed:
            for r, v in routes.items():
                cpu = [x["server_cpu_us_per_req"] for x in v["runs"]]
                spread = (max(cpu) - min(cpu)) / statistics.median(cpu) * 100 if cpu else None
                base = nginx.get(r, {}).get("server_cpu_us_per_req")
                print(f"{LABELS[name]:<34}{v['path']:<13}{v['rps']:>10.0f}{'yes' if v['rate_held'] else 'NO':>6}"
                      f"{v['p50_ms']:>8.3f}{v['p99_ms']:>8.3f}{v['errors']:>5}{fmt(v['server_cpu_us_per_req'], '.1f'):>11}"
                      f"{fmt(v['server_cpu_us_per_req'] / base if base else None):>9}{fmt(spread, '.0f'):>7}%")
    if any(s.get("fixed_rate") for s in res["servers"].values()):
        print("'spread' = (max − min) ÷ median of the runs' CPU per request; 'held' = the imposed rate was reached.")
    cpu_phase = res["ratios"]["informative"]["cpu_phase"]
    builds = allocator_builds(res["servers"])
    if len(builds) > 1:
        print(f"\nallocator comparison (same code, same run; CPU per request from the "
              f"{'imposed-rate' if cpu_phase == 'fixed_rate' else 'saturated'} runs):")
        hdr = f"{'build':<34}{'route':<9}{'req/s':>10}{'÷ best':>8}{'CPU µs/req':>12}{'÷ best':>8}"
        print(hdr + "\n" + "-" * len(hdr))
        for r in ("/health", "/"):
            rps = {n: res["servers"][n]["routes"].get(r, {}).get("rps") for n in builds}
            cpu = {n: (res["servers"][n].get(cpu_phase) or {}).get(r, {}).get("server_cpu_us_per_req") for n in builds}
            best_rps = max((v for v in rps.values() if v), default=None)
            best_cpu = min((v for v in cpu.values() if v), default=None)
            for n in builds:
                print(f"{LABELS[n]:<34}{r:<9}{fmt(rps[n], '.0f'):>10}"
                      f"{fmt(rps[n] / best_rps if rps[n] and best_rps else None):>8}"
                      f"{fmt(cpu[n], '.1f'):>12}{fmt(cpu[n] / best_cpu if cpu[n] and best_cpu else None):>8}")
        print("The shipped build must stay within 5 % of the best on both (targets below).")
    print(f"\nCPU per request targets use the {'imposed-rate' if cpu_phase == 'fixed_rate' else 'saturated'} runs.")
    print(f"\n{'target':<48}{'measured':>10}  {'goal':>8}  {'verdict':<8}{'limit':>7}")
    for k, t in res["ratios"]["targets"].items():
        print(f"{t['label']:<48}{fmt(t['value']):>10}  {t['op']} {t['target']:<5}  {t['verdict']:<8}"
              f"{fmt(t['limit']):>7}")
    print("'limit' = the same measure for NGINX static (the practical limit of the box) in this run; "
          "for the proxy hop, its one-core ceiling (direct CPU per request ÷ the pair's).")
    print("\ninformative (issue's bare-Salvo reference in brackets):")
    for k, v in res["ratios"]["informative"].items():
        print(f"  {k:<44}{fmt(v):>10}" + (f"  [{ISSUE_REFERENCE[k]}]" if k in ISSUE_REFERENCE else ""))
    print("\naccess log on / (every answered request must have its line):")
    for name, s in res["servers"].items():
        if "access_log" in s:
            c = s["access_log"]
            print(f"  {LABELS[name]:<36}{c['lines']} lines for {c['answered']} answers counted by wrk: "
                  f"{'complete' if c['lines'] >= c['answered'] else 'LINES MISSING'}")
    print("\nsizes:")
    for k, v in res["sizes"].items():
        print(f"  {k:<36}{fmt(v['mb'], '.1f') + ' MB' if v['mb'] is not None else v['note']}")
    if res.get("cross_check"):
        print("\noha cross-check (/health, one run each):")
        for k, v in res["cross_check"].items():
            print(f"  {k:<36}{v}")


# --- Main ---------------------------------------------------------------------------------


def machine() -> str:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem = int(f.readline().split()[1]) / 1024 / 1024
    return f"{model}, {os.cpu_count()} cœurs, {mem:.0f} Gio, Linux {platform.release()}"


def git_revision() -> str:
    p = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    return p.stdout.strip() or "unknown"


def binary_revision(path: str) -> str:
    """The revision an API binary reports: `datapress-api VERSION (REVISION)`."""
    try:
        out = subprocess.run([path, "version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"none ({e})"
    return out.rsplit("(", 1)[-1].rstrip(")") if out.endswith(")") else f"none ({out!r})"


def version_of(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "?"


class Target:
    """A server under test (or the front + API pair), started once and loaded in turns."""

    def __init__(self, name: str, servers: dict[str, Server], port: int, paths: dict[str, str]):
        self.name, self.servers, self.port, self.paths = name, servers, port, paths
        self.runs: dict[str, list[dict]] = {"/health": [], "/": []}
        # Imposed-rate runs, per phase (see FIXED_RATE_PHASES), then per route.
        self.fixed: dict[str, dict[str, list[dict]]] = {p: {"/health": [], "/": []} for p in FIXED_RATE_PHASES}
        # Responses wrk counted on `/` (warm-up included): each must have its access line.
        self.root_answered = 1  # check_routes' own request

    @property
    def main(self) -> Server:
        return self.servers.get("api") or self.servers[self.name]

    def url(self, route: str) -> str:
        return f"http://127.0.0.1:{self.port}{self.paths[route]}"

    def stop(self) -> None:
        for s in self.servers.values():
            s.stop()


def start_target(suite: Suite, a, name: str) -> Target:
    """Starts one server (or the front + API pair) and checks its answers."""
    if name == "proxy":
        servers = {"api": suite.api(a.front_api_port, name="proxy-api"), "front": suite.front()}
        port, paths = a.front_port, {"/health": "/api/health", "/": "/api/"}
    else:
        port = free_port()
        servers = {name: suite.server(name, port)}
        paths = {"/health": "/health", "/": "/"}
    target = Target(name, servers, port, paths)
    try:
        for s in servers.values():
            s.start()
        problems = check_routes(port, paths)
        if problems:
            raise RuntimeError(f"{name}: wrong answers: {'; '.join(problems)}")
    except BaseException:
        target.stop()
        raise
    return target


def scan_log(path: Path, counted=None) -> tuple[int, int, list[str]]:
    """One streaming pass over a log file (hundreds of MB after a full run): its line count,
    how many lines `counted` accepts, and its last 40 lines."""
    total, matched, tail = 0, 0, collections.deque(maxlen=40)
    if path.exists():
        with open(path, errors="replace") as f:
            for line in f:
                total += 1
                matched += bool(counted and counted(line))
                tail.append(line.rstrip("\n"))
    return total, matched, list(tail)


def api_access_line(line: str) -> bool:
    return '"message":"request"' in line and '"path":"/"' in line


def nginx_access_line(line: str) -> bool:
    return '"path":"/"' in line


def finish_target(a, target: Target, seconds: float) -> dict:
    """Medians, memory, threads and logs of a loaded target; stops it."""
    name, servers = target.name, target.servers
    out: dict = {"routes": {r: {**median_of(runs), "runs": runs} for r, runs in target.runs.items() if runs}}
    for phase, routes in target.fixed.items():
        if any(routes.values()):
            out[phase] = {r: {**median_of(runs), "rate": runs[0]["rate"],
                              "rate_held": all(x["rate_held"] for x in runs), "runs": runs}
                          for r, runs in routes.items() if runs}
    try:
        main = target.main
        out["rss_after_load_mb"] = rss_kb(main.pid) / 1024
        out["rss_after_load_mb_by_process"] = {n: rss_kb(s.pid) / 1024 for n, s in servers.items()}
        out["threads"] = threads(main.pid)
        out["processes"] = len(proc_tree(main.pid))
        if a.oha and name in ("nginx", "api"):
            out["oha"] = run_oha(a.oha, target.url("/health"), seconds)
    finally:
        target.stop()
    for s in servers.values():
        counted = api_access_line if name == "api" or name in API_VARIANTS else None
        total, matched, tail = scan_log(s.log_path, counted)
        if name == "nginx":  # static NGINX logs `/` to its own file, not to stdout
            _, matched, _ = scan_log(s.log_path.parent / "access.log", nginx_access_line)
            counted = nginx_access_line
        if counted:
            out["access_log"] = {"lines": matched, "answered": target.root_answered}
        (Path(a.out) / "logs").mkdir(parents=True, exist_ok=True)
        (Path(a.out) / "logs" / f"{name}-{s.name}.log").write_text("\n".join(tail) + "\n")
        out.setdefault("log_lines", {})[s.name] = total
        shutil.rmtree(s.log_path.parent, ignore_errors=True)
    return out


def bench_all(a, suite: Suite, runs: int, seconds: float, warmup: float, fixed_runs: int,
              qos: "IdleStates", failed: list[str]) -> dict:
    """Starts every server, then loads them in turns (run 1 of each, run 2 of each...), so
    a noisy spell on the shared host spreads over all of them instead of hitting one."""
    targets: dict[str, Target] = {}
    results: dict = {}

    def fail(name: str, e: Exception) -> None:
        failed.append(f"{name}: {e}")
        log(f"FAILED {name}: {e}")
        t = targets.pop(name, None)
        if t:
            t.stop()

    try:
        for name in suite.available():
            try:
                targets[name] = start_target(suite, a, name)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                fail(name, e)
        for i in range(-1 if warmup else 0, runs):
            log(f"{'warm-up' if i < 0 else f'run {i + 1}/{runs}'}: {', '.join(targets)} "
                f"({warmup if i < 0 else seconds}s per route)")
            for name, t in list(targets.items()):
                try:
                    for route in ("/health", "/"):
                        if i < 0:
                            answered = run_wrk(a.wrk, t.url(route), warmup)["requests"]
                        else:
                            t.runs[route].append(measure(lambda: run_wrk(a.wrk, t.url(route), seconds),
                                                         t.paths[route], t.servers))
                            answered = t.runs[route][-1]["requests"]
                        if route == "/":
                            t.root_answered += answered
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    fail(name, e)
        if a.oha and fixed_runs:
            fixed_rate_runs(a, targets, fixed_runs, failed, "fixed_rate")
            # The same load with idle states allowed: what the VM's sleep and wake-ups add.
            if qos.held:
                qos.release()
                try:
                    fixed_rate_runs(a, targets, max(3, fixed_runs // 2), failed, "fixed_rate_idle")
                finally:
                    qos.hold()
        for name in list(targets):
            results[name] = finish_target(a, targets.pop(name), seconds)
    finally:
        for t in targets.values():
            t.stop()
    return results


# Servers measured at an imposed rate: the ones fast enough to hold it.
FIXED_RATE_SERVERS = ("nginx", "api", *API_VARIANTS, "bare")
# "fixed_rate": under the bench's idle-state setting (poll only when it could be set);
# "fixed_rate_idle": the same load with idle states allowed, for comparison.
FIXED_RATE_PHASES = ("fixed_rate", "fixed_rate_idle")
FIXED_RATE_MAX, FIXED_RATE_SECONDS, FIXED_RATE_WARMUP = 20_000, 3, 2


def fixed_rate(targets: dict[str, Target]) -> int | None:
    """The imposed rate: 20 000 req/s, or 60 % of the slowest saturated median, whichever is
    lower, so every server keeps up and all answer the same load."""
    rps = [statistics.median(r["rps"] for r in t.runs[route]) for n, t in targets.items()
           if n in FIXED_RATE_SERVERS for route in ("/health", "/") if t.runs[route]]
    if not rps:
        return None
    return max(1000, min(FIXED_RATE_MAX, int(0.6 * min(rps)) // 1000 * 1000))


def fixed_rate_runs(a, targets: dict[str, Target], runs: int, failed: list[str], phase: str) -> None:
    """CPU per request at the same open-loop rate for all (oha -q), in turns like the rest.
    Saturated closed-loop runs make CPU per request depend on whether the server keeps the
    generator busy (docs/performance.md); at an equal imposed rate every server gets the
    same load, and single runs still vary by ±20-30 % on a shared VM (medians in turns)."""
    rate = fixed_rate(targets)
    if rate is None:
        return
    chosen = {n: t for n, t in targets.items() if n in FIXED_RATE_SERVERS}
    for i in range(-1, runs):
        log(f"{phase} {rate} req/s, {'warm-up' if i < 0 else f'run {i + 1}/{runs}'}: {', '.join(chosen)}")
        for name, t in list(chosen.items()):
            try:
                for route in ("/health", "/"):
                    secs = FIXED_RATE_WARMUP if i < 0 else FIXED_RATE_SECONDS
                    m = measure(lambda: run_oha_rate(a.oha, t.url(route), secs, rate), t.paths[route], t.servers)
                    if i >= 0:
                        t.fixed[phase][route].append({**m, "rate": rate, "rate_held": m["rps"] >= 0.97 * rate})
                    if route == "/":
                        t.root_answered += m["requests"]
            except (RuntimeError, subprocess.TimeoutExpired, ValueError, KeyError) as e:
                # The saturated results of that server still stand.
                failed.append(f"{name} {phase}: {e}")
                log(f"FAILED {name} {phase}: {e}")
                chosen.pop(name, None)


def run_oha(oha: str, url: str, seconds: float) -> dict:
    """The closed-loop cross-check: a second generator's view of /health."""
    try:
        d, _ = oha_json(oha, url, seconds)
    except RuntimeError as e:
        return {"error": str(e)}
    return {"rps": d["summary"]["requestsPerSec"], "p50_ms": d["latencyPercentiles"]["p50"] * 1000,
            "p99_ms": d["latencyPercentiles"]["p99"] * 1000, "success_rate": d["summary"]["successRate"]}


def start_times(suite: Suite, name: str, n: int) -> list[float]:
    times = []
    for _ in range(n):
        s = suite.server(name, free_port())
        try:
            times.append(s.start() * 1000)
        finally:
            s.stop()
            shutil.rmtree(s.log_path.parent, ignore_errors=True)
    return times


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mode", choices=("full", "smoke"), default="full")
    ap.add_argument("--out", required=True)
    ap.add_argument("--wrk", required=True)
    ap.add_argument("--oha")
    ap.add_argument("--nginx", required=True)
    ap.add_argument("--api-bin", required=True, help="the shipped build (scripts/build-api.sh shipped)")
    ap.add_argument("--api-variant", action="append", default=[], metavar="NAME=PATH",
                    help=f"another API build measured beside it, NAME in {', '.join(API_VARIANTS)}")
    ap.add_argument("--bare-bin")
    ap.add_argument("--python", help="the FastAPI venv's python")
    ap.add_argument("--front-conf", help="the front's nginx.conf rendered for 127.0.0.1")
    ap.add_argument("--front-port", type=int)
    ap.add_argument("--front-api-port", type=int)
    ap.add_argument("--idle", choices=("poll", "allowed"), default="poll",
                    help="CPU idle states during the bench: poll only (default, when permitted) or allowed")
    ap.add_argument("--skipped", action="append", default=[], help="NAME=reason, reported as not measured")
    ap.add_argument("--image", action="append", default=[], help="image reference to size")
    a = ap.parse_args()
    a.api_variant = dict(v.split("=", 1) for v in a.api_variant)
    unknown = set(a.api_variant) - set(API_VARIANTS)
    if unknown:
        ap.error(f"unknown API variant(s): {', '.join(sorted(unknown))}")

    # Measure what is recorded: every API binary must report the revision written in the
    # results, never a release binary left over from another commit.
    revision = git_revision()
    for path in [a.api_bin, *a.api_variant.values()]:
        reported = binary_revision(path)
        if reported != revision:
            print(f"PROBLEM: {path} reports revision {reported}, the bench records {revision}", file=sys.stderr)
            return 1

    full = a.mode == "full"
    runs, seconds, warmup, starts, fixed_runs = MODES[a.mode]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="datapress-bench-", dir=log_dir()))
    work.chmod(0o755)
    suite = Suite(a, work)
    res: dict = {"meta": {
        "mode": a.mode, "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(), "runs": runs, "seconds": seconds, "warmup_seconds": warmup, "connections": CONNECTIONS,
        "server_core": SERVER_CORE, "load_core": LOAD_CORE, "loadavg_before": loadavg(),
        "log_dir": str(work),
        "revision": revision,
        # Uncommitted changes are measured too: say so.
        "worktree_dirty": bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                                              capture_output=True, text=True).stdout.strip()),
        "versions": {"wrk": version_of([a.wrk, "-v"]), "nginx": version_of([a.nginx, "-v"]),
                     "rustc": version_of(["rustc", "--version"]),
                     "python": version_of([a.python, "--version"]) if a.python else None,
                     "oha": version_of([a.oha, "--version"]) if a.oha else None},
        "skipped": dict(s.split("=", 1) for s in a.skipped),
        "api_bin": a.api_bin,
        "api_variants": a.api_variant,
        "api_bin_built": dt.datetime.fromtimestamp(os.path.getmtime(a.api_bin), dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }, "servers": {}, "sizes": {}}

    failed: list[str] = []
    qos = IdleStates(a.idle == "poll")
    res["meta"]["idle_states"] = qos.note
    try:
        res["servers"] = bench_all(a, suite, runs, seconds, warmup, fixed_runs, qos, failed)
        for name in [n for n in res["servers"] if n != "proxy"]:
            log(f"{name}: {starts} starts to the first /health")
            try:
                st = start_times(suite, name, starts)
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                failed.append(f"{name} start: {e}")
                continue
            res["servers"][name]["start_ms"] = st
            res["servers"][name]["start_ms_median"] = statistics.median(st)
    finally:
        qos.release()
        shutil.rmtree(work, ignore_errors=True)

    sizes = {"binary datapress-api": a.api_bin, "binary salvo-bare": a.bare_bin, "binary nginx": a.nginx}
    for k, path in sizes.items():
        res["sizes"][k] = {"mb": os.path.getsize(path) / 1e6, "note": ""} if path and os.path.exists(path) \
            else {"mb": None, "note": "non construit"}
    if a.python:
        venv = str(Path(a.python).parent.parent)
        res["sizes"]["venv FastAPI (installé)"] = {"mb": dir_size_mb(venv), "note": ""}
    for ref in a.image:
        mb, note = image_size_mb(ref)
        res["sizes"][f"image {ref.split(':')[0]}"] = {"mb": mb, "note": note, "ref": ref}
    if full:
        res["cross_check"] = {f"oha {n}": res["servers"][n].get("oha") for n in ("nginx", "api") if n in res["servers"]}
        a_oha, n_oha = (res["cross_check"].get(f"oha {n}") or {} for n in ("api", "nginx"))
        if a_oha.get("rps") and n_oha.get("rps"):
            res["cross_check"]["oha api/nginx /health"] = round(a_oha["rps"] / n_oha["rps"], 3)
    res["meta"]["loadavg_after"] = loadavg()
    res["ratios"] = ratios(res)
    res["failed"] = failed

    (out / "results.json").write_text(json.dumps(res, indent=2, ensure_ascii=False) + "\n")
    (out / "bench.svg").write_text(svg_chart(res, res["meta"]))
    print_report(res)
    print(f"\nJSON: {out / 'results.json'}\nchart: {out / 'bench.svg'}")

    found = problems(res, failed)
    for problem in found:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if found else 0


def problems(res: dict, failed: list[str]) -> list[str]:
    """What makes the run fail, in both modes: a server that failed, an error answer or a
    socket error in any measured run (its figures would not be those of correct answers), a
    run with no answer, and an access line lost under load."""
    phases = ("routes", *FIXED_RATE_PHASES)
    errors = [f"{n} {phase} {r}: {v['errors']} errors {v['error_detail']}"
              for n, s in res["servers"].items() for phase in phases for r, v in (s.get(phase) or {}).items()
              if v["errors"] or not v["requests"]]
    lost = [f"{n}: {c['lines']} access lines for {c['answered']} answers on /" for n, s in res["servers"].items()
            if (c := s.get("access_log")) and c["lines"] < c["answered"]]
    return failed + errors + lost


if __name__ == "__main__":
    sys.exit(main())
