"""A temporary redis-server on 127.0.0.1 (a free port, a temporary directory), like the PostgreSQL harness.

No persistence (``--save "" --appendonly no``): a restart loses every queued message, the worst
case a deployment can meet, which the jobs' supervisor must recover from.
"""

import shutil
import socket
import subprocess
import tempfile
import time

from gsafollowup.testing.postgres import free_port


def find_redis() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if shutil.os.access("/usr/bin/redis-server", shutil.os.X_OK) else None
    )


class TemporaryRedis:
    """``start()``, ``url``, ``stop_server()`` / ``start_server()`` (same port), ``stop()``."""

    def __init__(self, binary: str):
        self.binary = binary
        self.workdir = tempfile.mkdtemp(prefix="gsa-redis-")
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "TemporaryRedis":
        self.start_server()
        return self

    def start_server(self) -> None:
        command = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.workdir,
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning",
        ]  # fmt: skip
        log = open(f"{self.workdir}/redis.log", "ab")  # noqa: SIM115 (kept open by the server)
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {open(log.name).read()[-2000:]}")
            time.sleep(0.05)

    def stop_server(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None

    def stop(self) -> None:
        self.stop_server()
        shutil.rmtree(self.workdir, ignore_errors=True)
