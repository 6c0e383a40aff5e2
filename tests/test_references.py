"""The cone query equals a brute-force angular-separation filter, across RA 0/360 and at the poles."""

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calibration.ingest import ingest_refcat
from calibration.models import ReferenceStar
from calibration.references import (
    MAX_RANGES,
    PIXELS_PER_RADIUS,
    SKY_DEG2,
    cone,
    healpix_index,
    loaded_surveys,
    pixel_ranges,
    search_order,
)
from gsafollowup.errors import BadInput

#: Places where stars crowd: RA wrap, both poles, and an ordinary field.
CLUSTERS = [(0.0, 0.0), (359.9, 45.0), (120.0, 89.9), (300.0, -89.95), (24.0, -48.7)]
COLUMNS = "ra=ra,dec=dec,source_id=id,V=v,V_err=v_err,B=b,B_err=b_err"


def synthetic_stars(seed=1, per_cluster=1500, all_sky=4000):
    """Positions spread over the sky and crowded into the clusters (within 2 degrees)."""
    rng = np.random.default_rng(seed)
    ra = [rng.uniform(0, 360, all_sky)]
    dec = [np.degrees(np.arcsin(rng.uniform(-1, 1, all_sky)))]
    for ra0, dec0 in CLUSTERS:
        centre = SkyCoord(ra0, dec0, unit="deg")
        moved = centre.directional_offset_by(
            rng.uniform(0, 360, per_cluster) * u.deg, 2.0 * np.sqrt(rng.uniform(0, 1, per_cluster)) * u.deg
        )
        ra.append(moved.ra.deg)
        dec.append(moved.dec.deg)
    return np.concatenate(ra), np.concatenate(dec)


@pytest.fixture(scope="module")
def star_file(tmp_path_factory):
    """A generic CSV of synthetic stars with ids, V and B (B missing for every fifth star)."""
    ra, dec = synthetic_stars()
    rng = np.random.default_rng(2)
    path = tmp_path_factory.mktemp("cone") / "stars.csv"
    with open(path, "w") as handle:
        handle.write("id,ra,dec,v,v_err,b,b_err\n")
        for k, (a, d) in enumerate(zip(ra, dec, strict=True)):
            v = rng.uniform(10, 18)
            b = "" if k % 5 == 0 else f"{v + 0.6:.3f}"
            handle.write(f"{k + 1},{float(a)!r},{float(d)!r},{v:.3f},0.02,{b},{'0.03' if b else ''}\n")
    return path


@pytest.fixture
def stars(db, star_file):
    """The synthetic stars loaded as APASS; returns their (id, ra, dec) from the database."""
    ingest_refcat("APASS", star_file, columns=COLUMNS)
    rows = np.array(ReferenceStar.objects.values_list("source_id", "ra", "dec"))
    return rows[:, 0].astype(np.int64), rows[:, 1], rows[:, 2]


@pytest.fixture(params=["coarse", "fine"])
def fineness(request, monkeypatch):
    """Search with the coarse pixels of sparse catalogs, or with the fine ones of dense catalogs."""
    monkeypatch.setattr("calibration.references.FEW_ROWS", 1e12 if request.param == "coarse" else 0)
    return request.param


def brute_force(stars, ra, dec, radius):
    """Ids of the stars within radius of (ra, dec), by astropy's separation."""
    ids, ras, decs = stars
    separation = SkyCoord(ras, decs, unit="deg").separation(SkyCoord(ra, dec, unit="deg")).deg
    return set(ids[separation <= radius].tolist())


def cone_ids(ra, dec, radius, surveys=None):
    found = cone(ra, dec, radius, surveys)
    assert len(found) <= 1
    return set(found[0].source_id.tolist()) if found else set()


RADII = [0.0, 1e-6, 0.001, 0.01, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 45.0, 120.0, 180.0]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    centre=st.one_of(
        st.tuples(st.floats(0, 360, exclude_max=True), st.floats(-90, 90)),
        st.sampled_from(CLUSTERS).flatmap(
            lambda c: st.tuples(
                st.floats(c[0] - 2, c[0] + 2).map(lambda a: a % 360),
                st.floats(max(-90, c[1] - 2), min(90, c[1] + 2)),
            )
        ),
        st.tuples(st.floats(0, 360, exclude_max=True), st.sampled_from([90.0, -90.0, 89.99, -89.99, 0.0])),
    ),
    radius=st.one_of(st.sampled_from(RADII), st.floats(0, 3)),
)
def test_cone_equals_brute_force(stars, fineness, centre, radius):
    ra, dec = centre
    assert cone_ids(ra, dec, radius) == brute_force(stars, ra, dec, radius)


@pytest.mark.parametrize(
    ("ra", "dec", "radius"),
    [
        (0.0, 0.0, 0.25),  # straddles RA 0/360
        (359.999, 0.5, 1.0),
        (0.001, 45.0, 0.5),  # the cluster at 359.9, seen from the other side of RA 0
        (0.0, 90.0, 0.25),  # north pole: every RA
        (200.0, 89.9, 0.3),  # the cone contains the pole
        (0.0, -90.0, 0.1),  # south pole
        (10.0, -89.95, 0.2),
        (24.0, -48.7, 0.25),  # the 15' cone of the benchmark
        (24.0, -48.7, 180.0),  # the whole sky
    ],
)
def test_cone_edge_positions(stars, fineness, ra, dec, radius):
    expected = brute_force(stars, ra, dec, radius)
    assert expected, "the edge case should hold stars"
    assert cone_ids(ra, dec, radius) == expected


