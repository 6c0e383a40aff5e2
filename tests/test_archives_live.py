"""Live archive tests: the exact queries of calibration/archives.py against the real services.

They need the internet, so they run only with GSA_NETWORK_TESTS=1 (``pytest -m network``) and are
skipped otherwise. Each checks that the archive answers the survey's cone and that every band
column of the survey's column map is in the answer (a renamed column shows up here first).
"""

import os

import numpy as np
import pytest

from calibration.archives import ARCHIVES
from calibration.refformats import table_stars
from calibration.remote import query

#: A Stripe 82 field that every survey here covers (SDSS and PS1 included); 6' radius.
FIELD = (10.0, 0.5, 0.1)

pytestmark = [
    pytest.mark.network,
    pytest.mark.skipif(
        os.environ.get("GSA_NETWORK_TESTS") != "1",
        reason="talks to the public archives; set GSA_NETWORK_TESTS=1 to run",
    ),
]


@pytest.mark.parametrize("survey", sorted(ARCHIVES))
def test_the_archive_answers_the_cone_with_every_band_of_the_column_map(survey):
    archive = ARCHIVES[survey]
    table = query(archive, *FIELD)
    stars, bands = table_stars(archive.format, table, f"The {survey} archive answer")
    assert len(stars) > 0
    absent = set(archive.format.bands) - set(bands)
    assert not absent, f"band columns missing from the answer: {absent}"
    assert any(np.isfinite(stars.mag[band]).any() for band in bands)
