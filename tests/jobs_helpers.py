"""Helpers of the job tests: variants of the real catalog, archives, and draining the queue in process."""

import io
import tarfile
import zipfile

from django.conf import settings

from tests.conftest import DECAM

CATALOG = DECAM.read_bytes()


def variant(tag: str) -> bytes:
    """The real catalog made distinct by a trailing comment line (readers skip comments)."""
    return CATALOG + f"# job test frame {tag}\n".encode()


def zip_of(files: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def tar_of(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            archive.addfile(info)
    return buffer.getvalue()


def drain(rounds: int = 100) -> None:
    """Run every job in this process with the database engine's worker, supervisor rounds between."""
    from django_tasks_db.management.commands.db_worker import Worker

    from jobs.models import Job
    from jobs.services import supervise

    for _ in range(rounds):
        supervise()
        Worker(
            queue_names=settings.TASK_QUEUES,
            interval=0,
            batch=True,
            backend_name="default",
            startup_delay=False,
            max_tasks=None,
            worker_id="test",
            excluded_queue_names=[],
        ).run()
        if not Job.objects.exclude(state__in=Job.FINISHED).exists():
            return
    raise AssertionError("jobs left unfinished: " + str(list(Job.objects.exclude(state__in=Job.FINISHED))))
