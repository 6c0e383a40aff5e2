"""Legacy light curves: the import command and get_alert_lc_data (JSON, CSV, ECSV, VOTable)."""

import io
import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
from astropy.io import votable
from astropy.table import Table
from django.core.management import CommandError, call_command

from alerts.services import import_legacy_alerts
from calibration.models import FollowupPoint
from calibration.services import set_hidden
from observers.models import Observatory
from tests.conftest import LEGACY, import_legacy_lightcurve

LIGHTCURVES = sorted((LEGACY / "lightcurves").glob("alert-*.json"))
ROOT = Path(__file__).resolve().parent.parent
LEGACY_KEYS = ["mjd", "magerr", "alert_name", "observatory", "caliberr", "mag", "catalog", "filter", "id"]
POINT_KEYS = ["mjd", "mag", "magerr", "caliberr", "filter", "catalog", "observatory"]


def points_by_id(arrays: dict) -> dict[int, dict]:
    return {pk: {key: arrays[key][k] for key in POINT_KEYS} for k, pk in enumerate(arrays["id"])}


def data(client, query: str):
    return client.get(f"/get_alert_lc_data?{query}")


@pytest.mark.parametrize("path", LIGHTCURVES, ids=lambda p: p.stem)
def test_every_real_legacy_file_round_trips(path, client, db):
    legacy = json.loads(path.read_text())
    alert_id = int(path.stem.removeprefix("alert-"))
    import_legacy_lightcurve(alert_id)
    response = data(client, f"alert_id={alert_id}")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    ours = response.json()
    assert list(ours) == LEGACY_KEYS and ours["alert_name"] is None
    assert sorted(ours["id"]) == sorted(legacy["id"])
    old, new = points_by_id(legacy), points_by_id(ours)
    for pk, point in old.items():
        for key in ("mjd", "mag", "magerr", "caliberr"):
            assert np.float32(new[pk][key]) == np.float32(point[key]), (pk, key)
        assert [new[pk][key] for key in ("filter", "catalog", "observatory")] == [
            point[key] for key in ("filter", "catalog", "observatory")
        ]
    # Limits survive as limits, stored with is_limit; points come in time order.
    limits = {pk for pk, point in old.items() if point["magerr"] == -1}
    assert {pk for pk, point in new.items() if point["magerr"] == -1} == limits
    assert set(FollowupPoint.objects.filter(is_limit=True).values_list("pk", flat=True)) == limits
    assert ours["mjd"] == sorted(ours["mjd"])


def test_import_keeps_legacy_ids_and_marks_points(db):
    out = import_legacy_lightcurve(25477)
    assert "3 new, 0 already present" in out
    point = FollowupPoint.objects.get(pk=6126)
    assert (point.legacy_id, point.imported, point.is_limit, point.mag_err) == (6126, True, True, -1.0)
    assert (point.survey, point.filter, point.legacy_observatory) == ("APASS", "i", "Mercator, Lovro Pala")
    assert point.calib_err == 0.2133380025625229 and point.catalog_sha256 == ""
    placeholder = point.observatory
    assert placeholder.name == "Mercator, Lovro Pala" and not placeholder.active
    assert placeholder.prefix.startswith("legacy-") and not placeholder.hashtags.exists()
    # New points are numbered after the imported ones (the sequence was moved on).
    fresh = FollowupPoint.objects.create(
        alert=point.alert, observatory=placeholder, mjd=1.0, survey="APASS", filter="V", mag=1.0, mag_err=0.1
    )
    assert fresh.pk > 6126


def test_import_is_idempotent_and_imports_the_alert_list_first(db):
    folder = str(LEGACY / "lightcurves")
    alert_list = str(LEGACY / "list_of_alerts.json")
    out = StringIO()
    call_command("import_legacy_lightcurves", folder, "--alert-id-map", alert_list, stdout=out)
    assert "676 new" in out.getvalue() and "745 points imported" in out.getvalue()
    observatories = Observatory.objects.count()
    out = StringIO()
    call_command("import_legacy_lightcurves", folder, "--alert-id-map", alert_list, stdout=out)
    assert "0 points imported, 745 already present, 0 conflicts, 0 placeholder" in out.getvalue()
    assert FollowupPoint.objects.count() == 745 and Observatory.objects.count() == observatories
    # One observatory per distinct legacy label, reused across alerts.
    assert Observatory.objects.filter(name="Heather Campbell").count() == 1


def test_import_reuses_an_observatory_of_the_same_name(make_observatory, db):
    real, _ = make_observatory("Mercator", name="Mercator, Lovro Pala")
    import_legacy_lightcurve(25477)
    assert set(FollowupPoint.objects.values_list("observatory", flat=True)) == {real.pk}


def test_import_reports_id_conflicts_without_overwriting(observatory, alert, db):
    obs, _ = observatory
    taken = FollowupPoint.objects.create(
        pk=6124, alert=alert, observatory=obs, mjd=57000.0, survey="APASS", filter="V", mag=15.0, mag_err=0.1
    )
    out = import_legacy_lightcurve(25477)
    assert "2 new, 0 already present, 1 id conflicts skipped" in out
    taken.refresh_from_db()
    assert taken.alert == alert and not taken.imported


