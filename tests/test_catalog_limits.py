"""The reader's limits (issue 15): hostile catalogs are refused early, with a message to act on.

Each case here was read in full (or silently wrong) before: a row of 2,000,000 values held a
worker 105 s and 5.9 GB, a multi-member gzip lost its later members, ``MAG_AUTO`` and
``mag_auto`` read the wrong column. The cost of each input on the real server is measured by
``python -m calibration.benchmarks.cost``; these tests check the answers.
"""

import gzip

import numpy as np
import pytest

from calibration import catalogs
from calibration.benchmarks import cost
from calibration.catalogs import read_catalog
from gsafollowup.errors import BadCatalog
from tests.test_catalogs import HEADER, ROWS, assert_good_message, fits_bytes, table_hdu

GOOD = (HEADER + ROWS).encode()


def refused(data: bytes, filename: str = "", **options) -> str:
    with pytest.raises(BadCatalog) as caught:
        read_catalog(data, filename, **options)
    assert_good_message(caught.value)
    return str(caught.value)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (HEADER.encode() + b"1 " * 2_000_000 + b"\n", "line 5 is longer than 64 kB"),
        (HEADER.encode() + b"9" * (3 * 2**20), "line 5 is longer than 64 kB"),
        (HEADER.encode() + b"1 2 3 4 " * 2000 + b"\n", "the first row has 8000 values; at most 1000"),
        (HEADER.encode() + b"#  99999999 X\n1 2 3 4\n", "declares column 99999999; at most 1000"),
        (b"# comment line\n" * 80_000 + GOOD, "the header (# lines before the rows) is over 1 MB"),
    ],
    ids=["2M-values-row", "endless-line", "8000-values-row", "declared-column-99999999", "huge-header"],
)
def test_lines_columns_and_headers_are_limited_before_astropy(data, words):
    assert words in refused(data)


def test_rows_and_lines_are_counted_while_reading(monkeypatch):
    monkeypatch.setattr(catalogs, "MAX_LINES", 1000)
    assert "more than 1000 lines (comments and blank lines count too)" in refused(GOOD + b"\n" * 2000)
    assert "more than 1000 lines" in refused(gzip.compress(GOOD + b"# c\n" * 2000))
    assert "more than 5 rows; the limit is 5" in refused(HEADER.encode() + b"10 20 15 0.01\n" * 8, max_rows=5)


def test_a_row_limit_passed_inside_a_gzip_stream_stops_the_inflation(monkeypatch):
    bomb = cost.gzipped([HEADER.encode(), *cost.repeated(b"10.0 20.0 15.0 0.01\n" * 100, 200 * 2**20)])
    inflated = []
    original = catalogs._gunzip

    def counting(data):
        for chunk in original(data):
            inflated.append(len(chunk))
            yield chunk

    monkeypatch.setattr(catalogs, "_gunzip", counting)
    assert "limit is 1000" in refused(bomb, max_rows=1000)
    assert sum(inflated) < 4 * 2**20, "the 200 MB stream was inflated beyond the block that passed the limit"


def test_fits_layout_is_checked_from_the_headers():
    assert "more than 256 HDUs" in refused(cost.fits_many_hdus())
    assert "FITS headers are over 4 MB" in refused(cost.fits_huge_header())
    assert "the catalog has 2500000 rows; the limit is 1000000" in refused(cost.fits_huge_naxis2())
    assert "more than 10000 columns in all" in refused(cost.fits_many_columns())


def test_a_negative_naxis1_says_the_header_is_invalid_not_that_there_is_no_table():
    message = refused(cost.fits_negative_naxis1())
    assert "the FITS header of HDU 1 is invalid (NAXIS1 = -16)" in message and "no table" not in message


def test_every_gzip_member_is_read():
    """``cat a.gz b.gz``: the rows of the second member (the target's, say) are not lost."""
    first, second = (HEADER + ROWS).encode(), b"10.003 20.003 18.00 0.080\n"
    catalog = read_catalog(gzip.compress(first) + gzip.compress(second))
    assert len(catalog) == 4 and catalog.mag[-1] == 18.0
    members = b"".join(gzip.compress(line + b"\n") for line in (HEADER + ROWS).encode().splitlines())
    np.testing.assert_array_equal(read_catalog(members).mag, read_catalog(GOOD).mag)


def test_members_count_against_the_inflated_size_cap(monkeypatch):
    monkeypatch.setattr(catalogs, "MAX_UNCOMPRESSED_BYTES", 2**20)
    second = gzip.compress(b"\n" * (2 * 2**20))
    assert "expands beyond 1 MB" in refused(gzip.compress(GOOD) + second)


def test_trailing_garbage_after_the_gzip_stream_is_refused():
    message = refused(gzip.compress(GOOD) + b"garbage!")
    assert "the gzip file has 8 bytes of garbage after its end" in message
    assert "garbage" in refused(gzip.compress(fits_bytes(table_hdu(n=4))) + b"\x00" * 10)


def test_many_tiny_gzip_members_are_refused_cheaply():
    assert "more than 10000 members" in refused(cost.multi_member_gzip())


@pytest.mark.parametrize("other", ["mag_auto", "Mag_Auto"])
def test_columns_differing_only_in_case_are_refused_with_their_names(other):
    header = HEADER + f"#   5 {other}\n"
    rows = "".join(f"{line} 99.0\n" for line in ROWS.splitlines())
    message = refused((header + rows).encode())
    assert f"columns MAG_AUTO and {other} differ only in case" in message


def test_a_case_twin_of_a_column_that_is_not_read_is_harmless():
    header = HEADER + "#   5 NUMBER\n#   6 number\n"
    rows = "".join(f"{line} 1 2\n" for line in ROWS.splitlines())
    assert len(read_catalog((header + rows).encode())) == 3
