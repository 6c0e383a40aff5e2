"""Data migrations run on rows in the state they were stored in before the migration."""

import math
from importlib import import_module

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("calibration", "0003_remote_coverage"), ("alerts", "0002_ivorn_key")]
AFTER = [("calibration", "0004_statistical_mag_err"), ("alerts", "0002_ivorn_key")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_points_stored_with_the_total_error_keep_the_statistical_part():
    apps = migrate(BEFORE)
    Alert = apps.get_model("alerts", "Alert")
    Observatory = apps.get_model("observers", "Observatory")
    FollowupPoint = apps.get_model("calibration", "FollowupPoint")
    User = apps.get_model("auth", "User")
    # Historical models do not run Alert.save, which keeps the key.
    ivorn = "ivo://migration/test"
    alert = Alert.objects.create(ivorn=ivorn, ivorn_key=ivorn, ra=10.0, dec=20.0)
    observatory = Observatory.objects.create(
        name="Old", prefix="Old", longitude=0, latitude=0, user=User.objects.create(username="old")
    )
    common = {"alert": alert, "observatory": observatory, "survey": "APASS", "filter": "g", "mag": 15.293}
    # The demo point as the old code stored it: mag_err = hypot(0.0085, 0.0134).
    stored = FollowupPoint.objects.create(
        mjd=59373.1,
        mag_err=math.hypot(0.0085, 0.0134),
        calib_err=0.0134,
        details={"mag_err_stat": 0.0085, "history": [{"at": "2026-01-01", "old": {}, "new": {}}]},
        catalog_sha256="a" * 64,
        **common,
    )
    limit = FollowupPoint.objects.create(
        mjd=59374.1,
        mag_err=-1,
        is_limit=True,
        details={"mag_err_stat": -1.0},
        catalog_sha256="b" * 64,
        **common,
    )
    imported = FollowupPoint.objects.create(
        mjd=59375.1, mag_err=0.05, calib_err=0.03, imported=True, legacy_id=7, details={}, **common
    )

    apps = migrate(AFTER)
    FollowupPoint = apps.get_model("calibration", "FollowupPoint")
    corrected = FollowupPoint.objects.get(pk=stored.pk)
    assert corrected.mag_err == pytest.approx(0.0085) and corrected.calib_err == 0.0134
    history = corrected.details["history"]
    assert len(history) == 2 and history[0]["at"] == "2026-01-01"
    assert history[1]["old"] == {"mag_err": pytest.approx(math.hypot(0.0085, 0.0134))}
    assert history[1]["new"] == {"mag_err": 0.0085} and "statistical" in history[1]["why"]
    assert FollowupPoint.objects.get(pk=limit.pk).mag_err == -1
    untouched = FollowupPoint.objects.get(pk=imported.pk)
    assert (untouched.mag_err, untouched.details) == (0.05, {})

    # Running it again changes nothing; going back restores what was stored.
    import_module("calibration.migrations.0004_statistical_mag_err").forwards(apps, None)
    again = FollowupPoint.objects.get(pk=stored.pk)
    assert again.mag_err == pytest.approx(0.0085) and len(again.details["history"]) == 2
    apps = migrate(BEFORE)
    restored = apps.get_model("calibration", "FollowupPoint").objects.get(pk=stored.pk)
    assert restored.mag_err == pytest.approx(math.hypot(0.0085, 0.0134))
    assert len(restored.details["history"]) == 1
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_latest_point_is_filled_from_the_visible_points():
    before = [("alerts", "0003_aliases_merges_harvests"), ("calibration", "0005_duplicate_per_band")]
    apps = migrate(before)
    Alert = apps.get_model("alerts", "Alert")
    Observatory = apps.get_model("observers", "Observatory")
    FollowupPoint = apps.get_model("calibration", "FollowupPoint")
    User = apps.get_model("auth", "User")
    observed, never = (
        Alert.objects.create(ivorn=f"ivo://migration/{n}", ivorn_key=f"ivo://migration/{n}", ra=1, dec=2)
        for n in ("observed", "never")
    )
    observatory = Observatory.objects.create(
        name="Old", prefix="Old", longitude=0, latitude=0, user=User.objects.create(username="old")
    )
    common = {"alert": observed, "observatory": observatory, "survey": "APASS", "mag_err": 0.1}
    FollowupPoint.objects.create(mjd=59000.0, filter="V", mag=15.0, catalog_sha256="a" * 64, **common)
    FollowupPoint.objects.create(mjd=59001.0, filter="g", mag=16.0, catalog_sha256="b" * 64, **common)
    # A hidden later point is not the latest one, and not counted.
    FollowupPoint.objects.create(
        mjd=59002.0, filter="r", mag=17.0, hidden=True, catalog_sha256="c" * 64, **common
    )

    apps = migrate([("alerts", "0004_latest_point_on_alert")])
    Alert = apps.get_model("alerts", "Alert")
    filled = Alert.objects.get(pk=observed.pk)
    assert (filled.nfollowup, filled.latest_mjd, filled.latest_mag, filled.latest_filter) == (
        2,
        59001.0,
        16.0,
        "g",
    )
    assert filled.latest_is_limit is False
    empty = Alert.objects.get(pk=never.pk)
    assert (empty.nfollowup, empty.latest_mjd, empty.latest_filter) == (0, None, "")
    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
