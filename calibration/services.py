"""The one write path for follow-up points: calibrate an uploaded catalog and store the result.

The web form, the legacy endpoint, the REST API, the admin and the management commands all
call these functions; nothing else creates, hides or recalibrates a FollowupPoint.
"""

import logging
import unicodedata
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from alerts.models import Alert
from alerts.selectors import alert_by_name, angular_distance_deg
from alerts.services import refresh_followup_stats
from gsafollowup.errors import (
    BadInput,
    CalibrationImpossible,
    Duplicate,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    UnknownEvent,
)
from gsafollowup.timing import stage

from .catalogs import SourceCatalog, read_catalog
from .models import FollowupPoint
from .photometry import MIN_CALIBRATORS, CalibrationResult, calibrate, parse_force_filter
from .references import cone
from .uploads import (
    catalog_lock,
    forget_catalog,
    keep_catalog,
    read_kept_catalog,
    sha256_of,
    storage_errors,
)

log = logging.getLogger(__name__)

#: Extra sky around the catalog footprint searched for reference stars (degrees).
CONE_MARGIN_DEG = 1.0 / 60.0
#: Largest cone searched; wider frames are calibrated on the stars nearest the target.
MAX_CONE_DEG = 1.0


@dataclass
class UploadOutcome:
    """What an upload produced: the stored point (None on a dry run) and the calibration."""

    alert: Alert
    result: CalibrationResult
    point: FollowupPoint | None
    dry_run: bool
    mjd: float


def find_alert(ivorn: str) -> Alert:
    """The alert with this IVORN or alias (outer blanks ignored, any Unicode normal form), or UnknownEvent."""
    ivorn = unicodedata.normalize("NFC", ivorn or "").strip()
    if not ivorn:
        raise BadInput("EventID (the alert's IVORN) is missing.")
    # alert_by_name tries the exact IVORN first, then the IVORN without ivo://, then aliases.
    alert = alert_by_name(ivorn)
    if alert is None:
        raise UnknownEvent(f"Unknown event {ivorn[:60]}; check EventID (list: /list_of_alerts).")
    return alert


def reference_cone(catalog: SourceCatalog, alert: Alert) -> tuple[float, float, float]:
    """The cone to search: the catalog footprint, or around the target for very wide frames."""
    ra, dec, radius = catalog.footprint()
    distance = angular_distance_deg(ra, dec, alert.ra, alert.dec)
    if distance > radius + CONE_MARGIN_DEG:
        raise CalibrationImpossible(
            f"The alert lies {distance * 60:.0f}' from the catalog's field centre, outside the field."
        )
    if radius + CONE_MARGIN_DEG > MAX_CONE_DEG:
        return alert.ra, alert.dec, MAX_CONE_DEG
    return ra, dec, radius + CONE_MARGIN_DEG


def run_calibration(
    content: bytes, filename: str, alert: Alert, match_dist, force_filter
) -> CalibrationResult:
    """Read the catalog, fetch reference stars and calibrate (no storage)."""
    with stage("read"):
        catalog = read_catalog(content, filename=filename)
    usable = int(catalog.photometry_ok().sum())
    if usable < MIN_CALIBRATORS:
        raise CalibrationImpossible(
            f"The catalog has {usable} usable source(s); a calibration needs at least {MIN_CALIBRATORS}."
        )
    with stage("cone"):
        ra, dec, radius = reference_cone(catalog, alert)
        references = cone(ra, dec, radius)
    if not references:
        if references.missing:
            names = ", ".join(references.missing)
            raise ServiceUnavailable(
                f"No reference stars for this field: the source of {names} is unavailable; try again later. "
                + " ".join(references.missing.values())
            )
        raise CalibrationImpossible("No reference stars are loaded for this field.")
    with stage("calibrate"):
        result = calibrate(
            catalog, references, alert.ra, alert.dec, match_dist_arcsec=match_dist, force_filter=force_filter
        )
    result.missing_surveys = dict(references.missing)
    return result


def _existing_duplicate(observatory, alert, mjd, band, sha256) -> FollowupPoint | None:
    """The visible point an upload in this band would repeat: same catalog, or same night and observer.

    Observers store one catalog once per band (forced filters), so the band is part of both rules.
    """
    same = FollowupPoint.objects.visible().filter(alert=alert, imported=False, filter=band)
    return same.filter(observatory=observatory, mjd=mjd).first() or same.filter(catalog_sha256=sha256).first()


def _refuse_duplicate(existing: FollowupPoint) -> None:
    raise Duplicate(
        f"Duplicate: follow-up {existing.pk} holds this point in {existing.survey}/{existing.filter}.",
        existing_id=existing.pk,
    )


