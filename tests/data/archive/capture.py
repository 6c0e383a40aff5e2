"""Save the archives' real answers to the cone queries of calibration/archives.py, next to this file.

Usage (needs the internet): ``.venv/bin/python tests/data/archive/capture.py [SURVEY ...]``.
Each answer is written unmodified as ``<survey>-stripe82-10.0+0.5-r0.1.vot``, and the query that
produced it is printed, to be recorded in README.md with the date of the capture.
"""

import sys
from pathlib import Path

from pyvo.dal import TAPService

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from calibration.archives import ARCHIVES  # noqa: E402 - after the path set-up

#: The field of tests/test_archives_live.py: a Stripe 82 field every survey covers.
RA, DEC, RADIUS = 10.0, 0.5, 0.1
URLS = {
    "vizier": "https://tapvizier.cds.unistra.fr/TAPVizieR/tap",
    "gaia": "https://gea.esac.esa.int/tap-server/tap",
}
MAXREC = 3_000_000


def capture(survey: str) -> Path:
    """Run the survey's cone query and save the raw VOTable answer."""
    archive = ARCHIVES[survey]
    adql = archive.adql(RA, DEC, RADIUS)
    print(f"{survey}: {URLS[archive.service]}/sync  MAXREC={MAXREC}\n  {adql}")
    query = TAPService(URLS[archive.service]).create_query(adql, maxrec=MAXREC)
    answer = query.execute_stream(post=True).read()
    query.raise_if_error()
    path = Path(__file__).parent / f"{survey.lower()}-stripe82-{RA}+{DEC}-r{RADIUS}.vot"
    path.write_bytes(answer)
    print(f"  -> {path.name} ({len(answer)} bytes)")
    return path


if __name__ == "__main__":
    for name in sys.argv[1:] or sorted(ARCHIVES):
        capture(name)
