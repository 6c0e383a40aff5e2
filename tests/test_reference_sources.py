"""Reference sources: the remote archive with its database cache, archives that fail, and the answer
that names the surveys left out. Archives are real HTTP servers on 127.0.0.1 (tests/archive_server.py)
serving saved real answers (tests/data/archive/README.md)."""

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table

from calibration.archives import ARCHIVES
from calibration.models import CoveredPixel, ReferenceCatalog, ReferenceStar
from calibration.references import cone, source_of
from calibration.remote import COVERAGE_ORDER, ArchiveUnavailable, parse, query
from tests.archive_server import ArchiveServer, refused_url
from tests.conftest import DATA
from tests.test_upload import upload

GAIA_ANSWER = DATA / "archive" / "gaia-dr3-gaia_source-two-stars.vot"


@pytest.fixture
def saved_gaia():
    """The two stars of the saved Gaia archive answer, read straight from the VOTable."""
    return Table.read(GAIA_ANSWER, format="votable")


@pytest.fixture
def fast_retries(settings):
    settings.ARCHIVE_ATTEMPTS = 2
    settings.ARCHIVE_BACKOFF = 0.01
    settings.ARCHIVE_TIMEOUT = 0.5
    return settings


def gaia_remote(settings, url):
    settings.REFERENCE_SOURCES = {"GaiaDR3": "remote"}
    settings.ARCHIVE_URLS = {**settings.ARCHIVE_URLS, "gaia": url}


def test_saved_gaia_answer_parses_through_the_gaia_column_map(saved_gaia):
    stars = parse(ARCHIVES["GaiaDR3"], saved_gaia)
    assert stars.source_id.tolist() == [4583627001381815936, 5348723816842275584]
    assert np.allclose(stars.ra, np.asarray(saved_gaia["ra"]))
    assert np.allclose(stars.mag["G"], np.asarray(saved_gaia["phot_g_mean_mag"]))
    # Gaia gives flux over its error: the magnitude error is derived, small for these bright stars.
    assert np.all((stars.err["G"] > 0.0027) & (stars.err["G"] < 0.01))
    assert set(stars.mag) == {"G", "BP", "RP"}


def test_the_query_asks_the_cone_without_a_row_limit_below_the_maxrec(settings, saved_gaia, fast_retries):
    with ArchiveServer("serve", GAIA_ANSWER) as archive:
        settings.ARCHIVE_URLS = {**settings.ARCHIVE_URLS, "gaia": archive.url}
        table = query(ARCHIVES["GaiaDR3"], 268.0, -30.0, 0.25)
    assert len(table) == 2
    (asked,) = archive.requests
    assert asked["path"] == "/tap/sync" and asked["LANG"] == "ADQL" and asked["REQUEST"] == "doQuery"
    assert asked["MAXREC"] == str(settings.ARCHIVE_MAXREC)
    assert asked["agent"].startswith("gsafollowup (python-pyvo/")
    assert "CIRCLE('ICRS', 268.0, -30.0, 0.25)" in asked["QUERY"] and "gaiadr3.gaia_source" in asked["QUERY"]


@pytest.mark.django_db
def test_a_field_is_fetched_once_then_served_from_the_database(settings, saved_gaia, fast_retries):
    ra, dec = float(saved_gaia["ra"][0]), float(saved_gaia["dec"][0])
    with ArchiveServer("serve", GAIA_ANSWER) as archive:
        gaia_remote(settings, archive.url)
        first = cone(ra, dec, 0.25)
        assert len(archive.requests) == 1
        second = cone(ra, dec, 0.25)
        assert len(archive.requests) == 1, "a covered field must not call the archive"
        # A cone 20' away is only partly covered: the archive is asked again, and the star
        # of the pixels fetched before is not stored a second time.
        cone(ra, dec + 20 / 60, 0.25)
        assert len(archive.requests) == 2
    for found in (first, second):
        (gaia,) = found
        assert gaia.survey == "GaiaDR3" and gaia.source_id.tolist() == [4583627001381815936]
        assert gaia.mag["G"][0] == pytest.approx(float(saved_gaia["phot_g_mean_mag"][0]), abs=1e-5)
        assert found.missing == {}
    catalog = ReferenceCatalog.objects.get(survey="GaiaDR3")
    assert ReferenceStar.objects.filter(catalog=catalog).count() == catalog.stars == 1
    # The archive answer also held a star far away: stored only if its pixel was asked for.
    assert CoveredPixel.objects.filter(catalog=catalog).count() > 90
    assert COVERAGE_ORDER == 10


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("behaviour", "reason"),
    [("refused", "connection refused"), ("error", "HTTP 500"), ("slow", "no answer in time")],
)
def test_an_archive_down_is_retried_then_named_as_missing(settings, fast_retries, behaviour, reason):
    if behaviour == "refused":
        gaia_remote(settings, refused_url())
        found = cone(268.0, -30.0, 0.25)
        asked = None
    else:
        with ArchiveServer(behaviour, GAIA_ANSWER, delay=1.5) as archive:
            gaia_remote(settings, archive.url)
            found = cone(268.0, -30.0, 0.25)
            asked = len(archive.requests)
    assert list(found) == []
    message = found.missing["GaiaDR3"]
    assert "unavailable after 2 attempts" in message and reason in message
    if asked is not None:
        assert asked == 2
    # Nothing is recorded as covered, so the next upload asks again.
    assert not CoveredPixel.objects.exists()