def test_radius_edges_are_inclusive_and_exact(db, tmp_path):
    # Stars on the meridian of the centre, at exact offsets in Dec.
    path = tmp_path / "edge.csv"
    offsets = [0.0, 0.25 - 1e-9, 0.25, 0.25 + 1e-9, 0.5]
    path.write_text(
        "id,ra,dec,v,v_err\n"
        + "".join(f"{k + 1},10.0,{20.0 + o!r},15.0,0.01\n" for k, o in enumerate(offsets))
    )
    ingest_refcat("APASS", path, columns="ra=ra,dec=dec,source_id=id,V=v,V_err=v_err")
    ids, ras, decs = np.array(ReferenceStar.objects.values_list("source_id", "ra", "dec")).T
    stars = (ids.astype(np.int64), ras, decs)
    assert cone_ids(10.0, 20.0, 0.0) == {1}
    for radius in (0.0, 0.25 - 1e-9, 0.25, 0.25 + 1e-9, 0.5, 1e-12):
        assert cone_ids(10.0, 20.0, radius) == brute_force(stars, 10.0, 20.0, radius)
    assert cone_ids(10.0, 20.0, 0.2) == {1}
    assert cone_ids(10.0, 20.0, 0.3) == {1, 2, 3, 4}


def test_cone_returns_arrays_per_survey(stars, tmp_path):
    path = tmp_path / "gaia.csv"
    path.write_text(
        "source_id,ra,dec,phot_g_mean_mag,phot_g_mean_flux_over_error\n"
        "4929674402079551433,24.01,-48.7,15.2,1000\n"
        "4929674402079551434,24.5,-48.7,15.3,1000\n"
    )
    ingest_refcat("GaiaDR3", path)
    found = cone(24.0, -48.7, 0.25)
    assert [s.survey for s in found] == ["APASS", "GaiaDR3"]
    apass, gaia = found
    assert set(apass.mag) == {"B", "V"} == set(apass.err)
    for array in (apass.ra, apass.dec, apass.mag["V"], apass.err["B"]):
        assert isinstance(array, np.ndarray) and array.dtype == np.float64 and len(array) == len(apass)
    assert np.isnan(apass.mag["B"]).any() and not np.isnan(apass.mag["V"]).any()
    assert gaia.source_id.tolist() == [4929674402079551433]
    assert gaia.bands() == ["G"]
    assert set(gaia.mag) == {"G"}  # the catalog holds only the bands its files gave
    assert [s.survey for s in cone(24.0, -48.7, 0.25, surveys=["GaiaDR3"])] == ["GaiaDR3"]
    assert cone(24.0, -48.7, 0.25, surveys=["SDSS"]) == []
    assert cone(24.0, -48.7, 0.25, surveys=[]) == []


def test_cone_of_an_empty_database_and_of_an_empty_sky(db, stars):
    assert cone(180.0, 10.0, 1e-5) == []


def test_cone_refuses_bad_arguments(db):
    for args in [("x", 0, 1), (0, 91, 1), (0, 0, -1), (0, 0, 181), (float("nan"), 0, 1)]:
        with pytest.raises(BadInput):
            cone(*args)
    with pytest.raises(BadInput, match="Unknown survey"):
        cone(0, 0, 1, surveys=["USNO"])


def test_loaded_surveys(stars):
    (apass,) = loaded_surveys()
    assert apass["survey"] == "APASS"
    assert apass["bands"] == ["B", "V"]
    assert apass["stars"] == len(stars[0])
    # 4,000 stars over the sky fill a few thousand 0.05 deg^2 pixels; the clusters add ~60 deg^2.
    assert 100 < apass["coverage_deg2"] < 300


def test_fifteen_arcmin_cone_uses_few_ranges():
    assert search_order(0.25, PIXELS_PER_RADIUS) == 11
    rng = np.random.default_rng(3)
    for _ in range(200):
        ra, dec = rng.uniform(0, 360), np.degrees(np.arcsin(rng.uniform(-1, 1)))
        low, high = pixel_ranges(ra, dec, 0.25)
        assert len(low) <= 40 and np.all(low <= high) and np.all(high[:-1] < low[1:])
        # The ranges cover at most ~1.4 times the cone (1.26 typically).
        assert (high - low + 1).sum() * SKY_DEG2 / (12 * 4**16) < 1.4 * np.pi * 0.25**2
    low, high = pixel_ranges(0.0, 0.0, 180.0)
    assert len(low) <= MAX_RANGES


@settings(max_examples=300, deadline=None)
@given(
    ra=st.floats(0, 360, exclude_max=True),
    dec=st.one_of(st.floats(-90, 90), st.sampled_from([90.0, -90.0, 89.999, -89.999, 41.81, -41.81, 0.0])),
    radius=st.one_of(st.floats(1e-5, 20), st.sampled_from([0.25, 1 / 60, 1.0])),
)
def test_pixel_ranges_hold_the_edge_of_the_cone(ra, dec, radius):
    # Points just inside the edge of the cone are where a pixel search misses pixels.
    angles = np.linspace(0, 360, 720, endpoint=False) * u.deg
    edge = SkyCoord(ra, dec, unit="deg").directional_offset_by(angles, radius * (1 - 1e-9) * u.deg)
    pixels = healpix_index(edge.ra.deg, edge.dec.deg)
    low, high = pixel_ranges(ra, dec, radius)
    slot = np.searchsorted(low, pixels, side="right") - 1
    assert np.all((slot >= 0) & (pixels <= high[slot]))
