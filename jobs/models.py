"""Background jobs and the batches that group them: the truth about work handed to the task engine.

The engine (database or Redis) only carries "run job <id>" messages. What a job is, its state,
its attempts, its lease and its result live here, in the same database as the points it stores,
so a message delivered twice, lost with Redis, or cut short by a killed worker changes nothing
that this table and the points' unique constraints do not allow.
"""

import uuid

from django.db import models


class Batch(models.Model):
    """One submission of many frames by one observatory; each frame is a Job of its own."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    observatory = models.ForeignKey("observers.Observatory", on_delete=models.PROTECT, related_name="batches")
    dry_run = models.BooleanField(default=False, help_text="Calibrate every frame, store nothing")
    label = models.CharField(max_length=255, blank=True, help_text="What was sent, e.g. the archive's name")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created"]
        verbose_name_plural = "batches"

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.label or 'files'})"


class Job(models.Model):
    """One unit of background work (calibrate a frame, recalibrate a point)."""

    PENDING = "pending"  # waiting for its turn (fairness cap) or for the pause before a retry
    QUEUED = "queued"  # handed to the engine; a worker will claim it
    RUNNING = "running"  # claimed by a worker holding a lease
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STATES = [(s, s) for s in (PENDING, QUEUED, RUNNING, SUCCEEDED, FAILED)]
    FINISHED = (SUCCEEDED, FAILED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=40, help_text="The task: calibrate, recalibrate")
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.CASCADE, related_name="jobs")
    observatory = models.ForeignKey(
        "observers.Observatory", null=True, blank=True, on_delete=models.PROTECT, related_name="jobs"
    )
    queue = models.CharField(max_length=32, default="interactive")
    priority = models.IntegerField(default=0, help_text="Higher first, within the engine's queue")
    label = models.CharField(max_length=255, blank=True, help_text="What it works on, e.g. the file name")
    params = models.JSONField(default=dict, help_text="The arguments of the service call")

    state = models.CharField(max_length=12, choices=STATES, default=PENDING)
    progress = models.FloatField(default=0.0, help_text="0 to 1")
    stage = models.CharField(max_length=80, blank=True, help_text="What it is doing now")
    attempts = models.IntegerField(default=0, help_text="Times a worker claimed it")
    max_attempts = models.IntegerField(default=5)
    not_before = models.DateTimeField(help_text="Not handed to the engine before (retry pause)")
    dispatched_at = models.DateTimeField(null=True, blank=True)
    task_id = models.CharField(max_length=64, blank=True, help_text="The engine's id of the last message")
    lease_until = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=120, blank=True, help_text="host:pid of the worker running it")

    result = models.JSONField(default=dict, blank=True)
    result_url = models.CharField(max_length=255, blank=True, help_text="The stored point's page")
    error_code = models.CharField(max_length=40, blank=True)
    error_message = models.TextField(blank=True, help_text="What the observer can do about it")
    history = models.JSONField(default=list, blank=True, help_text="Attempts that did not finish it")
    service_seconds = models.FloatField(null=True, blank=True, help_text="Time inside the service call")

    created = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created", "pk"]
        indexes = [
            models.Index(fields=["state", "not_before"], name="job_state_due"),
            models.Index(fields=["observatory", "queue", "state"], name="job_fairness"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.label or self.pk} ({self.state})"

    @property
    def finished(self) -> bool:
        return self.state in self.FINISHED
