"""Fits, band choice, forceFilter, target measurement and limits of the calibration core."""

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calibration.benchmark import LIMIT_MAG, Scenario, apass_reference_set, make_frame
from calibration.catalogs import SourceCatalog, read_catalog
from calibration.photometry import (
    ALGORITHM_VERSION,
    ForceFilter,
    calibrate,
    detection_limit,
    fit_band,
    half_sample_mode,
    parse_force_filter,
)
from calibration.surveys import ReferenceSet
from gsafollowup.errors import BadInput, CalibrationImpossible

DATA = Path(__file__).parent / "data"


def stars(seed=0, n=80, zp=25.0, colour_term=0.0, sigma_int=0.02, err_scale=1.0, colours=True):
    """Synthetic calibrators: (ref_mag, ref_err, inst_mag, inst_err, colour, colour_err)."""
    rng = np.random.default_rng(seed)
    ref_mag = rng.uniform(13, 19, n)
    inst_err = 0.003 + 0.05 * 10 ** (0.4 * (ref_mag - 19))
    ref_err = np.full(n, 0.01)
    colour = rng.normal(0.7, 0.3, n)
    true_y = zp + colour_term * (colour - 0.7) + rng.normal(0, sigma_int, n)
    inst_mag = ref_mag - true_y + rng.normal(0, err_scale * inst_err) - rng.normal(0, ref_err)
    return ref_mag, ref_err, inst_mag, inst_err, (colour if colours else None), np.full(n, 0.014)


# ---------------------------------------------------------------- robust start


def test_half_sample_mode_ignores_a_large_minority():
    rng = np.random.default_rng(3)
    values = np.concatenate((rng.normal(1.0, 0.01, 60), rng.uniform(1.2, 3.0, 40)))
    assert half_sample_mode(values) == pytest.approx(1.0, abs=0.01)
    assert half_sample_mode(np.array([1.0, 2.0])) == 1.5
    assert half_sample_mode(np.array([1.0, 1.1, 5.0])) == pytest.approx(1.05)


# ---------------------------------------------------------------- one band


def test_fit_recovers_zero_point_colour_term_and_intrinsic_scatter():
    fit = fit_band(*stars(seed=1, n=200, colour_term=0.15, sigma_int=0.03))
    assert fit.colour_fitted
    zp_at_pivot = 25.0 + 0.15 * (fit.pivot - 0.7)
    assert abs(fit.zeropoint - zp_at_pivot) < 4 * math.sqrt(fit.covariance[0, 0])
    assert abs(fit.colour_term - 0.15) < 4 * math.sqrt(fit.covariance[1, 1])
    assert math.sqrt(fit.covariance[1, 1]) < 0.02
    assert fit.sigma_int == pytest.approx(0.03, abs=0.008)
    assert fit.outlier_fraction < 0.03
    assert fit.covariance.shape == (2, 2) and np.all(np.linalg.eigvalsh(fit.covariance) > 0)


def test_constant_zero_point_without_colours_or_with_too_little_colour_spread():
    no_colour = fit_band(*stars(seed=2, colours=False))
    assert not no_colour.colour_fitted and no_colour.colour_term == 0.0
    assert no_colour.covariance[1, 1] == 0.0
    assert no_colour.zeropoint == pytest.approx(25.0, abs=0.01)
    ref_mag, ref_err, inst_mag, inst_err, _, colour_err = stars(seed=2)
    narrow = np.full(len(ref_mag), 0.5) + np.random.default_rng(0).normal(0, 0.02, len(ref_mag))
    assert not fit_band(ref_mag, ref_err, inst_mag, inst_err, narrow, colour_err).colour_fitted


