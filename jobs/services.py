"""The life of a job: created, handed to the engine fairly, claimed under a lease, finished once.

Delivery is at least once: a message may arrive twice (sent again after Redis lost it) or be
cut short (its worker killed). Effects stay exactly once because

- a worker must *claim* the job (a compare-and-set from ``queued`` to ``running``) before it
  works, so a second message for a job already claimed or finished does nothing;
- a claim holds a lease that its worker renews; a lease that runs out (worker killed, machine
  gone) puts the job back in line for another worker, up to ``max_attempts`` claims;
- the work itself goes through the one write path, whose unique constraints refuse a second
  point, and which records the job's id on the point it stores, so an attempt that finds
  "its" point already stored (the previous attempt committed and died) succeeds with it.

Fairness: at most JOBS_QUEUED_PER_OBSERVATORY jobs of one observatory wait in the engine's
queue at once (per queue); the others stay ``pending`` here and are handed over one at a time
as workers claim the earlier ones. Another observatory's frames therefore wait behind a few
frames per active observatory, never behind all 500 of one.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.utils import timezone

from gsafollowup.errors import DomainError

from . import engine
from .models import Batch, Job

log = logging.getLogger(__name__)

#: kind -> the task that runs jobs of that kind (registered by the app that owns the kind).
TASKS: dict[str, object] = {}


def register(kind: str, task_function) -> None:
    """Declare the task that runs the jobs of ``kind`` (called where the task is defined)."""
    TASKS[kind] = task_function


@dataclass
class NewJob:
    """A job to create: its kind, what it works on and its arguments, or an error known already."""

    kind: str
    label: str
    params: dict = field(default_factory=dict)
    error: DomainError | None = None


def create_jobs(
    new: list[NewJob], *, observatory, queue: str = "interactive", batch: Batch | None = None
) -> list[Job]:
    """Store the jobs (those with a known error as failed at once) and hand the first ones over.

    Call inside the caller's transaction: the messages are sent only once it commits, so a
    worker never receives a job it cannot read yet, and a refused submission sends nothing.
    """
    now = timezone.now()
    jobs = []
    for item in new:
        job = Job(
            kind=item.kind,
            label=item.label[:255],
            params=item.params,
            observatory=observatory,
            batch=batch,
            queue=queue,
            priority=engine.QUEUE_PRIORITY.get(queue, 0),
            max_attempts=settings.JOBS_MAX_ATTEMPTS,
            not_before=now,
        )
        if item.error is not None:
            job.state, job.finished_at, job.progress = Job.FAILED, now, 1.0
            job.error_code, job.error_message = item.error.code, item.error.message
        jobs.append(job)
    Job.objects.bulk_create(jobs)
    observatory_id = observatory.pk if observatory is not None else None
    transaction.on_commit(lambda: dispatch(observatory_id, queue))
    return jobs


def dispatch(observatory_id, queue: str) -> int:
    """Hand this observatory's due pending jobs to the engine, up to the fairness cap; how many."""
    now = timezone.now()
    mine = Job.objects.filter(observatory_id=observatory_id, queue=queue)
    with transaction.atomic():
        waiting = mine.filter(state=Job.QUEUED).count()
        free = settings.JOBS_QUEUED_PER_OBSERVATORY - waiting
        if free <= 0:
            return 0
        due = mine.filter(state=Job.PENDING, not_before__lte=now).order_by("-priority", "created", "pk")
        # skip_locked: two workers dispatching for one observatory take different jobs.
        chosen = list(due.select_for_update(skip_locked=True).values_list("pk", "kind")[:free])
        Job.objects.filter(pk__in=[pk for pk, _ in chosen], state=Job.PENDING).update(
            state=Job.QUEUED, dispatched_at=now
        )
    for pk, kind in chosen:
        send(pk, kind, queue)
    return len(chosen)


def send(pk, kind: str, queue: str) -> None:
    """Send the message for one queued job; if the engine is down the supervisor sends it later."""
    try:
        task_id = engine.enqueue(TASKS[kind], queue, str(pk))
    except engine.ENGINE_DOWN as error:
        log.warning("job %s: the task engine is unavailable (%s); it will be sent again", pk, error)
        return
    Job.objects.filter(pk=pk).update(task_id=task_id)


def fresh_connection() -> None:
    """Drop a database connection broken by an outage, as Django does between requests.

    Not inside a transaction (the tests run tasks in theirs), where closing would break it.
    """
    if not connection.in_atomic_block:
        close_old_connections()


