#!/usr/bin/env python3
"""The release gate on a Nix image's SBOM (CycloneDX from sbomnix) and its scan (grype JSON).

Trivy finds no OS package database in a Nix image, so it sees only the Rust crates; the SBOM
of the image's closure lists every Nix package its files come from. Fails (exit 1) when the
SBOM lists no component, when a required package is missing from it (`--require nginx`;
`--require glibc|musl` accepts either), and on a HIGH or CRITICAL vulnerability that has a
fix. Prints a Markdown summary (for the job summary).
Usage: sbom_gate.py IMAGE_REF SBOM.cdx.json GRYPE.json [--require NAME[|NAME]]...
"""

import argparse
import json
import sys

GATED = ("high", "critical")


def inventory(sbom):
    """{lowercase component name: [versions]} of a CycloneDX document."""
    names = {}
    for c in sbom.get("components") or []:
        names.setdefault(c.get("name", "").lower(), []).append(c.get("version", "?"))
    names.pop("", None)
    return names


def missing(names, required):
    """The requirements (`a|b`: any of them) no component satisfies."""
    return [r for r in required if not any(alt.lower() in names for alt in r.split("|"))]


def fixable(report):
    """Fixable HIGH/CRITICAL matches of a grype JSON report: (severity, id, package, version, fixes)."""
    found = []
    for m in report.get("matches") or []:
        v, art = m.get("vulnerability", {}), m.get("artifact", {})
        fix = v.get("fix") or {}
        if v.get("severity", "").lower() in GATED and fix.get("state") == "fixed":
            found.append((v["severity"].upper(), v.get("id", "?"), art.get("name", "?"), art.get("version", "?"),
                          ", ".join(fix.get("versions") or []) or "?"))
    return sorted(set(found))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ref")
    ap.add_argument("sbom")
    ap.add_argument("scan")
    ap.add_argument("--require", action="append", default=[], metavar="NAME[|NAME]")
    a = ap.parse_args(argv)
    with open(a.sbom) as f:
        names = inventory(json.load(f))
    with open(a.scan) as f:
        found = fixable(json.load(f))
    lacking = missing(names, a.require)
    shown = ", ".join(f"{r} {'/'.join(v for alt in r.split('|') for v in names.get(alt.lower(), []))}"
                      for r in a.require if r not in lacking)
    print(f"- `{a.ref}`: {len(names)} packages in the SBOM ({shown or 'nothing required'}); "
          f"{len(found)} fixable HIGH/CRITICAL")
    for severity, vid, pkg, version, fixes in found:
        print(f"  - {severity} {vid} in {pkg} {version} (fixed in {fixes})")
    if not names:
        print(f"  - FAIL: the SBOM of {a.ref} lists no package: it proves nothing")
    for r in lacking:
        print(f"  - FAIL: the SBOM of {a.ref} lacks {r.replace('|', ' or ')}: the scan would not see it")
    return 1 if not names or lacking or found else 0


if __name__ == "__main__":
    sys.exit(main())