def test_outliers_are_found_and_do_not_move_the_zero_point():
    ref_mag, ref_err, inst_mag, inst_err, colour, colour_err = stars(seed=4, n=100)
    bad = np.arange(0, 100, 3)  # a third of the stars, off by 0.3 to 2 mag either way
    inst_mag[bad] += np.where(bad % 2 == 0, 1, -1) * np.linspace(0.3, 2.0, len(bad))
    fit = fit_band(ref_mag, ref_err, inst_mag, inst_err, colour, colour_err)
    assert fit.zeropoint == pytest.approx(25.0, abs=0.01)
    flagged = np.nonzero(fit.inlier_probability < 0.5)[0]
    assert set(bad.tolist()) <= set(flagged.tolist())
    assert fit.outlier_fraction == pytest.approx(len(bad) / 100, abs=0.03)


def test_one_sided_blends_do_not_bias_the_zero_point_like_a_median():
    ref_mag, ref_err, inst_mag, inst_err, colour, colour_err = stars(seed=5, n=100, sigma_int=0.01)
    blended = np.arange(0, 100, 4)
    inst_mag[blended] -= 2.5 * np.log10(1 + np.linspace(0.1, 1.0, len(blended)))
    fit = fit_band(ref_mag, ref_err, inst_mag, inst_err, colour, colour_err)
    median = np.median(ref_mag - inst_mag)
    assert abs(fit.zeropoint - 25.0) < 0.004
    assert median - 25.0 > 2 * abs(fit.zeropoint - 25.0)


def test_error_scale_is_fitted_when_many_stars_determine_it():
    ref_mag, ref_err, inst_mag, inst_err, colour, colour_err = stars(
        seed=6, n=600, sigma_int=0.01, err_scale=2.0
    )
    fit = fit_band(ref_mag, ref_err, inst_mag, inst_err, colour, colour_err)
    assert fit.error_scale_fitted and fit.error_scale == pytest.approx(2.0, abs=0.3)
    few = fit_band(*stars(seed=6, n=15, err_scale=2.0))
    assert not few.error_scale_fitted and few.error_scale == 1.0


def test_slope_against_instrumental_magnitude_is_only_a_diagnostic():
    ref_mag, ref_err, inst_mag, inst_err, colour, colour_err = stars(seed=7, n=150, sigma_int=0.01)
    inst_mag = inst_mag + 0.02 * (ref_mag - 16)  # a non-linear detector
    fit = fit_band(ref_mag, ref_err, inst_mag, inst_err, colour, colour_err)
    assert fit.slope_diagnostic == pytest.approx(-0.02, abs=0.005)
    assert fit.zeropoint == pytest.approx(25.0, abs=0.03)


def test_prediction_with_a_known_colour_and_with_an_unknown_one():
    fit = fit_band(*stars(seed=8, n=120, colour_term=0.2))
    mag, stat, calib = fit.predict(-10.0, 0.02, colour=fit.pivot + 0.5)
    assert mag == pytest.approx(-10.0 + fit.zeropoint + 0.5 * fit.colour_term)
    assert stat == pytest.approx(0.02 * fit.error_scale)
    unknown = fit.predict(-10.0, 0.02)
    assert unknown[0] == pytest.approx(-10.0 + fit.zeropoint)
    # An unknown colour costs |C| times the spread of the calibrators' colours.
    assert unknown[2] > fit.colour_term * fit.colour_spread * 0.9 > calib


# ---------------------------------------------------------------- forceFilter grammar


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, ForceFilter()),
        ("", ForceFilter()),
        ("no", ForceFilter()),
        ("NO", ForceFilter()),
        ("any/any", ForceFilter()),
        ("APASS/g", ForceFilter("APASS", "g")),
        ("apass/V", ForceFilter("APASS", "V")),
        (" ps1 / r ", ForceFilter("PS1", "r")),
        ("gaiadr3/G", ForceFilter("GaiaDR3", "G")),
        ("APASS/any", ForceFilter("APASS", None)),
        ("2mass/ANY", ForceFilter("2MASS", None)),
        ("any/R", ForceFilter(None, "R")),
        ("Any/i", ForceFilter(None, "i")),
    ],
)
def test_force_filter_forms(text, expected):
    assert parse_force_filter(text) == expected


