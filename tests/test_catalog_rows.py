"""The streamed reader of SExtractor catalogs gives exactly what astropy's SExtractor reader gives.

The streamed reader takes the header's names and units from astropy's SExtractor reader and
parses the rows block by block with astropy's fast reader, as the bytes arrive; fed in pieces
of any size (cutting lines, numbers and CRLF pairs), it must give the same columns.
"""

import numpy as np
import pytest
from astropy.io import ascii as astropy_ascii

from calibration import catalogs
from calibration.catalogs import MAX_ROWS, _AsciiReader
from tests.conftest import DECAM

VECTOR_HEADER = """#   1 NUMBER          Running object number
#   2 MAG_APER        Fixed aperture magnitude vector                [mag]
#   5 ALPHA_J2000     Right ascension of barycenter (J2000)          [deg]
#   6 DELTA_J2000     Declination of barycenter (J2000)              [deg]
#   7 MAG_AUTO        Kron-like elliptical aperture magnitude        [mag]
#   8 MAGERR_AUTO     RMS error for AUTO magnitude                   [mag]
"""
QUANTITIES = {"ra": "ALPHA_J2000", "dec": "DELTA_J2000", "mag": "MAG_AUTO", "magerr": "MAGERR_AUTO"}


def streamed(data: bytes, piece: int):
    reader = _AsciiReader(MAX_ROWS)
    for start in range(0, len(data), piece):
        reader.feed(data[start : start + piece])
    return reader, reader.finish()


def assert_same(data: bytes, piece: int, quantities=QUANTITIES):
    slow = astropy_ascii.read(data.decode().splitlines(), format="sextractor", guess=False)
    reader, catalog = streamed(data, piece)
    assert reader.names == slow.colnames
    assert reader.units == {name: slow[name].unit for name in slow.colnames}
    for key, name in quantities.items():
        assert np.array_equal(getattr(catalog, key), np.asarray(slow[name], dtype=float), equal_nan=True), (
            name
        )


@pytest.mark.parametrize("piece", [10**9, 65_537, 4099])
def test_the_real_decam_catalog_reads_identically_in_pieces_of_any_size(piece, monkeypatch):
    # Blocks of 64 kB: the 1.4 MB file is parsed in many blocks, as a large one would be.
    monkeypatch.setattr(catalogs, "_BLOCK", 65_536)
    quantities = {
        "ra": "X_WORLD",
        "dec": "Y_WORLD",
        "mag": "MAG_AUTO",
        "magerr": "MAGERR_AUTO",
        "x": "X_IMAGE",
    }
    assert_same(DECAM.read_bytes(), piece, quantities)


@pytest.mark.parametrize("piece", [10**9, 7])
def test_vector_columns_comment_lines_and_crlf_read_identically(piece):
    rows = (
        "1 18.1 18.0 17.9 24.1 -48.7 18.2 0.01\n"
        "# a comment between rows\n"
        "   # an indented one\n"
        "\n"
        "2 19.5 19.4 nan 24.2 -48.6 19.6 0.02\n"
    )
    data = (VECTOR_HEADER + rows).replace("\n", "\r\n").encode()
    reader, _ = streamed(data, piece)
    vector = ["MAG_APER", "MAG_APER_1", "MAG_APER_2"]
    assert reader.names == ["NUMBER", *vector, "ALPHA_J2000", "DELTA_J2000", "MAG_AUTO", "MAGERR_AUTO"]
    assert_same((VECTOR_HEADER + rows).encode(), piece)
