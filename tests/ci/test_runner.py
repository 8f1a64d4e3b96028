"""scripts/test.sh on fake suites (DATAPRESS_TEST_SUITES): what counts as passed, skipped or
failed, with and without CI=true, and the summary it prints. The fakes use scripts/lib.sh's
skip helpers as the real suites do."""

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIB = ROOT / "scripts" / "lib.sh"

HEAD = f'#!/usr/bin/env bash\nset -euo pipefail\n. "{LIB}"\n'
FAKES = {
    "pass": "echo check 1 ok",
    "fail": "echo check 1 failed; exit 1",
    "skip": 'skip "no widget on this machine"',
    # A child that skips (as tests/e2e/front.e2e.sh does on an old Node.js) after a check ran.
    "child": "skip \"the child's tool is too old\"",
    "nested": 'checks_started; echo check 1 ok; "$(dirname "$0")/child.sh"',
    "hidden": 'echo check 1 ok; "$(dirname "$0")/child.sh" || echo "child ignored"',
    "late": 'checks_started; echo check 1 ok; skip "too late to skip"',
    "bare77": "exit 77",
    "cold": 'skip_past_deadline "a cold build would pass the deadline"',
    "node-skip": 'node_tests "$(dirname "$0")/widget.test.mjs"',
}
NODE_TEST = """import { it } from "node:test";
it("works", () => {});
it("needs a widget", { skip: "no widget here" }, () => {});
"""
SUITES = """# name|command[|needs=SUITE], as in scripts/test.sh
pass|{d}/pass.sh
fail|{d}/fail.sh
skip|{d}/skip.sh
nested|{d}/nested.sh
hidden|{d}/hidden.sh
late|{d}/late.sh
bare77|{d}/bare77.sh
cold|FAKE=1 {d}/cold.sh
after-cold|{d}/pass.sh|needs=cold
node-skip|{d}/node-skip.sh
"""

CHILD = "exit 77 from a nested script (only the suite's own preconditions may skip): the child's tool is too old"
COLD = "a cold build would pass the deadline"
ACCEPTED = " [accepted under CI: past DATAPRESS_DEADLINE]"
NODE_SKIP = "  test skipped ({}): node needs a widget: no widget here"

# (environment, selected suites, exit status, summary)
CASES = {
    "all, outside CI": ({}, [], 1, [
        "PASSED   pass (Ns)",
        "PASSED   node-skip (Ns)",
        NODE_SKIP.format("unlisted"),
        "SKIPPED  skip (Ns): no widget on this machine",
        f"SKIPPED  cold (Ns): {COLD}",
        f"SKIPPED  after-cold (Ns): needs suite cold, skipped: {COLD}",
        "FAILED   fail (Ns): exit 1, log: LOGS/fail.log",
        f"FAILED   nested (Ns): {CHILD}",
        "FAILED   hidden (Ns): exit 0, but a nested script skipped: the child's tool is too old",
        "FAILED   late (Ns): exit 1, log: LOGS/late.log",
        "    error: skip refused, the checks have started (checks_started): too late to skip",
        "FAILED   bare77 (Ns): exit 77 without scripts/lib.sh skip (a tool's own exit code?)",
        "suites: 2 passed, 5 failed, 3 skipped",
    ]),
    "all, CI=true with a deadline": ({"CI": "true", "DATAPRESS_DEADLINE": "1"}, [], 1, [
        "PASSED   pass (Ns)",
        f"SKIPPED  cold (Ns): {COLD}{ACCEPTED}",
        f"SKIPPED  after-cold (Ns): needs suite cold, skipped: {COLD}{ACCEPTED}",
        "FAILED   fail (Ns): exit 1, log: LOGS/fail.log",
        "FAILED   skip (Ns): skipped under CI=true: no widget on this machine",
        f"FAILED   nested (Ns): {CHILD}",
        "FAILED   hidden (Ns): exit 0, but a nested script skipped: the child's tool is too old",
        "FAILED   late (Ns): exit 1, log: LOGS/late.log",
        "    error: skip refused, the checks have started (checks_started): too late to skip",
        "FAILED   bare77 (Ns): exit 77 without scripts/lib.sh skip (a tool's own exit code?)",
        "FAILED   node-skip (Ns): exit 1, log: LOGS/node-skip.log",
        NODE_SKIP.format("unlisted"),
        "suites: 1 passed, 7 failed, 2 skipped",
    ]),
    "a skip passes outside CI": ({}, ["pass", "skip"], 0, [
        "PASSED   pass (Ns)",
        "SKIPPED  skip (Ns): no widget on this machine",
        "suites: 1 passed, 0 failed, 1 skipped",
    ]),
    "the deadline skip is the one CI accepts": ({"CI": "true", "DATAPRESS_DEADLINE": "1"}, ["pass", "cold", "after-cold"], 0, [
        "PASSED   pass (Ns)",
        f"SKIPPED  cold (Ns): {COLD}{ACCEPTED}",
        f"SKIPPED  after-cold (Ns): needs suite cold, skipped: {COLD}{ACCEPTED}",
        "suites: 1 passed, 0 failed, 2 skipped",
    ]),
    "no deadline skip without a deadline": ({"CI": "true"}, ["cold"], 1, [
        f"FAILED   cold (Ns): skipped under CI=true: {COLD}",
        "suites: 0 passed, 1 failed, 0 skipped",
    ]),
}


@pytest.fixture(scope="module")
def fakes(tmp_path_factory):
    d = tmp_path_factory.mktemp("fakes")
    for name, body in FAKES.items():
        (d / f"{name}.sh").write_text(HEAD + body + "\n")
        (d / f"{name}.sh").chmod(0o755)
    (d / "widget.test.mjs").write_text(NODE_TEST)
    (d / "suites").write_text(SUITES.format(d=d))
    return d


def run_runner(fakes, logs, env, suites):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("CI", "DATAPRESS_DEADLINE", "KUBECONFIG", "GITHUB_ACTIONS") and not k.startswith("DP_SUITE")}
    clean.update(env, DATAPRESS_TEST_SUITES=str(fakes / "suites"), DATAPRESS_TEST_LOGS=str(logs))
    return subprocess.run([str(ROOT / "scripts" / "test.sh"), *suites], env=clean, capture_output=True, text=True, timeout=300)


def summary(stdout, logs):
    plain = re.sub(r"\x1b\[[0-9;]*m", "", stdout)
    lines = plain.split("======== test summary", 1)[1].splitlines()[1:]
    return [re.sub(r"\(\d+s\)", "(Ns)", line).replace(str(logs), "LOGS") for line in lines]


@pytest.mark.parametrize("case", CASES)
def test_summary(fakes, tmp_path, case):
    env, suites, status, expected = CASES[case]
    result = run_runner(fakes, tmp_path, env, suites)
    assert summary(result.stdout, tmp_path) == expected, result.stdout[-3000:] + result.stderr[-2000:]
    assert result.returncode == status


def test_the_suite_list_is_the_real_one_without_the_variable():
    # An unknown suite name lists the known ones: the real list, not a fake one.
    env = {k: v for k, v in os.environ.items() if k != "DATAPRESS_TEST_SUITES"}
    result = subprocess.run([str(ROOT / "scripts" / "test.sh"), "no-such-suite"], env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "known: rust nix manifests front images compose ci cluster e2e-k8s nodes bench docs" in result.stderr
