"""The production configuration on 127.0.0.1: DEBUG off, gunicorn with several workers.

Used by tests/test_production.py, tests/test_reliability.py and the benchmarks. It prepares
the database the way docs/deploy.md does (migrate, collectstatic), starts
gunicorn with the repository's gunicorn.conf.py and waits until /health answers.
"""

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from gsafollowup.testing.postgres import free_port

ROOT = Path(__file__).resolve().parent.parent.parent


class ProductionServer:
    """gunicorn serving gsafollowup against ``database_url``; ``start()``, ``url``, ``stop()``."""

    def __init__(self, database_url: str, workers: int = 3, timeout: int = 120, env: dict | None = None):
        self.database_url = database_url
        self.workers = workers
        self.timeout = timeout
        self.extra_env = env or {}
        self.workdir = Path(tempfile.mkdtemp(prefix="gsa-prod-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.log_path = self.workdir / "gunicorn.log"
        self.env = self.environment()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def media_root(self) -> Path:
        return self.workdir / "media"

    def environment(self) -> dict:
        """The variables a production deployment sets (docs/deploy.md), for this temporary one."""
        env = {k: v for k, v in os.environ.items() if k not in ("DEBUG", "DJANGO_SETTINGS_MODULE")}
        env.update(
            DJANGO_SETTINGS_MODULE="gsafollowup.settings",
            DEBUG="0",
            SECRET_KEY=secrets.token_urlsafe(50),
            ALLOWED_HOSTS="127.0.0.1,localhost",
            DATABASE_URL=self.database_url,
            MEDIA_ROOT=str(self.media_root),
            STATIC_ROOT=str(self.workdir / "static"),
            # Plain http on the loopback: TLS is the reverse proxy's job in a real deployment.
            SECURE_SSL_REDIRECT="0",
            WEB_CONCURRENCY=str(self.workers),
            GUNICORN_TIMEOUT=str(self.timeout),
            GUNICORN_BIND=f"127.0.0.1:{self.port}",
            GUNICORN_ACCESS_LOG=str(self.workdir / "access.log"),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def manage(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``manage.py`` with the production environment; returns its output."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=check,
            capture_output=True,
            text=True,
            timeout=600,
        )

    def prepare(self) -> None:
        """Create the tables and collect the static files, as a deployment does before starting."""
        self.manage("migrate", "--noinput")
        self.manage("collectstatic", "--noinput")

    def start(self) -> "ProductionServer":
        """Prepare, start gunicorn and wait until /health answers 200."""
        self.prepare()
        self.start_gunicorn()
        return self

    def start_gunicorn(self) -> None:
        command = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "gsafollowup.wsgi"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.wait_healthy()

    def wait_healthy(self, timeout: float = 60.0) -> None:
        """Return once /health answers 200 and every worker is up."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log()}")
            try:
                # self.url is always http://127.0.0.1:<port>, built above.
                with urllib.request.urlopen(self.url + "/health", timeout=5) as response:  # noqa: S310
                    if response.status == 200 and len(self.worker_pids()) == self.workers:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not become healthy in {timeout:.0f} s:\n{self.log()}")
            time.sleep(0.2)

    def worker_pids(self) -> list[int]:
        """PIDs of the live worker processes (children of the gunicorn master; zombies excluded)."""
        if self.process is None:
            return []
        master = self.process.pid
        children = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue  # the process ended while we looked
            # Fields after the command name (which may hold spaces) start after its ')'.
            fields = stat[stat.rindex(")") + 2 :].split()
            state, parent = fields[0], int(fields[1])
            if parent == master and state not in ("Z", "X"):
                children.append(int(entry.name))
        return sorted(children)

    def kill_worker(self, pid: int) -> None:
        """SIGKILL one worker, as the kernel's OOM killer would; the master replaces it."""
        os.kill(pid, signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def access_log(self) -> str:
        path = self.workdir / "access.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        """SIGTERM (graceful), SIGKILL if it hangs, reap the master, remove the temporary files."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        shutil.rmtree(self.workdir, ignore_errors=True)


#: The demo alert (a real star of the DECam catalog) and that catalog, loaded by `manage.py demo`.
DEMO_ALERT = "ivo://gsafollowup/demo/GRB210605A-field-star"
DEMO_CATALOG = ROOT / "demo" / "decam-grb210605a-g-night1.cat"


class DemoStack:
    """A temporary PostgreSQL, gunicorn on it, and the real demo data with its hashtag."""

    def __init__(self, postgres, server: ProductionServer, hashtag: str):
        self.postgres = postgres
        self.server = server
        self.hashtag = hashtag
        self.url = server.url

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        """Rows of one query, on a fresh connection of the caller's own (not the server's)."""
        import psycopg2

        connection = psycopg2.connect(self.postgres.url)
        try:
            with connection, connection.cursor() as cursor:
                cursor.execute(query, params)
                return cursor.fetchall() if cursor.description else []
        finally:
            connection.close()

    def alert_id(self, ivorn: str = DEMO_ALERT) -> int:
        return self.sql("SELECT id FROM alerts_alert WHERE ivorn = %s", (ivorn,))[0][0]


@contextmanager
def demo_stack(postgres_bindir: str, workers: int = 3, env: dict | None = None):
    """Start PostgreSQL and gunicorn, load the demo data; stop and clean everything afterwards."""
    from gsafollowup.testing.postgres import TemporaryPostgres

    postgres = TemporaryPostgres(postgres_bindir).start()
    server = ProductionServer(postgres.url, workers=workers, env=env)
    try:
        server.start()
        demo = server.manage("demo", "--url", server.url + "/")
        hashtag = demo.stdout.strip().splitlines()[-1].split()[-1]
        yield DemoStack(postgres, server, hashtag)
    finally:
        server.stop()
        postgres.stop()
