#!/usr/bin/env python3
"""Skipped tests (pytest, node:test) against tests/allowed-skips.txt, the one list of test
skips accepted under CI=true. Prints every skip; under CI=true any skip the list does not
name is a failure. Each skip is also recorded in the runner's status file (DP_SUITE_STATUS)
for its summary.

Usage: scripts/skip_gate.py SKIPS.jsonl   (one {"runner", "id", "reason"} a line; exit 1
       under CI=true when a skip is not listed). tests/ci/conftest.py imports it for pytest.
"""

import fnmatch
import json
import os
import sys
from pathlib import Path
from typing import NamedTuple

ALLOWED = Path(__file__).resolve().parents[1] / "tests" / "allowed-skips.txt"


class Skip(NamedTuple):
    runner: str  # pytest, node
    id: str
    reason: str


class Entry(NamedTuple):
    where: tuple
    runner: str
    id: str
    reason: str


def entries(path=ALLOWED):
    """The list's entries. A block of entries follows a comment that says why they are acceptable."""
    found, previous = [], ""
    for n, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            fields = [f.strip() for f in line.split(" | ")]
            runner, _, test = fields[1].partition(": ") if len(fields) == 3 else ("", "", "")
            if not (runner and test and fields[0] and fields[2]):
                raise SystemExit(f"{path}:{n}: expected 'WHERE | RUNNER: TEST | REASON', got {line!r}")
            if not previous:
                raise SystemExit(f"{path}:{n}: an entry needs a comment above it saying why the skip is acceptable")
            found.append(Entry(tuple(fields[0].split()), runner, test, fields[2]))
        previous = line
    return found


def context():
    """Where the skip happens: the suite of scripts/test.sh (or "none"), and GitHub Actions."""
    return os.environ.get("DP_SUITE") or "none", os.environ.get("GITHUB_ACTIONS") == "true"


def allowed(skip, listed):
    suite, github = context()
    for e in listed:
        places = any(w in ("*", suite) or (github and w == f"{suite}@github") for w in e.where)
        if (places and e.runner == skip.runner and fnmatch.fnmatchcase(skip.id, e.id)
                and fnmatch.fnmatchcase(skip.reason, e.reason)):
            return True
    return False


def strict():
    return os.environ.get("CI") == "true"


def report(skips):
    """Prints and records each skip; returns those the list does not accept here."""
    listed = entries()
    unlisted = []
    status = os.environ.get("DP_SUITE_STATUS")
    for s in skips:
        ok = allowed(s, listed)
        unlisted += [] if ok else [s]
        verdict = "listed" if ok else "NOT listed in tests/allowed-skips.txt" + (": fails under CI=true" if strict() else "")
        print(f"skipped: {s.runner} {s.id}: {s.reason} ({verdict})", file=sys.stderr)
        if status:
            clean = [f.replace("\t", " ").replace("\n", " ") for f in (s.runner, s.id, s.reason)]
            with open(status, "a") as f:
                f.write("\t".join(["test-skip", *clean, "listed" if ok else "unlisted"]) + "\n")
    return unlisted


def main(path):
    skips = [Skip(**json.loads(line)) for line in Path(path).read_text().splitlines() if line.strip()]
    unlisted = report(skips)
    return 1 if unlisted and strict() else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
