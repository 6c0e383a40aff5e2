"""Real worker processes (``manage.py run_worker``) beside the production stack, for the job tests.

Each worker gets the stack's environment (database, MEDIA_ROOT, engine), short leases and
supervisor rounds so that recovery shows within seconds; its output goes to a log file per worker.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gsafollowup.testing.production import ROOT

#: ``manage.py run_worker`` with the test's poison frame held until it is killed (see the module).
HELD_WORKER = Path(__file__).with_name("held_worker.py")
#: The frame the worker tests treat as poison.
POISON = "poison.cat"

#: Quick recovery for the tests (production: 30 s leases, 2 s rounds, 30 s before a resend).
FAST = {
    "JOBS_LEASE_SECONDS": "3",
    "JOBS_SUPERVISE_INTERVAL": "0.5",
    "JOBS_REDELIVER_AFTER": "3",
    "JOBS_RETRY_BACKOFF": "0.5",
    "JOBS_MAX_ATTEMPTS": "4",
    "JOBS_POLL_INTERVAL": "0.1",
}


class Workers:
    """``count`` worker processes kept by the test: start, kill one, replace the dead, stop all."""

    def __init__(self, env: dict, workdir: Path, count: int = 2):
        self.env = {**env, **FAST, "GSA_TEST_HELD_FRAME": POISON}
        self.workdir = workdir
        self.count = count
        self.processes: list[subprocess.Popen] = []
        self.started = 0

    def start_one(self) -> subprocess.Popen:
        self.started += 1
        log = open(self.workdir / f"worker-{self.started}.log", "ab")  # noqa: SIM115 (the child's)
        process = subprocess.Popen(
            [sys.executable, str(HELD_WORKER), "run_worker"],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.processes.append(process)
        return process

    def start(self) -> "Workers":
        for _ in range(self.count):
            self.start_one()
        return self

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.poll() is None]

    def kill(self, pid: int) -> None:
        """SIGKILL, as the kernel's OOM killer would: no cleanup of any kind."""
        os.kill(pid, signal.SIGKILL)
        for process in self.processes:
            if process.pid == pid:
                process.wait(timeout=10)

    def replace_dead(self) -> None:
        self.processes = [p for p in self.processes if p.poll() is None]
        while len(self.processes) < self.count:
            self.start_one()

    def logs(self) -> str:
        return "\n".join(
            f"== {path.name}\n" + path.read_text(errors="replace")[-3000:]
            for path in sorted(self.workdir.glob("worker-*.log"))
        )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = []


def wait_for(condition, timeout: float, what: str, poll: float = 0.1):
    """Poll ``condition()`` until it is truthy (returned), or fail saying ``what`` never happened."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)
