#!/usr/bin/env python3
"""The release gate on a Trivy JSON report (`trivy image --list-all-pkgs --format json`).

Fails (exit 1) on a HIGH or CRITICAL vulnerability that has a fixed version, and on a report
that lists no package at all: a scanner that saw nothing proves nothing. Prints a Markdown
summary (for the job summary).   Usage: trivy_gate.py IMAGE_REF REPORT.json
"""

import json
import sys

GATED = ("HIGH", "CRITICAL")


def evaluate(report):
    """(number of packages, [fixable HIGH/CRITICAL findings], [scanned targets])."""
    results = report.get("Results") or []
    packages = sum(len(r.get("Packages") or []) for r in results)
    fixable = [
        (v["Severity"], v["VulnerabilityID"], v.get("PkgName", "?"), v.get("InstalledVersion", "?"), v["FixedVersion"])
        for r in results
        for v in r.get("Vulnerabilities") or []
        if v.get("Severity") in GATED and v.get("FixedVersion")
    ]
    targets = sorted({f'{r.get("Type")}:{r.get("Target")}' for r in results})
    return packages, fixable, targets


def main(ref, path):
    with open(path) as f:
        packages, fixable, targets = evaluate(json.load(f))
    print(f"- `{ref}`: {packages} packages found ({', '.join(targets) or 'no target'}); {len(fixable)} fixable HIGH/CRITICAL")
    for severity, vid, pkg, installed, fixed in fixable:
        print(f"  - {severity} {vid} in {pkg} {installed} (fixed in {fixed})")
    if packages == 0:
        print(f"  - FAIL: Trivy found no package in {ref}: the image gives the scanner nothing to check")
    return 1 if packages == 0 or fixable else 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