@pytest.mark.parametrize(
    "text", ["yes", "APASS", "APASS/g/r", "/g", "APASS/", "NOSUCH/g", "APASS/G", "any/x", "PS1/u"]
)
def test_force_filter_bad_grammar_is_bad_input(text):
    with pytest.raises(BadInput) as caught:
        parse_force_filter(text)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 120


# ---------------------------------------------------------------- the whole calibration on synthetic frames


@pytest.fixture(scope="module")
def g_frame():
    return make_frame(Scenario("test", colour_term=0.05), np.random.default_rng(11))


def test_automatic_band_choice_measures_the_target(g_frame):
    frame = g_frame
    result = calibrate(frame.catalog, frame.references, frame.target_ra, frame.target_dec)
    assert (result.survey, result.filter) == ("APASS", "g")
    assert not result.is_limit and result.mag_err > 0
    assert abs(result.mag - frame.target_mag) < 4 * result.mag_err
    assert result.mag_err == pytest.approx(math.hypot(result.mag_err_stat, result.calib_err))
    assert result.colour == "g-r" and result.colour_term_fitted
    assert result.npoints == len(result.stars["ref_mag"]) >= 45
    assert result.runner_up is not None and result.runner_up["filter"] != "g"
    assert result.runner_up["delta_mag"] == pytest.approx(result.runner_up["mag"] - result.mag)
    rejected = {c["filter"]: c["rejected"] for c in result.candidates}
    assert rejected["g"] is None and rejected["r"] and rejected["i"]
    assert result.algorithm_version == ALGORITHM_VERSION
    assert result.limit_snr is None and result.inst_mag is not None


def test_result_is_plain_json_without_nan(g_frame):
    frame = g_frame
    payload = calibrate(frame.catalog, frame.references, frame.target_ra, frame.target_dec).to_dict()
    text = json.dumps(payload, allow_nan=False)
    assert json.loads(text)["filter"] == "g"
    for key in (
        "mag",
        "mag_err",
        "ra",
        "dec",
        "zeropoint",
        "outlier_fraction",
        "scatter",
        "npoints",
        "survey",
    ):
        assert payload[key] is not None
    lengths = {len(values) for values in payload["stars"].values()}
    assert len(lengths) == 1
    assert set(payload["stars"]) >= {
        "ref_mag",
        "ref_err",
        "inst_mag",
        "inst_err",
        "colour",
        "residual",
        "is_outlier",
        "weight",
        "ra",
        "dec",
    }


def test_forcing_the_chosen_band_gives_the_same_answer(g_frame):
    frame = g_frame
    automatic = calibrate(frame.catalog, frame.references, frame.target_ra, frame.target_dec)
    forced = calibrate(
        frame.catalog, frame.references, frame.target_ra, frame.target_dec, force_filter="apass/g"
    )
    assert forced.mag == automatic.mag and forced.mag_err == automatic.mag_err
    assert "forced_band" in forced.flags and forced.runner_up is None


def test_force_filter_restricts_the_candidates(g_frame):
    frame = g_frame
    args = (frame.catalog, frame.references, frame.target_ra, frame.target_dec)
    forced_b = calibrate(*args, force_filter="APASS/B")
    assert forced_b.filter == "B"
    assert calibrate(*args, force_filter="any/g").filter == "g"
    assert calibrate(*args, force_filter="APASS/any").filter == "g"
    with pytest.raises(CalibrationImpossible, match="forceFilter"):
        calibrate(*args, force_filter="PS1/any")
    # A forced band that fails a guard is still answered, with the reason in the flags.
    forced_i = calibrate(*args, force_filter="APASS/i")
    assert forced_i.filter == "i" and "forced_band_failed_guards" in forced_i.flags
    with pytest.raises(BadInput):
        calibrate(*args, force_filter="APASS/q")


def test_non_detection_gives_the_five_sigma_limit():
    frame = make_frame(Scenario("limit", detected=False), np.random.default_rng(12))
    result = calibrate(frame.catalog, frame.references, frame.target_ra, frame.target_dec)
    assert result.is_limit and result.mag_err == -1.0 and result.limit_snr == 5.0
    assert result.mag == pytest.approx(LIMIT_MAG, abs=0.1)
    assert result.calib_err > 0 and (result.ra, result.dec) == (frame.target_ra, frame.target_dec)
    assert json.dumps(result.to_dict(), allow_nan=False)


