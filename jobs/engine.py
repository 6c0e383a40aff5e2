"""The task engine behind the jobs: Django's task framework with the backend TASKS_BACKEND names.

Django 6 ships the framework as ``django.tasks``; on Django 5.2 the ``django-tasks`` backport
is the same API under ``django_tasks``. Everything else in the project imports it from here.
"""

import os
import socket

from django.conf import settings
from django.db import InterfaceError, OperationalError
from redis.exceptions import RedisError

from gsafollowup.errors import InsufficientStorage, ServiceUnavailable

try:
    from django.tasks import TaskResultStatus, default_task_backend, task
    from django.tasks.exceptions import TaskResultDoesNotExist
except ModuleNotFoundError:  # Django 5.2: the backport
    from django_tasks import TaskResultStatus, default_task_backend, task
    from django_tasks.exceptions import TaskResultDoesNotExist

__all__ = ["task", "TaskResultDoesNotExist", "enqueue", "message_alive", "TRANSIENT", "worker_name"]

#: Failures a later attempt may not meet: an archive or the storage down, the database gone.
TRANSIENT = (ServiceUnavailable, InsufficientStorage, OperationalError, InterfaceError)
#: Failures of the engine's transport (Redis down): the message is sent again by the supervisor.
ENGINE_DOWN = (RedisError, OSError)

#: Engine priorities of the queues (the database engine orders by them; RQ takes queues in order).
QUEUE_PRIORITY = {"interactive": 10, "bulk": -10}


def enqueue(task_function, queue: str, *args) -> str:
    """Send one message to the engine; returns the engine's id for it."""
    options = {"queue_name": queue}
    if default_task_backend.supports_priority:
        options["priority"] = QUEUE_PRIORITY.get(queue, 0)
    return str(task_function.using(**options).enqueue(*args).id)


def message_alive(task_id: str) -> bool | None:
    """True while the engine still holds the message waiting; False if it is gone or over; None: unknown."""
    if not task_id:
        return False
    try:
        status = default_task_backend.get_result(task_id).status
    except TaskResultDoesNotExist:
        return False
    except ENGINE_DOWN:
        return None
    return status == TaskResultStatus.READY


def worker_name() -> str:
    """host:pid of this process, as recorded on the jobs it runs (and what a test kills)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def backend_name() -> str:
    return settings.TASKS_BACKEND
