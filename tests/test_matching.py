"""Cross-match: offset removal, automatic radius, mutual nearest neighbours, RA wrap and poles."""

import numpy as np
import pytest

from calibration.matching import MAX_RADIUS_ARCSEC, MIN_RADIUS_ARCSEC, CatalogIndex
from calibration.sky import ARCSEC, radec, tangent_basis, unit_vectors


def field(ra0, dec0, n=200, radius_deg=0.1, seed=1):
    """Random sky positions in a disc around (ra0, dec0), built on the tangent plane."""
    rng = np.random.default_rng(seed)
    east, north = tangent_basis(ra0, dec0)
    r = np.sqrt(rng.uniform(0, 1, n)) * np.radians(radius_deg)
    angle = rng.uniform(0, 2 * np.pi, n)
    centre = unit_vectors([ra0], [dec0])[0]
    return centre, east, north, r * np.cos(angle), r * np.sin(angle), rng


def shifted(centre, east, north, xi, eta, d_east_arcsec, d_north_arcsec, noise_arcsec, rng):
    xi = xi + d_east_arcsec * ARCSEC + rng.normal(0, noise_arcsec * ARCSEC, len(xi))
    eta = eta + d_north_arcsec * ARCSEC + rng.normal(0, noise_arcsec * ARCSEC, len(eta))
    return radec(centre + np.outer(xi, east) + np.outer(eta, north))


@pytest.mark.parametrize(
    ("ra0", "dec0"),
    [(150.0, 20.0), (0.0, -30.0), (359.99, 45.0), (10.0, 89.95), (200.0, -90.0)],
    ids=["plain", "ra-zero", "ra-wrap", "near-north-pole", "south-pole"],
)
def test_offset_removed_and_all_stars_matched(ra0, dec0):
    centre, east, north, xi, eta, rng = field(ra0, dec0)
    ref_ra, ref_dec = shifted(centre, east, north, xi, eta, 0, 0, 0.1, rng)
    # The catalog's WCS is off by (+2.0, -1.5) arcsec: references sit at minus that.
    cat_ra, cat_dec = shifted(centre, east, north, xi, eta, 2.0, -1.5, 0.1, rng)
    index = CatalogIndex(cat_ra, cat_dec)
    match = index.match(ref_ra, ref_dec)
    if abs(dec0) < 89:
        assert match.offset_east_arcsec == pytest.approx(-2.0, abs=0.05)
        assert match.offset_north_arcsec == pytest.approx(1.5, abs=0.05)
    # At a pole "East" depends on the RA chosen for the centre; the size of the offset does not.
    assert np.hypot(match.offset_east_arcsec, match.offset_north_arcsec) == pytest.approx(2.5, abs=0.05)
    assert MIN_RADIUS_ARCSEC <= match.radius_arcsec <= MAX_RADIUS_ARCSEC and match.automatic_radius
    assert len(match) == len(ref_ra)
    np.testing.assert_array_equal(match.cat_index, match.ref_index)  # same order in both lists
    assert np.median(match.separation_arcsec) < 0.3


def test_explicit_radius_is_used():
    centre, east, north, xi, eta, rng = field(40.0, 10.0)
    ref_ra, ref_dec = shifted(centre, east, north, xi, eta, 0, 0, 0.0, rng)
    cat_ra, cat_dec = shifted(centre, east, north, xi, eta, 0, 0, 0.5, rng)
    match = CatalogIndex(cat_ra, cat_dec).match(ref_ra, ref_dec, radius_arcsec=0.3)
    assert match.radius_arcsec == 0.3 and not match.automatic_radius
    assert np.all(match.separation_arcsec <= 0.3)
    assert 0 < len(match) < len(ref_ra)
    automatic = CatalogIndex(cat_ra, cat_dec).match(ref_ra, ref_dec, radius_arcsec=-1)
    assert automatic.automatic_radius


def test_only_mutual_nearest_neighbours_are_paired():
    # Two catalog sources 0.6" apart around one reference star: only the closer one is paired,
    # and a second reference near that same source does not steal it.
    ra0 = 100.0
    step = 1 / 3600
    cat_ra = np.array([ra0, ra0 + 0.6 * step])
    ref_ra = np.array([ra0 + 0.1 * step, ra0 + 0.45 * step])
    match = CatalogIndex(cat_ra, np.zeros(2)).match(ref_ra, np.zeros(2), radius_arcsec=1.0)
    pairs = set(zip(match.cat_index.tolist(), match.ref_index.tolist(), strict=True))
    assert pairs == {(0, 0), (1, 1)}
    lone = CatalogIndex(cat_ra[:1], np.zeros(1)).match(ref_ra, np.zeros(2), radius_arcsec=1.0)
    assert lone.ref_index.tolist() == [0]


def test_nearest_source_after_the_offset():
    centre, east, north, xi, eta, rng = field(359.995, -10.0)
    ref_ra, ref_dec = shifted(centre, east, north, xi, eta, 0, 0, 0.05, rng)
    cat_ra, cat_dec = shifted(centre, east, north, xi, eta, 2.5, 0.0, 0.05, rng)
    index = CatalogIndex(cat_ra, cat_dec)
    match = index.match(ref_ra, ref_dec)
    offset = (match.offset_east_arcsec, match.offset_north_arcsec)
    found = index.nearest(ref_ra[7], ref_dec[7], offset, match.radius_arcsec)
    assert found.index == 7 and found.separation_arcsec < 0.3
    # Without the offset the 2.5" error would put the source outside a 1" radius.
    assert index.nearest(ref_ra[7], ref_dec[7], (0.0, 0.0), 1.0).index is None
    ra, dec = index.corrected_position(7, offset)
    assert abs(((ra - ref_ra[7] + 180) % 360 - 180) * np.cos(np.radians(dec))) * 3600 < 0.3
    assert abs(dec - ref_dec[7]) * 3600 < 0.3


def test_no_overlap_gives_an_empty_match():
    _, _, _, xi, _, _ = field(10.0, 10.0)
    index = CatalogIndex(10 + xi, np.full(len(xi), 10.0))
    match = index.match(np.array([200.0, 200.1]), np.array([-40.0, -40.0]))
    assert len(match) == 0 and match.first_pairs == 0