def test_detection_limit_uses_the_error_scale():
    frame = make_frame(Scenario("limit", detected=False), np.random.default_rng(13))
    honest = detection_limit(frame.catalog)
    assert honest.inst_mag + frame.zeropoint == pytest.approx(LIMIT_MAG, abs=0.05)
    # Errors twice too small: the real S/N of 5 is reached where the reported S/N is 10.
    assert detection_limit(frame.catalog, error_scale=2.0).inst_mag < honest.inst_mag - 0.5


@pytest.mark.parametrize("seed", [25, 56, 31, 46])
def test_fields_at_the_ra_wrap_and_the_pole(seed):
    # These seeds of the generator put the field across RA 0/360 (25, 56) or at a pole (31, 46).
    frame = make_frame(Scenario("sky"), np.random.default_rng(seed))
    ra, dec, _ = frame.catalog.footprint()
    assert min(ra, 360 - ra) < 1.0 or abs(dec) > 88.5
    result = calibrate(frame.catalog, frame.references, frame.target_ra, frame.target_dec)
    assert result.filter == "g" and result.npoints >= 45
    assert abs(result.mag - frame.target_mag) < 4 * result.mag_err


def test_failures_are_explicit(g_frame):
    frame = g_frame
    args = (frame.catalog,)
    with pytest.raises(CalibrationImpossible, match="no reference stars"):
        calibrate(*args, [], frame.target_ra, frame.target_dec)
    empty = ReferenceSet("APASS", np.empty(0), np.empty(0), {}, {})
    with pytest.raises(CalibrationImpossible, match="no reference stars"):
        calibrate(*args, [empty], frame.target_ra, frame.target_dec)
    elsewhere = replace(frame.references[0], ra=(frame.references[0].ra + 40) % 360)
    with pytest.raises(CalibrationImpossible, match="WCS"):
        calibrate(*args, [elsewhere], frame.target_ra, frame.target_dec)
    with pytest.raises(BadInput):
        calibrate(*args, frame.references, float("nan"), 0.0)


def test_too_few_calibrators():
    frame = make_frame(Scenario("few", n_calibrators=4), np.random.default_rng(14))
    with pytest.raises(CalibrationImpossible, match="only 4 calibrators"):
        calibrate(frame.catalog, frame.references, frame.target_ra, frame.target_dec)


def test_target_flags_and_measured_position(g_frame):
    frame = g_frame
    catalog = frame.catalog
    target = int(np.argmin(np.hypot(catalog.ra - frame.target_ra, catalog.dec - frame.target_dec)))
    flags = catalog.flags.copy()
    flags[target] = 2  # SExtractor: blended
    result = calibrate(replace(catalog, flags=flags), frame.references, frame.target_ra, frame.target_dec)
    assert "target_blended" in result.flags
    # The reported position is the source's, moved onto the reference frame (within 0.5").
    assert abs(result.dec - frame.target_dec) * 3600 < 0.5


# ---------------------------------------------------------------- the real pair


@pytest.fixture(scope="module")
def real_pair():
    return read_catalog(DATA / "decam-grb210605a-g-night1.cat"), apass_reference_set()


def test_real_decam_frame_calibrates_against_apass_g(real_pair):
    catalog, apass = real_pair
    ra, dec, _ = catalog.footprint()
    result = calibrate(catalog, [apass], ra, dec)
    assert (result.survey, result.filter) == ("APASS", "g")
    assert 250 <= result.npoints <= 320
    assert result.zeropoint == pytest.approx(28.80, abs=0.02)
    assert 0.03 < result.scatter < 0.06
    assert abs(result.colour_term) < 0.1 and result.outlier_fraction < 0.1
    assert abs(result.offset_ra_arcsec) < 0.5 and abs(result.offset_dec_arcsec) < 0.5


