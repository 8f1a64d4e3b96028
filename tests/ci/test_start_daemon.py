"""scripts/lib.sh start_daemon, which CI and the cluster use to start dockerd and the host
processes: the daemon keeps no descriptor of its caller (a held flock leaked to dockerd once
and made the next images build wait forever)."""

import fcntl
import os
import subprocess
import time
from pathlib import Path

LIB = Path(__file__).resolve().parents[2] / "scripts" / "lib.sh"

# Holds a flock on fd 9 and an extra descriptor on fd 7, starts `sleep` through
# start_daemon, prints the daemon's PID and exits: the lock must then be free.
SCRIPT = """
set -euo pipefail
. "$1"
exec 9>"$2"; flock 9
exec 7</dev/null
start_daemon "$3" sleep 30
echo $!
"""


def sleeping(pid):
    return Path(f"/proc/{pid}/comm").read_text().strip() == "sleep" and "nanosleep" in Path(f"/proc/{pid}/wchan").read_text()


def test_daemon_keeps_only_stdio_and_no_lock(tmp_path):
    lock, log = tmp_path / "build.lock", tmp_path / "daemon.log"
    out = subprocess.run(["bash", "-c", SCRIPT, "_", str(LIB), str(lock), str(log)],
                         capture_output=True, text=True, timeout=30, check=True)
    pid = int(out.stdout.split()[-1])
    try:
        # bash, then setsid, then sleep: wait until sleep sleeps, past the loader's own
        # short-lived descriptors (a busy machine showed ld.so's fd 3 right after the exec).
        deadline = time.monotonic() + 10
        while not sleeping(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "sleep"
        assert sleeping(pid), f"the daemon is not asleep: {Path(f'/proc/{pid}/wchan').read_text()}"
        assert sorted(int(fd) for fd in os.listdir(f"/proc/{pid}/fd")) == [0, 1, 2]
        assert os.readlink(f"/proc/{pid}/fd/1") == str(log)
        assert os.getsid(pid) == pid  # its own session: no signal of the caller's terminal
        with open(lock, "w") as f:  # the caller has exited: nobody holds the lock any more
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.kill(pid, 15)
