"""scripts/ci/sbom_gate.py on documents shaped like sbomnix's CycloneDX and grype's JSON output."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

GATE = Path(__file__).resolve().parents[2] / "scripts" / "ci" / "sbom_gate.py"
spec = importlib.util.spec_from_file_location("sbom_gate", GATE)
sbom_gate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sbom_gate)

FRONT = [("nginx", "1.28.0"), ("openssl", "3.5.1"), ("glibc", "2.41-11"), ("pcre2", "10.45"), ("datapress-api", "1.0.0")]
REQUIRE = ["--require", "nginx", "--require", "openssl", "--require", "glibc|musl"]


def sbom(components=FRONT):
    return {"bomFormat": "CycloneDX", "specVersion": "1.5",
            "components": [{"type": "application", "name": n, "version": v, "purl": f"pkg:nix/{n}@{v}",
                            "cpe": f"cpe:2.3:a:{n}:{n}:{v}:*:*:*:*:*:*:*"} for n, v in components]}


DB = {"descriptor": {"name": "grype", "db": {"status": {"built": "2026-12-01T00:00:00Z", "valid": True}}}}


def match(severity, state, name="openssl", versions=("3.5.2",)):
    return {"vulnerability": {"id": "CVE-2026-0002", "severity": severity,
                              "fix": {"state": state, "versions": list(versions)}},
            "artifact": {"name": name, "version": "3.5.1", "type": "unknown"}}


def run(tmp_path, doc, matches=(), require=REQUIRE, db=DB):
    (tmp_path / "sbom.json").write_text(json.dumps(doc))
    (tmp_path / "grype.json").write_text(json.dumps({"matches": list(matches), **db}))
    return subprocess.run([sys.executable, str(GATE), "datapress-front:1.0.0", str(tmp_path / "sbom.json"),
                           str(tmp_path / "grype.json"), *require], capture_output=True, text=True)


def test_complete_inventory_without_fixable_findings_passes(tmp_path):
    result = run(tmp_path, sbom(), [match("Medium", "fixed"), match("Critical", "not-fixed"), match("High", "unknown")])
    assert result.returncode == 0, result.stdout
    assert "5 packages in the SBOM (nginx 1.28.0, openssl 3.5.1, glibc|musl 2.41-11)" in result.stdout


def test_fixable_high_or_critical_fails(tmp_path):
    for severity in ("High", "Critical"):
        result = run(tmp_path, sbom(), [match(severity, "fixed")])
        assert result.returncode == 1
        assert f"{severity.upper()} CVE-2026-0002 in openssl 3.5.1 (fixed in 3.5.2)" in result.stdout


def test_missing_nginx_openssl_or_c_library_fails(tmp_path):
    for gone in ("nginx", "openssl", "glibc"):
        result = run(tmp_path, sbom([c for c in FRONT if c[0] != gone]))
        assert result.returncode == 1, gone
        assert "lacks" in result.stdout and gone in result.stdout.split("lacks")[1]


def test_either_c_library_satisfies_the_requirement(tmp_path):
    musl = [("musl", "1.2.5") if n == "glibc" else (n, v) for n, v in FRONT]
    assert run(tmp_path, sbom(musl)).returncode == 0


def test_empty_inventory_fails(tmp_path):
    for doc in (sbom([]), {"bomFormat": "CycloneDX"}, {"components": None}):
        result = run(tmp_path, doc, require=[])
        assert result.returncode == 1 and "lists no package" in result.stdout


def test_inventory_and_fixable_helpers():
    names = sbom_gate.inventory(sbom([("Nginx", "1"), ("nginx", "2"), ("", "3")]))
    assert names == {"nginx": ["1", "2"]}
    assert sbom_gate.missing(names, ["nginx", "glibc|musl"]) == ["glibc|musl"]
    assert sbom_gate.fixable({"matches": [match("High", "fixed"), match("High", "fixed")]}) == [
        ("HIGH", "CVE-2026-0002", "openssl", "3.5.1", "3.5.2")]


def test_required_package_without_cpe_fails(tmp_path):
    doc = sbom()
    for c in doc["components"]:
        if c["name"] == "openssl":
            del c["cpe"]
    result = run(tmp_path, doc)
    assert result.returncode == 1 and "openssl has no CPE" in result.stdout


def test_scan_without_a_loaded_database_fails(tmp_path):
    for db in ({}, {"descriptor": {"db": {"status": {"built": "2026-12-01", "valid": False}}}},
               {"descriptor": {"db": {"built": "2026-12-01", "error": "checksum mismatch"}}}):
        result = run(tmp_path, sbom(), db=db)
        assert result.returncode == 1 and "no loaded vulnerability database" in result.stdout, db
    older = {"descriptor": {"db": {"built": "2026-12-01T00:00:00Z", "schemaVersion": 5, "error": None}}}
    assert run(tmp_path, sbom(), db=older).returncode == 0
