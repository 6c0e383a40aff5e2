"""Catalog reader: the real files, the formats, and one domain error for every bad file."""

import gzip
import io
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calibration import catalogs
from calibration.catalogs import SourceCatalog, read_catalog
from gsafollowup.errors import BadCatalog

DATA = Path(__file__).parent / "data"
BAD = DATA / "bad"
HEADER = "#   1 ALPHA_J2000\n#   2 DELTA_J2000\n#   3 MAG_AUTO\n#   4 MAGERR_AUTO\n"
ROWS = "10.000 20.000 15.00 0.010\n10.001 20.001 16.00 0.020\n10.002 20.002 17.00 0.050\n"


def assert_good_message(error: BadCatalog) -> None:
    message = str(error)
    assert message and "\n" not in message and len(message) < 100


def fits_bytes(*hdus) -> bytes:
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), *hdus]).writeto(buffer)
    return buffer.getvalue()


def table_hdu(name=None, n=3, **extra):
    arrays = {
        "ALPHA_J2000": 10 + np.arange(n) * 1e-3,
        "DELTA_J2000": 20 + np.arange(n) * 1e-3,
        "MAG_AUTO": 15 + np.arange(n, dtype=float),
        "MAGERR_AUTO": np.full(n, 0.02),
        **extra,
    }
    columns = [fits.Column(name=key, format="D", array=value) for key, value in arrays.items()]
    return fits.BinTableHDU.from_columns(columns, name=name)


# ---------------------------------------------------------------- real files


def test_decam_ascii_head_uses_the_x_world_alias():
    catalog = read_catalog(DATA / "decam-grb210605a-g-night1.cat")
    assert catalog.format == "ascii_head"
    assert len(catalog) == 9372
    assert "X_WORLD" in catalog.columns and "ALPHA_J2000" not in catalog.columns
    assert catalog.ra.dtype == np.float64 and type(catalog.ra) is np.ndarray
    assert 23.6 < catalog.ra.min() < catalog.ra.max() < 24.8
    assert -49.1 < catalog.dec.min() < catalog.dec.max() < -48.3
    assert catalog.mag[0] == pytest.approx(-12.5009)
    assert catalog.flags is None and catalog.x is not None
    ra, dec, radius = catalog.footprint()
    assert ra == pytest.approx(24.19, abs=0.05) and dec == pytest.approx(-48.73, abs=0.05)
    assert 0.3 < radius < 0.6


def test_t90_fits_ldac_reads_the_objects_table_with_extras():
    catalog = read_catalog((DATA / "t90-osn-hd204827-R.ldac.fits").read_bytes(), "test.ldac")
    assert catalog.format == "fits_ldac"
    assert len(catalog) == 149
    assert catalog.flags is not None and catalog.flags.dtype == np.int64
    assert catalog.fwhm is not None and catalog.class_star is not None
    assert 322.0 < catalog.ra.min() and catalog.ra.max() < 322.5
    # FLAGS 152 (saturated and more) is not usable photometry; flags 2 (blended) is.
    assert not catalog.photometry_ok()[catalog.flags == 152].any()
    assert catalog.photometry_ok().sum() == 148


def test_decam_field_with_flags_and_vector_columns():
    with open(DATA / "decam-field-308-44-instrumental.cat", "rb") as handle:
        catalog = read_catalog(handle)
    assert len(catalog) == 3617
    assert catalog.flags is not None and catalog.class_star is not None
    assert 308.8 < catalog.ra.min() and catalog.ra.max() < 309.3


# ---------------------------------------------------------------- formats and inputs


def test_four_line_header_from_other_software():
    catalog = read_catalog((HEADER + ROWS).encode())
    assert len(catalog) == 3
    np.testing.assert_allclose(catalog.mag, [15, 16, 17])
    assert catalog.columns == ["ALPHA_J2000", "DELTA_J2000", "MAG_AUTO", "MAGERR_AUTO"]


def test_ascii_with_tabs_crlf_and_a_byte_order_mark():
    text = "\ufeff" + (HEADER + ROWS).replace("\n", "\r\n").replace(" ", "\t")
    assert len(read_catalog(text.encode("utf-8"))) == 3


