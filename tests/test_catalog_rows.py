"""The fast row reader of SExtractor catalogs gives exactly what astropy's SExtractor reader gives."""

import numpy as np
from astropy.io import ascii as astropy_ascii

from calibration.catalogs import _read_sextractor_rows
from tests.conftest import DECAM

VECTOR_HEADER = """#   1 NUMBER          Running object number
#   2 MAG_APER        Fixed aperture magnitude vector                [mag]
#   5 ALPHA_J2000     Right ascension of barycenter (J2000)          [deg]
#   6 DELTA_J2000     Declination of barycenter (J2000)              [deg]
"""


def both_readers(text: str):
    lines = text.splitlines()
    first = next(line for line in lines if line.strip() and not line.lstrip().startswith("#"))
    fast = _read_sextractor_rows(lines, first, len(first.split()))
    slow = astropy_ascii.read(lines, format="sextractor", guess=False)
    return fast, slow


def assert_same(fast, slow):
    assert fast.colnames == slow.colnames
    for name in slow.colnames:
        assert fast[name].unit == slow[name].unit, name
        assert np.array_equal(np.asarray(fast[name]), np.asarray(slow[name]), equal_nan=True), name


def test_the_real_decam_catalog_reads_identically():
    assert_same(*both_readers(DECAM.read_text()))


def test_vector_columns_and_comment_lines_read_identically():
    rows = "1 18.1 18.0 17.9 24.1 -48.7\n# a comment between rows\n2 19.5 19.4 nan 24.2 -48.6\n"
    fast, slow = both_readers(VECTOR_HEADER + rows)
    assert fast.colnames == ["NUMBER", "MAG_APER", "MAG_APER_1", "MAG_APER_2", "ALPHA_J2000", "DELTA_J2000"]
    assert_same(fast, slow)