def test_import_errors_name_the_file(tmp_path, db):
    with pytest.raises(CommandError, match="alert-25477.json"):
        call_command("import_legacy_lightcurves", str(LEGACY / "lightcurves" / "alert-25477.json"))
    bad = tmp_path / "alert-25477.json"
    bad.write_text(
        '{"mjd": [1.0], "mag": [], "magerr": [], "caliberr": [], "filter": [], '
        '"catalog": [], "observatory": [], "id": []}'
    )
    import_legacy_alerts([{"id": 25477, "ivorn": "ivo://asassn/ASASSN-14gy", "ra": 84.8, "dec": 45.5}])
    err = StringIO()
    with pytest.raises(CommandError, match="1 of 1 files not imported"):
        call_command("import_legacy_lightcurves", str(bad), stderr=err, stdout=StringIO())
    assert "differ in length" in err.getvalue()
    wrong_name = tmp_path / "curve.json"
    wrong_name.write_text("{}")
    err = StringIO()
    with pytest.raises(CommandError, match="curve.json"):
        call_command("import_legacy_lightcurves", str(wrong_name), stderr=err, stdout=StringIO())
    assert "the file name must be alert-N.json" in err.getvalue()
    assert not FollowupPoint.objects.exists()


def test_query_by_name_echoes_the_ivorn_and_works_under_followup(asassn14gy, client):
    for path in ("/get_alert_lc_data", "/followup/get_alert_lc_data"):
        body = client.get(path, {"alert_name": "ivo://asassn/ASASSN-14gy"}).json()
        assert body["alert_name"] == "ivo://asassn/ASASSN-14gy" and body["id"] == [6124, 6125, 6126]


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("alert_id=abc", 400, "alert_id must be an integer."),
        ("", 400, "Give alert_id or alert_name."),
        ("alert_id=1", 404, "No alert with id 1."),
        ("alert_id=99999999999999999999", 404, "No alert with id 99999999999999999999."),
        ("alert_name=ivo://nothing", 404, "No alert named ivo://nothing."),
        ("alert_id=25477&format=xls", 400, "format must be one of json, csv, ecsv, votable."),
    ],
)
def test_errors_are_one_plain_line(asassn14gy, client, query, status, message):
    response = data(client, query)
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == message + "\n"


def test_hidden_points_never_appear_in_the_data(asassn14gy, client):
    set_hidden(FollowupPoint.objects.get(pk=6125), True)
    assert data(client, "alert_id=25477").json()["id"] == [6124, 6126]
    csv = Table.read(data(client, "alert_id=25477&format=csv").content.decode(), format="ascii.csv")
    assert list(csv["id"]) == [6124, 6126]
    listed = client.get("/list_of_alerts?format=json&observed_only=1").json()
    assert [(row["id"], row["nfollowup"]) for row in listed] == [(25477, 2)]


def test_csv_parses_with_astropy(asassn14gy, client):
    response = data(client, "alert_id=25477&format=csv")
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == 'attachment; filename="alert-25477.csv"'
    table = Table.read(response.content.decode(), format="ascii.csv")
    assert table.colnames == [
        "id",
        "mjd",
        "date",
        "mag",
        "magerr",
        "caliberr",
        "limit",
        "filter",
        "catalog",
        "observatory",
    ]
    assert list(table["id"]) == [6124, 6125, 6126] and list(table["limit"]) == [0, 0, 1]
    assert table["magerr"][2] == -1 and table["observatory"][0] == "Mercator, Lovro Pala"
    assert table["date"][0] == "2014-09-19T06:15:39"
    assert table["mag"][1] == 17.61090087890625


def test_ecsv_and_votable_carry_units_and_the_alert(asassn14gy, client):
    ecsv = Table.read(data(client, "alert_id=25477&format=ecsv").content.decode(), format="ascii.ecsv")
    assert str(ecsv["mjd"].unit) == "d" and str(ecsv["mag"].unit) == "mag"
    assert ecsv.meta["alert_name"] == "ivo://asassn/ASASSN-14gy"
    assert list(ecsv["limit"]) == [False, False, True]
    response = data(client, "alert_id=25477&format=votable")
    assert response["Content-Type"] == "application/x-votable+xml"
    parsed = votable.parse(io.BytesIO(response.content))
    table = parsed.get_first_table().to_table()
    assert list(table["id"]) == [6124, 6125, 6126] and list(table["observatory"])[0] == "Mercator, Lovro Pala"
    infos = {info.name: info.value for info in parsed.resources[0].infos}
    assert infos["alert_name"] == "ivo://asassn/ASASSN-14gy" and infos["alert_id"] == "25477"


def test_votable_writer_does_not_corrupt_memory():
    """astropy 8.0's C TABLEDATA writer writes past its buffer (astropy#20419): we must not use it."""
    code = (
        "import django; django.setup()\n"
        "from alerts.lightcurves import LightCurve, lightcurve_votable\n"
        "from alerts.models import Alert\n"
        "alert = Alert(pk=1, ivorn='ivo://x', ra=1.0, dec=2.0)\n"
        "for n in range(1, 101):\n"
        "    lightcurve_votable(LightCurve(alert, [57000.5], [17.0], [0.1], [0.01], ['V'], ['APASS'],\n"
        "                                  ['x' * n], [1], [False], [1]))\n"
    )
    env = {**os.environ, "PYTHONMALLOC": "debug", "DJANGO_SETTINGS_MODULE": "gsafollowup.settings"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_demo_loads_the_real_light_curves(db):
    call_command("demo", stdout=StringIO())
    call_command("demo", stdout=StringIO())
    assert FollowupPoint.objects.filter(imported=True).count() == 745
    assert FollowupPoint.objects.filter(alert_id=25463).count() == 230