def test_real_bright_star_calibrates_to_its_apass_magnitude(real_pair):
    catalog, apass = real_pair
    # A bright, unsaturated star of the frame (APASS g = 15.29 +- 0.012) taken as the target.
    ra, dec = 24.088627, -48.679728
    star = int(np.argmin(np.hypot((catalog.ra - ra) * np.cos(np.radians(dec)), catalog.dec - dec)))
    result = calibrate(catalog, [apass], catalog.ra[star], catalog.dec[star])
    assert "target_is_reference_star" in result.flags
    assert result.mag == pytest.approx(15.29, abs=0.05)


def test_real_t90_frame_fails_cleanly_without_references():
    catalog = read_catalog(DATA / "t90-osn-hd204827-R.ldac.fits")
    apass = apass_reference_set()  # another part of the sky
    with pytest.raises(CalibrationImpossible):
        calibrate(catalog, [apass], 322.2, 58.7)


def test_synthetic_catalog_without_flags_or_optional_columns():
    catalog = SourceCatalog(
        ra=np.array([10.0, 10.001]),
        dec=np.array([0.0, 0.0]),
        mag=np.array([15.0, 16.0]),
        magerr=np.full(2, 0.01),
    )
    assert catalog.photometry_ok().all()


def test_a_wrong_band_without_colours_is_refused_not_chosen(g_frame):
    # Only z magnitudes, so no colour term can be fitted: the |C| guard is blind, sigma_int is not.
    frame = g_frame
    ref = frame.references[0]
    z_only = ReferenceSet("APASS", ref.ra, ref.dec, {"z": ref.mag["z"]}, {"z": ref.err["z"]})
    with pytest.raises(CalibrationImpossible, match="intrinsic scatter"):
        calibrate(frame.catalog, [z_only], frame.target_ra, frame.target_dec)


def test_an_explicit_match_distance_is_the_radius(g_frame):
    frame = g_frame
    result = calibrate(
        frame.catalog, frame.references, frame.target_ra, frame.target_dec, match_dist_arcsec=2.0
    )
    assert result.radius_arcsec == 2.0
    automatic = calibrate(
        frame.catalog, frame.references, frame.target_ra, frame.target_dec, match_dist_arcsec=-1
    )
    assert 0.5 <= automatic.radius_arcsec <= 3.0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    keep=st.floats(0.05, 1.0),
    spoil=st.floats(0.0, 0.5),
    force=st.sampled_from(["no", "APASS/g", "APASS/any", "any/V", "APASS/u", "any/r"]),
    seed=st.integers(0, 2**16),
)
def test_calibrate_answers_or_refuses_but_never_returns_nan(g_frame, keep, spoil, force, seed):
    # Random subsets of the frame with random broken photometry: an answer without NaN, or a
    # domain error; nothing else.
    rng = np.random.default_rng(seed)
    catalog = g_frame.catalog
    chosen = rng.uniform(size=len(catalog)) < keep
    mag, magerr = catalog.mag.copy(), catalog.magerr.copy()
    broken = rng.uniform(size=len(catalog)) < spoil
    mag[broken] = rng.choice([99.0, np.nan, -np.inf, 1e6], broken.sum())
    magerr[broken & (rng.uniform(size=len(catalog)) < 0.5)] = rng.choice([0.0, np.nan, 99.0])
    subset = replace(
        catalog,
        ra=catalog.ra[chosen],
        dec=catalog.dec[chosen],
        mag=mag[chosen],
        magerr=magerr[chosen],
        flags=catalog.flags[chosen],
    )
    try:
        result = calibrate(
            subset, g_frame.references, g_frame.target_ra, g_frame.target_dec, force_filter=force
        )
    except CalibrationImpossible as error:
        assert str(error) and "\n" not in str(error)  # noqa: PT017
        return
    json.dumps(result.to_dict(), allow_nan=False)
    assert math.isfinite(result.mag) and (result.mag_err > 0 or result.mag_err == -1.0)
