"""Skipped tests are failures under CI=true unless tests/allowed-skips.txt lists them
(scripts/skip_gate.py); every skip is printed either way."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import skip_gate  # noqa: E402

SKIPS = []


def pytest_runtest_logreport(report):
    if not report.skipped:
        return
    if hasattr(report, "wasxfail"):
        reason = f"xfail: {report.wasxfail}"
    elif isinstance(report.longrepr, tuple):
        reason = report.longrepr[2].removeprefix("Skipped: ")
    else:
        reason = str(report.longrepr)
    SKIPS.append(skip_gate.Skip("pytest", report.nodeid, reason))


def pytest_sessionfinish(session, exitstatus):
    unlisted = skip_gate.report(SKIPS)
    if unlisted and skip_gate.strict() and exitstatus == 0:
        session.exitstatus = 1
