"""Stored points kept the total error in mag_err, which light curves then added calib_err to.

From now on mag_err is the statistical part (the legacy meaning of get_alert_lc_data's magerr).
Points calibrated here are corrected from their fit details, each recording the change in its
history; points imported from the old server were right all along and stay as they are.
"""

import math

from django.db import migrations, models
from django.utils import timezone

WHY = "mag_err held the total error; it now holds the statistical part (calib_err apart)"


def statistical_part(point) -> float | None:
    """The statistical error of a point whose mag_err is the total, or None if it is not."""
    calib = point.calib_err or 0.0
    if not math.isclose(point.mag_err, math.hypot(point.details.get("mag_err_stat", 0.0), calib), abs_tol=1e-9):
        return None
    return float(point.details["mag_err_stat"])


def forwards(apps, schema_editor):
    FollowupPoint = apps.get_model("calibration", "FollowupPoint")
    now = timezone.now().isoformat()
    points = FollowupPoint.objects.filter(imported=False, is_limit=False)
    for point in points.iterator(chunk_size=500):
        if "mag_err_stat" not in point.details:
            continue
        stat = statistical_part(point)
        if stat is None or stat == point.mag_err:
            continue
        history = list(point.details.get("history", []))
        history.append({"at": now, "old": {"mag_err": point.mag_err}, "new": {"mag_err": stat}, "why": WHY})
        point.details = {**point.details, "history": history}
        point.mag_err = stat
        point.save(update_fields=["mag_err", "details"])


def backwards(apps, schema_editor):
    FollowupPoint = apps.get_model("calibration", "FollowupPoint")
    for point in FollowupPoint.objects.filter(imported=False, is_limit=False).iterator(chunk_size=500):
        history = list(point.details.get("history", []))
        if not history or history[-1].get("why") != WHY:
            continue
        point.mag_err = history.pop()["old"]["mag_err"]
        point.details = {**point.details, "history": history}
        point.save(update_fields=["mag_err", "details"])


class Migration(migrations.Migration):
    dependencies = [("calibration", "0003_remote_coverage")]

    operations = [
        migrations.AlterField(
            model_name="followuppoint",
            name="mag_err",
            field=models.FloatField(
                help_text="Statistical error (calib_err apart); -1 for an upper limit (legacy convention)"
            ),
        ),
        migrations.RunPython(forwards, backwards),
    ]
