"""What the tests that run a local OCI registry on 127.0.0.1 share."""

import socket
import subprocess
import time
import urllib.request

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(address: str, proc: subprocess.Popen) -> None:
    """Waits (10 s at most) until the registry at ADDRESS answers /v2/; else kills it and fails."""
    for _ in range(100):
        try:
            urllib.request.urlopen(f"http://{address}/v2/", timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail("the local registry did not start")
