"""One worker process: the task engine's worker and, beside it, the jobs' supervisor.

    python manage.py run_worker            # the engine TASKS_BACKEND names (database or rq)

Run as many as there are cores to spare, on as many machines as share the database and
MEDIA_ROOT (docs/deploy.md). Each takes the queues in order, interactive before bulk. Each also
runs the supervisor in a thread (requeue jobs whose worker died, send again messages Redis
lost, hand over due retries and the next frames of each observatory): every step is a
compare-and-set on the Job table, so it is safe on every worker at once, and as long as one
worker lives, the jobs of a dead one go on.
"""

import logging
import signal
import sys
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection

from jobs import engine
from jobs.services import supervise

log = logging.getLogger("jobs.worker")
#: Pause before starting the engine's worker again after it stopped on a lost database or Redis.
RESTART_PAUSE = 2.0


class Supervisor(threading.Thread):
    """Calls ``supervise()`` every JOBS_SUPERVISE_INTERVAL seconds until stopped."""

    def __init__(self):
        super().__init__(name="jobs supervisor", daemon=True)
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(settings.JOBS_SUPERVISE_INTERVAL):
                close_old_connections()
                try:
                    done = supervise()
                except (*engine.TRANSIENT, *engine.ENGINE_DOWN) as error:
                    log.warning("supervisor: %s; trying again", " ".join(str(error).split())[:200])
                    continue
                except Exception:
                    # A bug in one round must not end the thread silently: the jobs of dead
                    # workers would wait for ever. Logged with its traceback; the next round runs.
                    log.exception("supervisor round failed")
                    continue
                if any(done.values()):
                    log.info("supervisor: %s", done)
        finally:
            connection.close()


class Command(BaseCommand):
    help = "Run a worker of the task engine (TASKS_BACKEND) with the jobs' supervisor beside it."

    def add_arguments(self, parser):
        parser.add_argument(
            "--queues", default=",".join(settings.TASK_QUEUES), help="Queues in the order they are taken"
        )

    def handle(self, *args, **opts):
        queues = [name for name in opts["queues"].split(",") if name]
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        log.info(
            "worker %s: engine %s, queues %s", engine.worker_name(), settings.TASKS_BACKEND, ",".join(queues)
        )
        supervisor = Supervisor()
        supervisor.start()
        try:
            if settings.TASKS_BACKEND == "rq":
                self.run_rq(queues)
            else:
                self.run_database(queues)
        finally:
            supervisor.stopped.set()

    def run_database(self, queues: list[str]) -> None:
        from django_tasks_db.management.commands.db_worker import Worker

        worker = Worker(
            queue_names=queues,
            interval=settings.JOBS_POLL_INTERVAL,
            batch=False,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id=engine.worker_name()[:64],
            excluded_queue_names=[],
        )
        worker.configure_signals()
        while True:
            try:
                worker.run()
                return
            except engine.TRANSIENT as error:
                # The database worker stops when the database goes away; a worker waits for it.
                log.warning(
                    "database unavailable (%s); again in %.0f s", str(error).split("\n")[0], RESTART_PAUSE
                )
                time.sleep(RESTART_PAUSE)
                close_old_connections()

    def run_rq(self, queues: list[str]) -> None:
        import django_rq
        from rq.worker import SimpleWorker

        # SimpleWorker runs each task in this process, as the database worker does: no fork per
        # task (a Django process with numpy forks in ~10 ms, and a forked child must not share
        # the parent's database connection). A crash takes the worker down; the lease recovers it.
        stopping = False
        restarts = 0
        while not stopping:
            worker = django_rq.get_worker(
                *queues,
                job_class="django_tasks_rq.backend.Job",
                worker_class=SimpleWorker,
                name=f"{engine.worker_name()}:{restarts}",
            )
            try:
                worker.work(with_scheduler=False, logging_level="INFO")
            except engine.ENGINE_DOWN as error:
                log.warning("Redis unavailable (%s); again in %.0f s", error, RESTART_PAUSE)
            # Set by RQ's SIGTERM/SIGINT handler, idle or busy (_stop_requested is only set when busy).
            stopping = worker._shutdown_requested_date is not None
            if not stopping:
                # The RQ worker gives up when Redis or the database vanish mid-task; start again.
                time.sleep(RESTART_PAUSE)
                close_old_connections()
                restarts += 1
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        sys.exit(0)