def point_fields(result: CalibrationResult) -> dict:
    """The FollowupPoint columns filled from a calibration result."""
    return {
        "survey": result.survey,
        "filter": result.filter,
        "mag": result.mag,
        # The statistical part only: light curves give calib_err beside it and clients add the two.
        "mag_err": -1.0 if result.is_limit else result.mag_err_stat,
        "calib_err": result.calib_err,
        "is_limit": result.is_limit,
        "zeropoint": result.zeropoint,
        "colour_term": result.colour_term,
        "scatter": result.scatter,
        "npoints": result.npoints,
        "outlier_fraction": result.outlier_fraction,
        "radius_arcsec": result.radius_arcsec,
        "ra": result.ra,
        "dec": result.dec,
        "algorithm_version": result.algorithm_version,
    }


def followup_calibrate(
    *,
    observatory,
    ivorn: str,
    mjd: float,
    content: bytes,
    filename: str = "",
    exptime: float | None = None,
    match_dist: float | None = None,
    force_filter: str = "no",
    dry_run: bool = False,
    comment: str = "",
    job_key: str = "",
) -> UploadOutcome:
    """Calibrate one uploaded catalog for an alert; store the point unless dry_run.

    Raises domain errors (BadInput, BadCatalog, UnknownEvent, Duplicate, CalibrationImpossible)
    and stores nothing in that case: no row and no file. ``job_key`` (a background job's id) is
    recorded on the point, so a retried job recognises the point its earlier attempt stored.
    """
    if observatory is None:
        raise Forbidden("Only an observatory's hashtag may upload; curators use the admin.")
    with stage("database"):
        alert = find_alert(ivorn)
    force = parse_force_filter(force_filter)
    sha256 = sha256_of(content)
    if not dry_run and force.band is not None:
        # The band is known before calibrating: refuse a repeat without the work.
        with stage("database"):
            existing = _existing_duplicate(observatory, alert, mjd, force.band, sha256)
        if existing is not None:
            _refuse_duplicate(existing)
    result = run_calibration(content, filename, alert, match_dist, force_filter)
    if dry_run:
        return UploadOutcome(alert=alert, result=result, point=None, dry_run=True, mjd=mjd)
    with stage("database"):
        existing = _existing_duplicate(observatory, alert, mjd, result.filter, sha256)
    if existing is not None:
        _refuse_duplicate(existing)

    details = result.to_dict()
    details["request"] = {"match_dist": match_dist, "force_filter": force_filter, "filename": filename}
    if job_key:
        details["request"]["job"] = job_key
    with storage_errors(), catalog_lock(sha256):
        with stage("kept file"):
            created_file = keep_catalog(content, sha256)
        try:
            with stage("database"), transaction.atomic():
                point = FollowupPoint.objects.create(
                    alert=alert,
                    observatory=observatory,
                    mjd=mjd,
                    exptime=exptime,
                    comment=comment,
                    details=details,
                    catalog_sha256=sha256,
                    catalog_name=filename[:255],
                    catalog_size=len(content),
                    **point_fields(result),
                )
                refresh_followup_stats(alert.pk)
        except IntegrityError:
            if created_file and not FollowupPoint.objects.filter(catalog_sha256=sha256).exists():
                forget_catalog(sha256)
            existing = _existing_duplicate(observatory, alert, mjd, result.filter, sha256)
            if existing is None:
                raise
            _refuse_duplicate(existing)
        except BaseException:
            if created_file and not FollowupPoint.objects.filter(catalog_sha256=sha256).exists():
                forget_catalog(sha256)
            raise
    log.info("stored follow-up %s: %s %s=%.3f", point.pk, alert.ivorn, point.filter, point.mag)
    return UploadOutcome(alert=alert, result=result, point=point, dry_run=False, mjd=mjd)


def may_change(user, point: FollowupPoint) -> bool:
    """Owners and curators (staff) may hide a point."""
    return bool(user and user.is_authenticated and (user.is_staff or point.observatory.user_id == user.pk))


def hide_point(user, followup_id) -> FollowupPoint:
    """Hide (delete, recoverably) a point on behalf of its owner or a curator."""
    try:
        pk = int(str(followup_id).strip())
    except ValueError:
        raise BadInput("followupid must be an integer follow-up id.") from None
    point = FollowupPoint.objects.select_related("observatory").filter(pk=pk).first()
    if point is None or (point.hidden and not may_change(user, point)):
        raise NotFound(f"No follow-up point {pk}.")
    if not may_change(user, point):
        raise Forbidden(f"Follow-up {pk} belongs to another observatory.")
    set_hidden(point, True)
    return point


