#!/usr/bin/env python3
"""Steady HTTP load for the zero-downtime checks.

Sends GET requests at a fixed rate (one new connection each, so kube-proxy balances
every request) until a stop file appears or the time bound is reached, then prints
one JSON line: sent, expected (rate x duration), succeeded, failed, first errors.
Only loopback targets are accepted.
"""
import argparse
import json
import os
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--rate", type=float, default=50.0)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--max-seconds", type=float, default=300.0)
    ap.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args()

    host = urllib.parse.urlparse(args.url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit(f"refusing non-loopback target {host!r}")

    lock = threading.Lock()
    stats = {"succeeded": 0, "failed": 0, "errors": []}

    def one() -> None:
        ok, err = False, None
        try:
            with urllib.request.urlopen(args.url, timeout=args.timeout) as r:
                body = r.read()
                ok = r.status == 200 and json.loads(body).get("service") == "api"
                if not ok:
                    err = f"status {r.status} body {body[:80]!r}"
        except (urllib.error.URLError, OSError, ValueError) as e:
            err = repr(e)
        with lock:
            stats["succeeded" if ok else "failed"] += 1
            if err and len(stats["errors"]) < 5:
                stats["errors"].append(f"{time.strftime('%H:%M:%S')} {err}")

    interval = 1.0 / args.rate
    start = time.monotonic()
    sent = 0
    with ThreadPoolExecutor(max_workers=64) as pool:
        while True:
            now = time.monotonic()
            if os.path.exists(args.stop_file) or now - start >= args.max_seconds:
                break
            due = start + sent * interval
            if now < due:
                time.sleep(min(due - now, 0.05))
                continue
            pool.submit(one)
            sent += 1
        duration = time.monotonic() - start
    print(json.dumps({
        "sent": sent,
        "expected": int(args.rate * duration),
        "duration_s": round(duration, 2),
        "succeeded": stats["succeeded"],
        "failed": stats["failed"],
        "errors": stats["errors"],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
