"""Tests of the load harness itself: a server that misbehaves on purpose must be counted.

Run by the compose suite before it relies on the harness (python3 -m pytest tests/e2e/test_loadgen.py).
"""
import json
import re
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

LOADGEN = Path(__file__).with_name("loadgen.py")
PAGE = b'<html><head><meta name="datapress-revision" content="r1"></head><body></body></html>'
BODIES = {
    "/": PAGE,
    "/api/": b'{"service":"api","version":"1.0.0","revision":"r1"}',
    "/api/health": b'{"status":"ok"}',
    "/api/info": b'{"env":"test"}',
}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mode = "good"

    def log_message(self, *a):
        pass

    def do_GET(self):
        body = BODIES[self.path]
        mode = type(self).mode
        if mode == "drop-idle":
            # Answers, then closes the kept-alive connection without saying so: the client's
            # next request on it finds it closed before any byte (retried, not failed).
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True
            return
        if mode == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            self.close_connection = True
            return
        status = 500 if mode == "500" else 200
        if mode == "notjson" and self.path != "/":
            body = b"<html>oops</html>"
        if mode == "wrongjson" and self.path == "/api/health":
            body = b'{"status":"degraded"}'
        self.send_response(status)
        self.send_header("Content-Length", str(len(body) + (10 if mode == "cut" else 0)))
        self.end_headers()
        self.wfile.write(body)
        if mode == "cut":
            self.close_connection = True


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield srv
    srv.shutdown()


def run(server, tmp_path, mode, seconds=1.5):
    Handler.mode = mode
    out = tmp_path / "r.json"
    rc = subprocess.run([sys.executable, LOADGEN, "run", "--base", f"http://127.0.0.1:{server.server_port}",
                         "--out", out, "--rate", "200", "--max-seconds", str(seconds), "--timeout", "2"]).returncode
    assert rc == 0
    r = json.loads(out.read_text())
    assert r["sent"] == r["succeeded"] + r["failed"]
    assert r["sent"] >= 100
    return r


def test_good_server(server, tmp_path):
    r = run(server, tmp_path, "good")
    assert r["failed"] == 0 and r["retried"] == 0
    assert set(r["by_route"]) == {"/", "/api/", "/api/health", "/api/info"}
    assert set(r["by_client"]) == {"keepalive", "fresh"}
    assert set(r["revisions"]) == {"page:r1", "api:1.0.0+r1"}
    # The series holds whole seconds only; the last partial second counts in the totals.
    assert len(r["series"]) == int(r["duration_s"])
    assert 0 < sum(s["ok"] for s in r["series"]) <= r["succeeded"]


@pytest.mark.parametrize("mode", ["cut", "500", "notjson", "wrongjson", "reset"])
def test_bad_answers_are_failures(server, tmp_path, mode):
    r = run(server, tmp_path, mode)
    assert r["failed"] > 0, r["errors"]
    report = subprocess.run([sys.executable, LOADGEN, "report", tmp_path / "r.json", "--title", mode],
                            capture_output=True, text=True)
    assert report.returncode == 1 and report.stdout.startswith("FAIL"), report.stdout


def test_closed_idle_connection_is_retried_once(server, tmp_path):
    r = run(server, tmp_path, "drop-idle")
    assert r["failed"] == 0, r["first_errors"]
    assert r["retried"] > 0 and r["by_client"]["keepalive"]["retried"] == r["retried"]


def test_failure_says_its_step_and_local_port(tmp_path):
    # A listener that accepts and never answers: the request times out waiting for the answer,
    # on a connection whose local port is named (it finds the conntrack entries on a node).
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(512)
    out = tmp_path / "r.json"
    subprocess.run([sys.executable, LOADGEN, "run", "--base", f"http://127.0.0.1:{silent.getsockname()[1]}",
                    "--out", out, "--rate", "20", "--max-seconds", "1", "--timeout", "0.5"], check=True)
    silent.close()
    r = json.loads(out.read_text())
    assert r["failed"] > 0 and r["sent"] == r["failed"]
    assert all(re.search(r"\(waiting for the answer, local port \d+\)$", f["error"]) for f in r["failures"]), r["failures"][:3]
    # Nothing listens: the connection is refused at connect, before any local port matters.
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    subprocess.run([sys.executable, LOADGEN, "run", "--base", f"http://127.0.0.1:{port}",
                    "--out", out, "--rate", "20", "--max-seconds", "1", "--timeout", "0.5"], check=True)
    r = json.loads(out.read_text())
    assert r["failed"] > 0 and all(f["error"].endswith("(connect)") for f in r["failures"]), r["failures"][:3]


def test_refuses_non_loopback(tmp_path):
    p = subprocess.run([sys.executable, LOADGEN, "run", "--base", "http://192.0.2.1:80", "--out", tmp_path / "x"],
                       capture_output=True, text=True)
    assert p.returncode != 0 and "loopback" in p.stderr


def test_window_between_marks():
    sys.path.insert(0, str(LOADGEN.parent))
    import loadgen
    sec = lambda t, ok, failed, p99: {"t": t, "ok": ok, "failed": failed, "p99_ms": p99}
    r = {"marks": [{"t": 2.4, "label": "stop"}, {"t": 5.2, "label": "back"}],
         "series": [sec(0, 10, 0, 5), sec(1, 10, 0, 5), sec(2, 6, 4, 900), sec(3, 10, 0, 40),
                    sec(4, 10, 1, 30), sec(5, 10, 3, 20), sec(6, 10, 9, 5000)]}
    # Seconds 2 (holds the start mark) to 5 (holds the end mark); not second 6.
    assert loadgen.window(r, "stop", "back") == {"seconds": 2.8, "sent": 44, "failed": 8, "worst_p99_ms": 900}
    assert loadgen.window(r, "stop", "missing") is None
