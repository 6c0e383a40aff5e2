"""Recalibration writes only its own columns on the current row: a point hidden meanwhile stays hidden."""

import threading
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from calibration import services
from calibration.models import FollowupPoint
from tests.conftest import STAR_G
from tests.test_upload import upload


def hide_from_another_connection(pk: int) -> None:
    """Hide the point as /cgi/delpoint would, from a thread with its own database connection."""

    def hide():
        try:
            services.set_hidden(FollowupPoint.objects.get(pk=pk), True)
        finally:
            connection.close()

    thread = threading.Thread(target=hide)
    thread.start()
    thread.join()


@pytest.mark.django_db(transaction=True)
def test_a_point_hidden_while_recalibrate_all_runs_stays_hidden(
    observatory, star_alert, client, media, monkeypatch
):
    _, hashtag = observatory
    pk = upload(client, hashtag).json()["followup_id"]
    FollowupPoint.objects.filter(pk=pk).update(mag=99.0, algorithm_version="old")
    calibrate = services.run_calibration

    def calibrate_then_hide(*args, **kwargs):
        # The command has read the point (visible, mag 99); the observer deletes it now,
        # before the recalibration writes its result: the moment the old code lost the hide.
        result = calibrate(*args, **kwargs)
        hide_from_another_connection(pk)
        return result

    monkeypatch.setattr(services, "run_calibration", calibrate_then_hide)
    out = StringIO()
    call_command("recalibrate", "--all", "--sync", stdout=out)
    assert "1 recalibrated" in out.getvalue()
    point = FollowupPoint.objects.get(pk=pk)
    assert point.hidden and point.hidden_at is not None, "the hide made during the run was undone"
    assert abs(point.mag - STAR_G) < 0.1 and point.algorithm_version != "old"
    assert point.details["history"][-1]["old"]["mag"] == 99.0


@pytest.mark.django_db(transaction=True)
def test_a_point_deleted_for_good_during_the_run_is_reported_not_recreated(
    observatory, star_alert, client, media, monkeypatch
):
    _, hashtag = observatory
    pk = upload(client, hashtag).json()["followup_id"]
    calibrate = services.run_calibration

    def calibrate_then_delete(*args, **kwargs):
        result = calibrate(*args, **kwargs)
        FollowupPoint.objects.filter(pk=pk).delete()
        return result

    monkeypatch.setattr(services, "run_calibration", calibrate_then_delete)
    err = StringIO()
    call_command("recalibrate", "--all", "--sync", stdout=StringIO(), stderr=err)
    assert f"follow-up {pk}: Follow-up {pk} was deleted" in err.getvalue()
    assert not FollowupPoint.objects.filter(pk=pk).exists()
