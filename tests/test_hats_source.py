"""The HATS source: a small HATS catalog built with hats-import from the real APASS extract during the
test run, read through the same cone() as the database, and compared with the database path."""

import numpy as np
import pytest
from django.core.management import call_command

from calibration.references import cone
from tests.conftest import APASS, STAR_DEC, STAR_RA


@pytest.fixture(scope="session")
def apass_hats(tmp_path_factory):
    """The APASS extract (2,865 stars) as a HATS catalog, partitioned at up to 1,000 stars a file."""
    from dask.distributed import Client
    from hats_import.catalog.arguments import ImportArguments
    from hats_import.pipeline import pipeline_with_client

    root = tmp_path_factory.mktemp("hats")
    arguments = ImportArguments(
        output_artifact_name="apass_dr10",
        input_file_list=[str(APASS)],
        file_reader="csv",
        ra_column="radeg",
        dec_column="decdeg",
        output_path=str(root),
        pixel_threshold=1000,
        highest_healpix_order=8,
        progress_bar=False,
        resume=False,
        tmp_dir=str(root / "tmp"),
    )
    with Client(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as client:
        pipeline_with_client(arguments, client)
    return root / "apass_dr10"


def by_position(stars):
    order = np.lexsort((stars.dec, stars.ra))
    return stars.ra[order], stars.dec[order], {b: stars.mag[b][order] for b in stars.mag}, order


@pytest.mark.django_db
@pytest.mark.parametrize("radius", [0.05, 0.25, 0.6])
def test_hats_cone_gives_the_stars_and_magnitudes_of_the_database(settings, apass_hats, radius):
    from io import StringIO

    call_command("ingest_refcat", "APASS", str(APASS), stdout=StringIO())
    (database,) = cone(STAR_RA, STAR_DEC, radius)
    settings.REFERENCE_SOURCES = {"APASS": f"hats:{apass_hats}"}
    found = cone(STAR_RA, STAR_DEC, radius)
    assert found.missing == {}
    (hats,) = found
    assert hats.survey == "APASS" and len(hats) == len(database) > 0
    ra_h, dec_h, mag_h, order_h = by_position(hats)
    ra_d, dec_d, mag_d, order_d = by_position(database)
    assert np.array_equal(ra_h, ra_d) and np.array_equal(dec_h, dec_d)
    assert set(hats.bands()) == set(database.bands())
    for band in database.bands():
        # The database keeps 4-byte floats; the HATS Parquet the CSV's 8-byte values.
        assert np.array_equal(mag_h[band].astype(np.float32), mag_d[band].astype(np.float32), equal_nan=True)
        assert np.array_equal(
            hats.err[band][order_h].astype(np.float32),
            database.err[band][order_d].astype(np.float32),
            equal_nan=True,
        )


@pytest.mark.django_db
def test_hats_cone_outside_the_catalog_is_empty(settings, apass_hats):
    settings.REFERENCE_SOURCES = {"APASS": f"hats:{apass_hats}"}
    found = cone(180.0, 30.0, 0.25)
    assert list(found) == [] and found.missing == {}


@pytest.mark.django_db
def test_a_missing_hats_catalog_is_named_and_the_rest_goes_on(settings, tmp_path):
    settings.REFERENCE_SOURCES = {"PS1": f"hats:{tmp_path / 'nowhere'}"}
    found = cone(STAR_RA, STAR_DEC, 0.25)
    assert "PS1" in found.missing and "cannot be opened" in found.missing["PS1"]


@pytest.mark.django_db
def test_a_hats_catalog_of_another_survey_is_refused(settings, apass_hats):
    settings.REFERENCE_SOURCES = {"GaiaDR3": f"hats:{apass_hats}"}
    found = cone(STAR_RA, STAR_DEC, 0.25, ["GaiaDR3"])
    assert list(found) == [] and "no columns of a GaiaDR3 format" in found.missing["GaiaDR3"]


@pytest.mark.django_db
def test_a_hats_catalog_over_http_gives_the_same_stars_and_a_storage_outage_is_named(settings, apass_hats):
    from tests.archive_server import StaticServer

    settings.REFERENCE_SOURCES = {"APASS": f"hats:{apass_hats}"}
    (local,) = cone(STAR_RA, STAR_DEC, 0.25)
    with StaticServer(apass_hats.parent) as storage:
        settings.REFERENCE_SOURCES = {"APASS": f"hats:{storage.url(apass_hats.name)}"}
        (remote,) = cone(STAR_RA, STAR_DEC, 0.25)
        assert storage.requests > 0
        assert np.array_equal(np.sort(remote.ra), np.sort(local.ra))
        assert np.array_equal(np.sort(remote.mag["V"]), np.sort(local.mag["V"]), equal_nan=True)
        storage.down()
        found = cone(STAR_RA, STAR_DEC, 0.25)
    assert list(found) == [] and "cannot be read" in found.missing["APASS"]