@pytest.mark.django_db
def test_an_answer_without_the_survey_columns_is_refused_not_cached(settings, fast_retries):
    # A real VizieR answer of another catalog (astroquery's test data) where APASS was expected.
    answer = DATA / "archive" / "vizier-J_ApJ_706_83-ysos.xml"
    settings.REFERENCE_SOURCES = {"APASS": "remote"}
    with ArchiveServer("serve", answer) as archive:
        settings.ARCHIVE_URLS = {**settings.ARCHIVE_URLS, "vizier": archive.url}
        found = cone(83.8, -5.4, 0.25, ["APASS"])
    assert list(found) == [] and "lacks the position column" in found.missing["APASS"]
    assert not ReferenceCatalog.objects.filter(survey="APASS").exists()


def test_a_truncated_answer_is_refused(settings, fast_retries):
    settings.ARCHIVE_MAXREC = 2
    with ArchiveServer("serve", GAIA_ANSWER) as archive:
        settings.ARCHIVE_URLS = {**settings.ARCHIVE_URLS, "gaia": archive.url}
        with pytest.raises(ArchiveUnavailable, match="cut at 2 rows"):
            query(ARCHIVES["GaiaDR3"], 268.0, -30.0, 0.25)


def test_a_bad_source_setting_is_named(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.REFERENCE_SOURCES = {"PS1": "ftp"}
    with pytest.raises(ImproperlyConfigured, match="PS1"):
        source_of("PS1")
    settings.REFERENCE_SOURCES = {"PS1": "hats:/data/ps1"}
    assert source_of("PS1") == "hats:/data/ps1" and source_of("APASS") == "database"


@pytest.mark.django_db
def test_calibration_goes_on_without_a_survey_whose_archive_is_down(
    settings, fast_retries, observatory, star_alert, client, media
):
    gaia_remote(settings, refused_url())
    _, hashtag = observatory
    response = upload(client, hashtag, dryRun="1")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["survey"] == "APASS" and body["npoints"] > 150
    assert list(body["missing_surveys"]) == ["GaiaDR3"]
    assert "unavailable" in body["missing_surveys"]["GaiaDR3"]


@pytest.mark.django_db
def test_no_survey_answering_is_a_503_for_the_observer(settings, fast_retries, observatory, client, media):
    from alerts.models import Alert

    Alert.objects.create(ivorn="ivo://demo/GRB210605A field star", ra=24.088671351, dec=-48.679764368)
    gaia_remote(settings, refused_url())
    _, hashtag = observatory
    response = upload(client, hashtag, dryRun="1")
    assert response.status_code == 503, response.content
    assert "source of GaiaDR3 is unavailable; try again later" in response.content.decode()


@pytest.mark.django_db
def test_prewarm_fetches_each_field_once_and_reports_per_survey(settings, saved_gaia, fast_retries, tmp_path):
    from io import StringIO

    from django.core.management import CommandError, call_command

    from alerts.models import Alert

    for k in range(2):
        Alert.objects.create(
            ivorn=f"ivo://test/star{k}", ra=float(saved_gaia["ra"][k]), dec=float(saved_gaia["dec"][k])
        )
    Alert.objects.create(ivorn="ivo://test/empty", ra=100.0, dec=-20.0)
    listing = tmp_path / "alerts.txt"
    listing.write_text("# fields of tonight\nivo://test/star0\nivo://test/empty\n")
    with ArchiveServer("serve", GAIA_ANSWER) as archive:
        gaia_remote(settings, archive.url)
        out = StringIO()
        call_command("prewarm_fields", "--alerts", "all", "--radius", "0.25", stdout=out)
        assert (
            "GaiaDR3: 2 stars stored from 3 fields fetched, 0 fields already covered, 0 failed"
            in out.getvalue()
        )
        assert len(archive.requests) == 3
        out = StringIO()
        call_command("prewarm_fields", "--file", str(listing), "--radius", "0.25", stdout=out)
        assert (
            "GaiaDR3: 0 stars stored from 0 fields fetched, 2 fields already covered, 0 failed"
            in out.getvalue()
        )
        assert len(archive.requests) == 3
    Alert.objects.create(ivorn="ivo://test/new", ra=200.0, dec=10.0)
    gaia_remote(settings, refused_url())
    err = StringIO()
    with pytest.raises(CommandError, match="1 field fetches failed"):
        call_command(
            "prewarm_fields",
            "--alerts",
            "ivo://test/new",
            "ivo://test/star1",
            "--radius",
            "0.25",
            stdout=StringIO(),
            stderr=err,
        )
    assert "GaiaDR3 ivo://test/new: The GaiaDR3 archive" in err.getvalue()
    with pytest.raises(CommandError, match="Unknown alert"):
        call_command("prewarm_fields", "--alerts", "ivo://test/none", stdout=StringIO())


@pytest.mark.postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_workers_fetching_one_field_store_its_stars_once(settings, saved_gaia, fast_retries):
    import threading

    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("concurrency is tested on PostgreSQL")
    settings.ARCHIVE_TIMEOUT = 5
    ra, dec = float(saved_gaia["ra"][0]), float(saved_gaia["dec"][0])
    barrier = threading.Barrier(2)
    found = []
    # The archive answers after 0.3 s, so both workers see the field uncovered and both fetch it.
    with ArchiveServer("slow", GAIA_ANSWER, delay=0.3) as archive:
        gaia_remote(settings, archive.url)

        def worker():
            barrier.wait()
            try:
                found.append(cone(ra, dec, 0.25))
            finally:
                connection.close()

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(archive.requests) == 2
    assert [[s.source_id.tolist() for s in f] for f in found] == [[[4583627001381815936]]] * 2
    catalog = ReferenceCatalog.objects.get(survey="GaiaDR3")
    assert ReferenceStar.objects.filter(catalog=catalog).count() == catalog.stars == 1


@pytest.mark.django_db
def test_a_survey_loaded_from_files_is_not_extended_from_the_archive(settings, apass, fast_retries):
    from tests.conftest import STAR_DEC, STAR_RA

    with ArchiveServer("serve", GAIA_ANSWER) as archive:
        settings.REFERENCE_SOURCES = {"APASS": "remote"}
        settings.ARCHIVE_URLS = {**settings.ARCHIVE_URLS, "vizier": archive.url}
        (found,) = cone(STAR_RA, STAR_DEC, 0.25)
    assert archive.requests == [] and found.survey == "APASS" and len(found) > 100


@pytest.mark.django_db
def test_a_cone_too_wide_for_the_archive_is_named_not_fetched(settings, fast_retries):
    with ArchiveServer("serve", GAIA_ANSWER) as archive:
        gaia_remote(settings, archive.url)
        found = cone(268.0, -30.0, 10.0)
    assert archive.requests == [] and "wider than 2.0 deg" in found.missing["GaiaDR3"]


def test_reference_sources_come_from_the_environment_and_are_checked_at_start(tmp_path):
    from tests.test_settings import manage

    database = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    code = "from django.conf import settings; print(settings.REFERENCE_SOURCES)"
    sources = "GaiaDR3=remote, PS1=hats:https://data.example.org/hats/ps1"
    result = manage("shell", "-c", code, DEBUG="1", DATABASE_URL=database, REFERENCE_SOURCES=sources)
    assert result.stdout.strip().splitlines()[-1] == (
        "{'GaiaDR3': 'remote', 'PS1': 'hats:https://data.example.org/hats/ps1'}"
    )
    result = manage("check", DEBUG="1", DATABASE_URL=database, REFERENCE_SOURCES="Gaia=remote,PS1=ftp")
    assert result.returncode != 0
    assert "calibration.E001" in result.stderr and "'Gaia'" in result.stderr
    assert "calibration.E002" in result.stderr and "'ftp'" in result.stderr


# Real VizieR answers of APASS DR9 and ATLAS-RefCat2 for a 10' cone on EY UMa, as astroquery
# returned them and stellarphot saved them (tests/data/archive/README.md).
EY_UMA = (135.5509, 49.842891)
VIZIER_ANSWERS = {
    "APASS": (
        DATA / "archive" / "vizier-II_336_apass9-ey-uma.ecsv",
        {"V": "Vmag", "g": "g'mag", "i": "i'mag"},
    ),
    "RefCat2": (
        DATA / "archive" / "vizier-J_ApJ_867_105_refcat2-ey-uma.ecsv",
        {"g": "gmag", "z": "zmag", "J": "Jmag"},
    ),
}


def column(table, name) -> np.ndarray:
    return np.ma.filled(np.ma.asarray(table[name], dtype=float), np.nan)


@pytest.mark.parametrize("survey", sorted(VIZIER_ANSWERS))
def test_saved_vizier_answers_parse_through_the_survey_column_map(survey):
    path, bands = VIZIER_ANSWERS[survey]
    saved = Table.read(path, format="ascii.ecsv")
    assert saved.meta["name"] == ARCHIVES[survey].table
    stars = parse(ARCHIVES[survey], saved)
    archive_format = ARCHIVES[survey].format
    ra_name, dec_name = archive_format.columns()["ra"], archive_format.columns()["dec"]
    assert np.allclose(stars.ra, column(saved, ra_name)) and np.allclose(stars.dec, column(saved, dec_name))
    assert set(stars.mag) == set(archive_format.bands)
    for band, name in bands.items():
        expected = column(saved, name)
        # Masked (empty) VizieR cells are missing magnitudes, never zeros.
        assert np.array_equal(np.isnan(stars.mag[band]), np.isnan(expected)), band
        assert np.allclose(stars.mag[band], expected, equal_nan=True), band
        assert np.allclose(stars.err[band], column(saved, f"e_{name}"), equal_nan=True), band
    if survey == "RefCat2":
        assert np.isnan(stars.mag["J"]).sum() == 54  # stars without 2MASS photometry


@pytest.mark.django_db
@pytest.mark.parametrize("survey", sorted(VIZIER_ANSWERS))
# VizieR's names such as g'mag are not valid VOTable IDs: astropy derives IDs and says so.
@pytest.mark.filterwarnings("ignore::astropy.io.votable.exceptions.W03")
def test_a_real_vizier_answer_fetched_over_tap_is_stored_and_then_served_locally(
    settings, fast_retries, tmp_path, survey
):
    """The saved table goes back on the wire as a VOTable (written by astropy here) to pyvo."""
    path, bands = VIZIER_ANSWERS[survey]
    saved = Table.read(path, format="ascii.ecsv")
    answer = tmp_path / "answer.vot"
    saved.write(answer, format="votable")
    settings.REFERENCE_SOURCES = {survey: "remote"}
    radius = 9.5 / 60  # inside the saved 10' cone
    with ArchiveServer("serve", answer) as archive:
        settings.ARCHIVE_URLS = {**settings.ARCHIVE_URLS, "vizier": archive.url}
        first = cone(*EY_UMA, radius, [survey])
        second = cone(*EY_UMA, radius, [survey])
    assert len(archive.requests) == 1, "the second cone is served from the database"
    assert f'FROM "{ARCHIVES[survey].table}"' in archive.requests[0]["QUERY"]
    fmt = ARCHIVES[survey].format.columns()
    where = SkyCoord(column(saved, fmt["ra"]) * u.deg, column(saved, fmt["dec"]) * u.deg)
    inside = where.separation(SkyCoord(*EY_UMA, unit="deg")).deg < radius
    for found in (first, second):
        (stars,) = found
        assert found.missing == {}
        assert len(stars.ra) == inside.sum() > 40
        order = np.lexsort((stars.dec, stars.ra))
        expected_order = np.lexsort((column(saved, fmt["dec"])[inside], column(saved, fmt["ra"])[inside]))
        for band, name in bands.items():
            expected = column(saved, name)[inside][expected_order]
            assert np.allclose(stars.mag[band][order], expected, atol=1e-4, equal_nan=True), band
    # Stored: the answer's stars in the coverage pixels fetched, which reach past the cone.
    assert inside.sum() <= ReferenceCatalog.objects.get(survey=survey).stars <= len(saved)
