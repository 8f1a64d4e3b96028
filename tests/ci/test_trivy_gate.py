"""scripts/ci/trivy_gate.py on reports shaped like Trivy's JSON output (SchemaVersion 2)."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

GATE = Path(__file__).resolve().parents[2] / "scripts" / "ci" / "trivy_gate.py"
spec = importlib.util.spec_from_file_location("trivy_gate", GATE)
trivy_gate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(trivy_gate)


def report(packages=(), vulnerabilities=()):
    result = {
        "Target": "usr/bin/datapress-api",
        "Class": "lang-pkgs",
        "Type": "rustbinary",
        "Packages": [{"Name": n, "Version": v} for n, v in packages],
    }
    if vulnerabilities:
        result["Vulnerabilities"] = list(vulnerabilities)
    return {"SchemaVersion": 2, "ArtifactName": "datapress-api.tar", "ArtifactType": "container_image", "Results": [result]}


def vuln(severity, fixed):
    return {"VulnerabilityID": "CVE-2026-0001", "PkgName": "hyper", "InstalledVersion": "1.0.0", "FixedVersion": fixed, "Severity": severity}


def run(tmp_path, doc):
    path = tmp_path / "report.json"
    path.write_text(json.dumps(doc))
    return subprocess.run([sys.executable, str(GATE), "datapress-api:1.0.0", str(path)], capture_output=True, text=True)


def test_clean_report_passes(tmp_path):
    result = run(tmp_path, report(packages=[("salvo", "0.95.2"), ("tokio", "1.50.0")]))
    assert result.returncode == 0, result.stdout
    assert "2 packages found" in result.stdout


def test_empty_inventory_fails(tmp_path):
    for doc in (report(), {"SchemaVersion": 2, "Results": None}, {"SchemaVersion": 2}):
        result = run(tmp_path, doc)
        assert result.returncode == 1 and "found no package" in result.stdout


def test_fixable_high_or_critical_fails(tmp_path):
    for severity in ("HIGH", "CRITICAL"):
        result = run(tmp_path, report(packages=[("hyper", "1.0.0")], vulnerabilities=[vuln(severity, "1.0.1")]))
        assert result.returncode == 1 and f"{severity} CVE-2026-0001 in hyper 1.0.0 (fixed in 1.0.1)" in result.stdout


def test_unfixed_or_lower_severity_passes(tmp_path):
    findings = [vuln("CRITICAL", ""), vuln("HIGH", None), vuln("MEDIUM", "1.0.1"), vuln("LOW", "1.0.1")]
    result = run(tmp_path, report(packages=[("hyper", "1.0.0")], vulnerabilities=findings))
    assert result.returncode == 0, result.stdout


def test_evaluate_counts_every_target():
    doc = report(packages=[("a", "1")])
    doc["Results"].append({"Target": "nginx", "Class": "os-pkgs", "Type": "debian", "Packages": [{"Name": "b", "Version": "2"}]})
    packages, fixable, targets = trivy_gate.evaluate(doc)
    assert packages == 2 and fixable == [] and targets == ["debian:nginx", "rustbinary:usr/bin/datapress-api"]