def claim(job_id: str) -> Job | None:
    """Take the job for this worker (queued -> running, with a lease); None if it is not ours to run."""
    now = timezone.now()
    taken = Job.objects.filter(pk=job_id, state=Job.QUEUED).update(
        state=Job.RUNNING,
        attempts=F("attempts") + 1,
        lease_until=now + timedelta(seconds=settings.JOBS_LEASE_SECONDS),
        worker=engine.worker_name(),
        started_at=now,
        stage="started",
        progress=0.05,
    )
    if not taken:
        # Claimed by another delivery of the same message, finished, or no longer exists.
        return None
    return Job.objects.select_related("observatory").get(pk=job_id)


def _mine(job: Job):
    """The job's row while this attempt still holds it (a lapsed lease may have passed it on)."""
    return Job.objects.filter(pk=job.pk, state=Job.RUNNING, attempts=job.attempts)


def report_progress(job: Job, progress: float, stage: str) -> None:
    """Record how far the job is (shown by the job and batch pages)."""
    _mine(job).update(progress=max(0.0, min(1.0, progress)), stage=stage[:80])


class Heartbeat:
    """Renew the job's lease from a thread while the work runs in this one."""

    def __init__(self, job: Job):
        self.job = job
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name=f"lease {job.pk}", daemon=True)

    def __enter__(self):
        if settings.JOBS_HEARTBEAT:
            self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()

    def run(self) -> None:
        period = settings.JOBS_LEASE_SECONDS / 3
        try:
            while not self.stop.wait(period):
                lease = timezone.now() + timedelta(seconds=settings.JOBS_LEASE_SECONDS)
                try:
                    _mine(self.job).update(lease_until=lease)
                except engine.TRANSIENT as error:
                    # The database is away: the lease may lapse and the job move on; that is safe.
                    log.warning("job %s: lease not renewed (%s)", self.job.pk, error)
                    close_old_connections()
        finally:
            connection.close()


@dataclass
class Outcome:
    """What a job produced: a summary for its API and the page of what it stored."""

    result: dict
    url: str = ""


def run(job_id: str, work: Callable[[Job], Outcome]) -> str:
    """Run one delivery of a job's message: claim, work under a lease, record the end; returns the state."""
    fresh_connection()
    job = claim(job_id)
    if job is None:
        return "skipped"
    # Refill the observatory's place in the queue now, so other workers have its next frame.
    dispatch(job.observatory_id, job.queue)
    with Heartbeat(job):
        started = time.perf_counter()
        try:
            outcome = work(job)
        except engine.TRANSIENT as error:
            return retry_later(job, error)
        except DomainError as error:
            return finish(job, Job.FAILED, error_code=error.code, error_message=error.message)
        except Exception as error:
            # The one place a bug in the work is caught: the job must end with a message, as a
            # request ends with a 500. It is logged with its traceback and raised on for the
            # engine to record too.
            log.exception("job %s (%s) failed unexpectedly", job.pk, job.kind)
            finish(
                job,
                Job.FAILED,
                error_code="internal_error",
                error_message=(
                    f"The server failed on this frame ({type(error).__name__}); its operators have the "
                    f"details under job {job.pk}. Sending the frame again will not help until it is fixed."
                ),
            )
            raise
        seconds = time.perf_counter() - started
    return finish(job, Job.SUCCEEDED, result=outcome.result, result_url=outcome.url, service_seconds=seconds)


def finish(job: Job, state: str, **fields) -> str:
    """Record the end of this attempt (only while it still holds the job)."""
    fields.setdefault("result", {})
    _mine(job).update(
        state=state, progress=1.0, stage=state, finished_at=timezone.now(), lease_until=None, **fields
    )
    return state


def backoff(attempt: int) -> float:
    """Seconds before attempt ``attempt + 1``: JOBS_RETRY_BACKOFF doubled per attempt, capped."""
    return min(settings.JOBS_RETRY_BACKOFF * 2 ** max(0, attempt - 1), settings.JOBS_RETRY_BACKOFF_MAX)


def message_of(error: Exception) -> str:
    if isinstance(error, DomainError):
        return error.message
    # A database driver's text can name hosts and ports: the observer gets the meaning only.
    return "The database was unavailable."


