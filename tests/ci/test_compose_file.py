"""compose.yaml publishes what the brief asks, where the docs say: API on 8080, front on 8081,
loopback only (tests/e2e/compose.sh runs the same file on free ports through the variables)."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_default_ports_are_the_briefs():
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    assert services["api"]["ports"] == ["127.0.0.1:${DATAPRESS_API_PORT:-8080}:8000"]
    assert services["front"]["ports"] == ["127.0.0.1:${DATAPRESS_FRONT_PORT:-8081}:8080"]
    assert set(services) == {"api", "front"}
