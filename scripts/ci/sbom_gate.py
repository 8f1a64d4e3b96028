#!/usr/bin/env python3
"""The release gate on a Nix image's SBOM (CycloneDX from sbomnix) and its scan (grype JSON).

Trivy finds no OS package database in a Nix image, so it sees only the Rust crates; the SBOM
of the image's closure lists every Nix package its files come from. Fails (exit 1) when the
SBOM lists no component, when a required package is missing from it (`--require nginx`;
`--require glibc|musl` accepts either) or has no CPE (grype matches Nix packages by CPE only:
without one, it would find nothing and the gate would pass), when the scan report names no
loaded vulnerability database, and on a HIGH or CRITICAL vulnerability that has a fix. Prints a Markdown summary (for the job summary).
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


def with_cpe(sbom):
    """Lowercase names of the components that carry a CPE (what grype can match them by)."""
    return {c.get("name", "").lower() for c in sbom.get("components") or [] if c.get("cpe")}


def db_built(report):
    """When the vulnerability database grype used was built, or None if none was loaded (grype
    JSON: descriptor.db.status.built, or descriptor.db.built in older versions)."""
    db = (report.get("descriptor") or {}).get("db") or {}
    status = db.get("status") or db
    if status.get("error") or status.get("valid") is False:
        return None
    return status.get("built") or None


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
        doc = json.load(f)
    names, cpes = inventory(doc), with_cpe(doc)
    with open(a.scan) as f:
        report = json.load(f)
    found, built = fixable(report), db_built(report)
    lacking = missing(names, a.require)
    # Present but unmatchable: none of the present alternatives has a CPE.
    blind = [r for r in a.require if r not in lacking
             and not any(alt.lower() in cpes for alt in r.split("|") if alt.lower() in names)]
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
    for r in blind:
        print(f"  - FAIL: {r.replace('|', ' or ')} has no CPE in the SBOM of {a.ref}: grype cannot match it")
    if not built:
        print(f"  - FAIL: the scan of {a.ref} names no loaded vulnerability database: it proves nothing")
    return 1 if not names or lacking or blind or not built or found else 0


if __name__ == "__main__":
    sys.exit(main())