#: How long the owner of a point may undo its deletion from the page (curators restore in the admin).
UNDO_MINUTES = 10


def undo_deadline(point: FollowupPoint):
    """Until when the deletion of this hidden point may be undone from its page; None if never."""
    if not point.hidden or point.hidden_at is None:
        return None
    return point.hidden_at + timezone.timedelta(minutes=UNDO_MINUTES)


def may_undo(user, point: FollowupPoint) -> bool:
    """The owner (or a curator) within UNDO_MINUTES of the deletion."""
    deadline = undo_deadline(point)
    return may_change(user, point) and deadline is not None and timezone.now() < deadline


def restore_point(user, followup_id) -> FollowupPoint:
    """Undo a recent deletion; Duplicate if an equal point was stored meanwhile (set_hidden checks)."""
    point = FollowupPoint.objects.select_related("observatory", "alert").filter(pk=followup_id).first()
    if point is None or not may_change(user, point):
        raise NotFound(f"No follow-up point {followup_id}.")
    if not point.hidden:
        return point
    if not may_undo(user, point):
        raise Forbidden(
            f"Follow-up {point.pk} was deleted over {UNDO_MINUTES} minutes ago; a curator can restore it."
        )
    set_hidden(point, False)
    return point


def set_hidden(point: FollowupPoint, hidden: bool) -> None:
    """Hide or restore a point; restoring fails as Duplicate if an equal point was stored since."""
    if point.hidden == hidden:
        return
    point.hidden = hidden
    point.hidden_at = timezone.now() if hidden else None
    try:
        with transaction.atomic():
            point.save(update_fields=["hidden", "hidden_at", "updated"])
            refresh_followup_stats(point.alert_id)
    except IntegrityError:
        point.hidden = not hidden
        existing = _existing_duplicate(
            point.observatory, point.alert, point.mjd, point.filter, point.catalog_sha256
        )
        raise Duplicate(
            f"Cannot restore follow-up {point.pk}: follow-up {existing.pk if existing else '?'} replaces it.",
            existing_id=existing.pk if existing else None,
        ) from None


def recalibrate_point(point: FollowupPoint, job_key: str = "") -> dict:
    """Recompute a stored point from its kept catalog with the current algorithm; returns the change.

    Only the columns the calibration owns are written, on the row re-read under a lock: a point
    hidden (or recalibrated) by someone else since ``point`` was read keeps that change. With
    ``job_key`` (a background job's id) a second delivery of the same job changes nothing: the
    change that job recorded is returned as it is.
    """

    def done_by_job(details: dict) -> dict | None:
        for entry in details.get("history", []):
            if job_key and entry.get("job") == job_key:
                return {"id": point.pk, "old": entry["old"], "new": entry["new"]}
        return None

    if (done := done_by_job(point.details)) is not None:
        return done
    if point.imported or not point.catalog_sha256:
        raise CalibrationImpossible(
            f"Follow-up {point.pk} has no kept catalog (imported from the old server)."
        )
    try:
        content = read_kept_catalog(point.catalog_sha256)
    except OSError:
        raise CalibrationImpossible(f"The kept catalog of follow-up {point.pk} is missing.") from None
    request = point.details.get("request", {})
    result = run_calibration(
        content, point.catalog_name, point.alert, request.get("match_dist"), request.get("force_filter", "no")
    )
    fields = point_fields(result)
    try:
        with transaction.atomic():
            current = FollowupPoint.objects.select_for_update().filter(pk=point.pk).first()
            if current is None:
                raise NotFound(f"Follow-up {point.pk} was deleted during the recalibration.")
            if (done := done_by_job(current.details)) is not None:
                return done  # the same job, delivered twice, finished first elsewhere
            keys = ("mag", "mag_err", "calib_err", "filter", "survey", "algorithm_version")
            old = {k: getattr(current, k) for k in keys}
            new = {k: fields[k] for k in keys}
            entry = {"at": timezone.now().isoformat(), "old": old, "new": new}
            if job_key:
                entry["job"] = job_key
            details = result.to_dict()
            details["request"] = request
            details["history"] = [*current.details.get("history", []), entry]
            for name, value in fields.items():
                setattr(current, name, value)
            current.details = details
            current.save(update_fields=[*fields, "details", "updated"])
            refresh_followup_stats(current.alert_id)
    except IntegrityError:
        raise Duplicate(f"Recalibrating follow-up {point.pk} would duplicate another stored point.") from None
    return {"id": point.pk, "old": old, "new": new}
