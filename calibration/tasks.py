"""Background tasks of calibration: each calls the same service a request would.

A task receives only a job's id; ``jobs.services.run`` claims the job, keeps its lease and
records how it ended. The work functions below read the job's arguments and call
``followup_calibrate`` / ``recalibrate_point``, the one write path, with the job's id as the
idempotency key.
"""

from django.urls import reverse

from gsafollowup.errors import CalibrationImpossible, Duplicate, NotFound
from jobs.engine import task
from jobs.models import Job
from jobs.services import Outcome, register, report_progress, run

from .models import FollowupPoint
from .services import followup_calibrate, recalibrate_point
from .uploads import read_staged


def point_outcome(point: FollowupPoint, dry_run: bool = False, result=None) -> Outcome:
    """The job's result: the point's numbers and links (or, for a dry run, what it would store)."""
    if point is None:
        summary = {
            "dry_run": True,
            "survey": result.survey,
            "band": result.filter,
            "mag": result.mag,
            "mag_err": None if result.is_limit else result.mag_err_stat,
            "calib_err": result.calib_err,
            "is_limit": result.is_limit,
            "npoints": result.npoints,
        }
        return Outcome(summary)
    summary = {
        "point": point.pk,
        "point_api": reverse("api-point", args=[point.pk]),
        "survey": point.survey,
        "band": point.filter,
        "mag": point.mag,
        "mag_err": None if point.is_limit else point.mag_err,
        "calib_err": point.calib_err,
        "is_limit": point.is_limit,
        "npoints": point.npoints,
    }
    return Outcome(summary, reverse("followup-point", args=[point.pk]))


def own_point(error: Duplicate, job: Job) -> FollowupPoint | None:
    """The point a Duplicate names, if an earlier attempt of this same job stored it."""
    point = FollowupPoint.objects.filter(pk=error.existing_id).first()
    if point is not None and point.details.get("request", {}).get("job") == str(job.pk):
        return point
    return None


def calibrate_work(job: Job) -> Outcome:
    """Calibrate one frame of a batch, as POST /api/v1/points/ would."""
    params = job.params
    try:
        content = read_staged(params["sha256"])
    except OSError:
        raise CalibrationImpossible(
            "The uploaded file of this frame is no longer on the server; send it again."
        ) from None
    report_progress(job, 0.2, "calibrating")
    try:
        outcome = followup_calibrate(
            observatory=job.observatory,
            ivorn=params["ivorn"],
            mjd=params["mjd"],
            content=content,
            filename=params.get("filename", ""),
            exptime=params.get("exptime"),
            match_dist=params.get("match_dist"),
            force_filter=params.get("force_filter", "no"),
            dry_run=params.get("dry_run", False),
            comment=params.get("comment", ""),
            job_key=str(job.pk),
        )
    except Duplicate as error:
        # An earlier attempt of this job stored the point and died before recording it.
        point = own_point(error, job)
        if point is None:
            raise
        return point_outcome(point)
    return point_outcome(outcome.point, outcome.dry_run, outcome.result)


def recalibrate_work(job: Job) -> Outcome:
    """Recompute one stored point, as ``manage.py recalibrate`` does in process."""
    point = (
        FollowupPoint.objects.select_related("alert", "observatory").filter(pk=job.params["point"]).first()
    )
    if point is None:
        raise NotFound(f"Follow-up {job.params['point']} no longer exists.")
    report_progress(job, 0.2, "recalibrating")
    change = recalibrate_point(point, job_key=str(job.pk))
    return Outcome(change, reverse("followup-point", args=[point.pk]))


@task(queue_name="interactive")
def calibrate_frame(job_id: str) -> str:
    """Run one delivery of a calibration job."""
    return run(job_id, calibrate_work)


@task(queue_name="bulk")
def recalibrate(job_id: str) -> str:
    """Run one delivery of a recalibration job."""
    return run(job_id, recalibrate_work)


register("calibrate", calibrate_frame)
register("recalibrate", recalibrate)