def test_plain_fits_table_and_gzip():
    data = fits_bytes(table_hdu(n=4))
    catalog = read_catalog(data)
    assert catalog.format == "fits" and len(catalog) == 4
    assert len(read_catalog(gzip.compress(data))) == 4
    assert len(read_catalog(gzip.compress((HEADER + ROWS).encode()))) == 3


def test_ldac_concatenates_objects_tables():
    data = fits_bytes(table_hdu("LDAC_OBJECTS", 2), table_hdu("LDAC_OBJECTS", 3))
    assert len(read_catalog(data)) == 5


def test_rows_without_a_position_are_dropped_and_ra_is_wrapped():
    rows = "nan 20.0 15.0 0.01\n-0.5 20.0 15.0 0.01\n360.0 20.0 15.0 0.01\n"
    catalog = read_catalog((HEADER + rows).encode())
    np.testing.assert_allclose(catalog.ra, [359.5, 0.0])


def test_a_path_that_does_not_exist_is_a_bad_catalog(tmp_path):
    with pytest.raises(BadCatalog) as caught:
        read_catalog(tmp_path / "missing.cat")
    assert_good_message(caught.value)


def test_too_many_rows():
    with pytest.raises(BadCatalog, match="limit is 2"):
        read_catalog((HEADER + ROWS).encode(), max_rows=2)
    with pytest.raises(BadCatalog, match="limit is 2"):
        read_catalog(fits_bytes(table_hdu(n=3)), max_rows=2)


def test_footprint_across_the_ra_wrap_and_at_a_pole():
    wrap = SourceCatalog(
        ra=np.array([359.9, 0.1]), dec=np.array([0.0, 0.0]), mag=np.zeros(2), magerr=np.full(2, 0.1)
    )
    ra, dec, radius = wrap.footprint()
    assert min(ra, 360 - ra) < 1e-6 and dec == pytest.approx(0.0, abs=1e-9)
    assert radius == pytest.approx(0.1, abs=1e-6)
    angles = np.arange(0, 360, 30.0)
    pole = SourceCatalog(ra=angles, dec=np.full(12, 89.9), mag=np.zeros(12), magerr=np.full(12, 0.1))
    _, dec, radius = pole.footprint()
    assert dec == pytest.approx(90.0, abs=1e-6) and radius == pytest.approx(0.1, abs=1e-6)


# ---------------------------------------------------------------- every bad file


def refused_by_the_reader() -> list:
    """The corpus files whose README row says 400: the reader itself refuses them, with those words."""
    from tests.test_bad_input import CORPUS

    return [pytest.param(*p.values, id=p.id) for p in CORPUS if p.values[1] == 400]


@pytest.mark.parametrize(("name", "status", "words"), refused_by_the_reader())
def test_every_file_of_the_bad_corpus_is_one_clear_bad_catalog(name, status, words):
    path = BAD / name
    with pytest.raises(BadCatalog) as caught:
        read_catalog(path.read_bytes(), path.name)
    assert_good_message(caught.value)
    assert words.lower() in str(caught.value).lower()


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("empty.cat", "empty"),
        ("binary-garbage.cat", "binary"),
        ("html-error-page.cat", "HTML"),
        ("missing-magerr-column.cat", "MAGERR_AUTO"),
        ("header-only-no-rows.cat", "no rows"),
        ("all-nan-values.cat", "finite position"),
        ("all-mag-99.cat", "usable MAG_AUTO"),
        ("ra-unit-hours.cat", "'h'"),
        ("ra-sexagesimal.cat", "sexagesimal"),
        ("ra-in-hours-by-pixel-scale.cat", "hours"),
        ("header-declares-more-columns.cat", "declares 4 columns but the rows have 3"),
        ("rows-longer-than-header.cat", "disagree"),
        ("ragged-rows.cat", "values"),
        ("latin1-comment.cat", "UTF-8"),
        ("dec-beyond-90.cat", "90"),
        ("fits-image-no-table.fits", "no table"),
        ("fits-absurd-naxis2.fits", "absurd"),
        ("fits-truncated-table.fits", "truncated"),
        ("fits-missing-magerr.fits", "MAGERR_AUTO"),
        ("fits-no-rows.fits", "no rows"),
    ],
)
def test_the_message_names_the_problem(name, pattern):
    with pytest.raises(BadCatalog, match=pattern):
        read_catalog(BAD / name)