def retry_later(job: Job, error: Exception) -> str:
    """A transient failure: try again after a pause, or fail once the attempts are spent."""
    message = message_of(error)
    code = getattr(error, "code", "unavailable")
    if job.attempts >= job.max_attempts:
        return finish(
            job,
            Job.FAILED,
            error_code=code,
            error_message=f"{message} Gave up after {job.attempts} attempts; send the frame again later.",
        )
    pause = backoff(job.attempts)
    log.warning("job %s: attempt %s failed (%s); again in %.0f s", job.pk, job.attempts, message, pause)
    fresh_connection()
    _mine(job).update(
        state=Job.PENDING,
        not_before=timezone.now() + timedelta(seconds=pause),
        lease_until=None,
        stage=f"waiting {pause:.0f} s to retry",
        error_code=code,
        error_message=message,
        history=job.history + [{"attempt": job.attempts, "worker": job.worker, "error": message}],
    )
    return Job.PENDING


def supervise() -> dict:
    """One round of the supervisor: lapsed leases, lost messages, due jobs. Safe on every worker at once."""
    return {"lapsed": requeue_lapsed(), "resent": resend_lost(), "dispatched": dispatch_due()}


def requeue_lapsed() -> int:
    """Running jobs whose lease ran out (their worker died): back in line, or failed if spent."""
    now = timezone.now()
    count = 0
    for job in Job.objects.filter(state=Job.RUNNING, lease_until__lt=now):
        entry = {"attempt": job.attempts, "worker": job.worker, "error": "the worker stopped"}
        same = Job.objects.filter(pk=job.pk, state=Job.RUNNING, attempts=job.attempts, lease_until__lt=now)
        if job.attempts >= job.max_attempts:
            changed = same.update(
                state=Job.FAILED,
                progress=1.0,
                stage=Job.FAILED,
                finished_at=now,
                lease_until=None,
                error_code="worker_lost",
                error_message=(
                    f"The worker processing this frame stopped {job.attempts} times (crash or out of "
                    "memory) and it was given up; check that the file is a catalog of a usual size."
                ),
                history=job.history + [entry],
            )
        else:
            changed = same.update(
                state=Job.PENDING,
                not_before=now,
                lease_until=None,
                stage="waiting: its worker stopped",
                history=job.history + [entry],
            )
            log.warning("job %s: worker %s stopped; it runs again", job.pk, job.worker)
        count += changed
    return count


def resend_lost() -> int:
    """Queued jobs whose message the engine no longer holds (Redis restarted empty): send again."""
    cutoff = timezone.now() - timedelta(seconds=settings.JOBS_REDELIVER_AFTER)
    count = 0
    for pk, kind, queue, task_id in Job.objects.filter(
        state=Job.QUEUED, dispatched_at__lt=cutoff
    ).values_list("pk", "kind", "queue", "task_id"):
        if engine.message_alive(task_id) is not False:
            continue  # waiting in the queue, or the engine cannot say now
        if Job.objects.filter(pk=pk, state=Job.QUEUED).update(dispatched_at=timezone.now()):
            log.warning("job %s: its message was lost; sent again", pk)
            send(pk, kind, queue)
            count += 1
    return count


def dispatch_due() -> int:
    """Dispatch for every observatory and queue with pending jobs that are due."""
    keys = (
        Job.objects.filter(state=Job.PENDING, not_before__lte=timezone.now())
        .values_list("observatory_id", "queue")
        .distinct()
    )
    return sum(dispatch(observatory_id, queue) for observatory_id, queue in list(keys))


def visible_to(user):
    """The jobs a caller may see: its observatory's, or all for a curator."""
    if user is None or not user.is_authenticated:
        return Job.objects.none()
    if user.is_staff:
        return Job.objects.all()
    return Job.objects.filter(observatory__user=user)


def batch_counts(batch: Batch) -> dict:
    """How many of the batch's jobs are in each state, and the fraction done."""
    counts = dict.fromkeys(s for s, _ in Job.STATES)
    for state in counts:
        counts[state] = 0
    progress = 0.0
    jobs = list(batch.jobs.values_list("state", "progress"))
    for state, job_progress in jobs:
        counts[state] += 1
        progress += 1.0 if state in Job.FINISHED else job_progress
    total = len(jobs)
    return {
        "total": total,
        "states": counts,
        "progress": progress / total if total else 1.0,
        "finished": counts[Job.SUCCEEDED] + counts[Job.FAILED] == total,
    }