def test_a_gzip_bomb_stops_at_the_cap(monkeypatch):
    monkeypatch.setattr(catalogs, "MAX_UNCOMPRESSED_BYTES", 2**20)
    bomb = gzip.compress(b"0" * (4 * 2**20))
    with pytest.raises(BadCatalog, match="expands beyond"):
        read_catalog(bomb)


def test_a_tile_compressed_image_is_never_decompressed():
    image = fits.CompImageHDU(np.zeros((64, 64), dtype=np.float32))
    with pytest.raises(BadCatalog, match="no table"):
        read_catalog(fits_bytes(image))


def test_a_named_fits_file_that_is_text():
    with pytest.raises(BadCatalog, match="named like FITS"):
        read_catalog((HEADER + ROWS).encode(), "frame.fits")


def test_a_vector_magnitude_column_in_fits():
    column = fits.Column(name="MAG_AUTO", format="2D", array=np.ones((3, 2)))
    others = [
        fits.Column(name=n, format="D", array=np.arange(3.0) + 10)
        for n in ("ALPHA_J2000", "DELTA_J2000", "MAGERR_AUTO")
    ]
    with pytest.raises(BadCatalog, match="several values"):
        read_catalog(fits_bytes(fits.BinTableHDU.from_columns([column, *others])))


def test_a_wrong_argument_type_is_a_programming_error():
    with pytest.raises(TypeError):
        read_catalog(12345)


# ---------------------------------------------------------------- property-based: nothing else escapes

GOOD_ASCII = (HEADER + ROWS).encode()
GOOD_FITS = fits_bytes(table_hdu(n=3))


def read_or_bad(data: bytes):
    """Read; a BadCatalog is fine if its message is. Anything else fails the test."""
    try:
        catalog = read_catalog(data)
    except BadCatalog as error:
        assert_good_message(error)
        return None
    assert len(catalog) > 0
    assert np.all((catalog.ra >= 0) & (catalog.ra < 360)) and np.all(np.abs(catalog.dec) <= 90)
    assert catalog.photometry_ok().any()
    return catalog


def mutated(base: bytes):
    """Byte strings derived from a valid file: cut, overwritten, inserted into."""
    return st.tuples(
        st.integers(0, len(base)),
        st.integers(0, len(base)),
        st.binary(max_size=40),
        st.sampled_from(["cut", "overwrite", "insert"]),
    ).map(lambda t: _mutate(base, *t))


def _mutate(base, start, end, payload, kind):
    start, end = sorted((start, end))
    if kind == "cut":
        return base[:start] + base[end:]
    if kind == "overwrite":
        return base[:start] + payload + base[start + len(payload) :]
    return base[:start] + payload + base[start:]


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(st.binary(max_size=3000))
def test_random_bytes(data):
    read_or_bad(data)


@FAST
@given(mutated(GOOD_ASCII))
def test_mutated_ascii_catalogs(data):
    read_or_bad(data)


@FAST
@given(mutated(GOOD_FITS))
def test_mutated_fits_catalogs(data):
    read_or_bad(data)


@FAST
@given(
    st.lists(
        st.one_of(
            st.sampled_from(HEADER.splitlines() + ["#   5 FLAGS", "#   2 X_WORLD [deg]", "# comment"]),
            st.lists(
                st.one_of(
                    st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.sampled_from(["99", "-", "nan", "1e400", "12:30:00", "0x1F", "", "é"]),
                ),
                max_size=6,
            ).map(" ".join),
        ),
        max_size=12,
    ).map("\n".join)
)
def test_line_soup(text):
    read_or_bad(text.encode("utf-8"))


REAL_LDAC = (DATA / "t90-osn-hd204827-R.ldac.fits").read_bytes()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(REAL_LDAC))
def test_mutated_real_ldac(data):
    read_or_bad(data)
