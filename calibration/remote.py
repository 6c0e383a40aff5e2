"""The "remote" reference source: a survey's stars fetched from its public archive on first use and
kept in the local reference tables, with the covered sky recorded so a field is fetched once.

Coverage is a set of HEALPix pixels (nested, order ``COVERAGE_ORDER``, 3.4' pixels) per survey.
A cone needs every pixel that can touch it; the missing ones are fetched with one archive cone
wide enough to hold them whole (radius + two pixel radii), and only the stars inside those
pixels are stored, so pixels fetched before are never stored twice. Stars and pixel rows go in
one transaction; the unique (catalog, pixel) pair turns a race between two workers into an
IntegrityError for the loser, whose stars are then already there.
"""

import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pyvo
import requests
from astropy.io.votable.exceptions import VOTableSpecError
from django.conf import settings
from django.db import IntegrityError, transaction
from pyvo.dal import DALFormatError, DALQueryError, DALServiceError, TAPService

from gsafollowup.errors import ArchiveUnavailable

from . import references
from .archives import ARCHIVES, Archive
from .models import CoveredPixel, ReferenceCatalog
from .refformats import BadReferenceFile, StarChunk, table_stars
from .surveys import BANDS, SURVEYS

log = logging.getLogger(__name__)

#: Order of the coverage pixels: 3.4' wide, about 90 of them for a 15' cone.
COVERAGE_ORDER = 10
#: Widest cone fetched from an archive (about 4,000 coverage pixels); calibration asks 1 deg at most.
MAX_REMOTE_RADIUS_DEG = 2.0


@dataclass
class Fetch:
    """What making one cone available did: stars stored, and whether the archive was asked at all."""

    survey: str
    stars: int = 0
    pixels: int = 0
    queried: bool = False


class _Session(requests.Session):
    """A requests session with a default timeout (pyvo passes none of its own)."""

    def __init__(self, timeout: float):
        super().__init__()
        self.timeout = timeout
        self.headers["User-Agent"] = f"gsafollowup (python-pyvo/{pyvo.__version__})"

    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", self.timeout)
        return super().request(*args, **kwargs)


def query(archive: Archive, ra: float, dec: float, radius: float):
    """The archive's answer to the survey's cone as an astropy Table, with retries and backoff."""
    url = settings.ARCHIVE_URLS[archive.service]
    maxrec = settings.ARCHIVE_MAXREC
    attempts = max(1, settings.ARCHIVE_ATTEMPTS)
    pause = settings.ARCHIVE_BACKOFF
    adql = archive.adql(ra, dec, radius)
    for attempt in range(1, attempts + 1):
        session = _Session(settings.ARCHIVE_TIMEOUT)
        try:
            result = TAPService(url, session=session).run_sync(adql, maxrec=maxrec)
            table = result.to_table()
            break
        except DALQueryError as error:
            # The archive understood the request and refused it: asking again will not help.
            raise ArchiveUnavailable(archive.survey, _refusal(archive, error)) from None
        except (DALServiceError, DALFormatError, VOTableSpecError, ValueError) as error:
            # pyvo reports a connection that failed before any answer as a format error whose
            # cause is the requests error: that one is the archive being down, worth a retry.
            down = isinstance(error, DALServiceError) or isinstance(
                getattr(error, "cause", None), requests.RequestException
            )
            if not down:
                raise ArchiveUnavailable(
                    archive.survey,
                    f"The {archive.survey} archive ({archive.table}) sent an unreadable answer: {error}",
                ) from None
            log.warning("%s archive, attempt %d of %d: %s", archive.survey, attempt, attempts, error)
            if attempt == attempts:
                raise ArchiveUnavailable(
                    archive.survey,
                    f"The {archive.survey} archive ({archive.table}) is unavailable after {attempts} "
                    f"attempts: {_reason(error)}",
                ) from None
            time.sleep(pause)
            pause *= 2
        finally:
            session.close()
    if len(table) >= maxrec or result.query_status == "OVERFLOW":
        raise ArchiveUnavailable(
            archive.survey, f"The {archive.survey} archive answer was cut at {len(table)} rows; not cached."
        )
    return table


def _reason(error: Exception) -> str:
    cause = getattr(error, "cause", None)
    if isinstance(cause, requests.Timeout):
        return "no answer in time"
    if isinstance(cause, requests.ConnectionError):
        return "connection refused or lost"
    code = getattr(error, "code", None)
    return f"HTTP {code}" if code else str(error)[:200]


def _refusal(archive: Archive, error: DALQueryError) -> str:
    return f"The {archive.survey} archive ({archive.table}) refused the query: {str(error)[:200]}"


def parse(archive: Archive, table) -> StarChunk:
    """The stars of an archive answer as standard arrays, through the survey's column map."""
    try:
        chunk, _ = table_stars(archive.format, table, f"The {archive.survey} archive answer")
    except BadReferenceFile as error:
        raise ArchiveUnavailable(archive.survey, error.message) from None
    return chunk


def cone_pixels(ra: float, dec: float, radius: float) -> np.ndarray:
    """Coverage pixels that can touch the cone."""
    return references.cone_pixels(ra, dec, radius, COVERAGE_ORDER)


def missing_pixels(catalog_pk: int | None, pixels: np.ndarray) -> np.ndarray:
    """Those of ``pixels`` not yet fetched for the catalog."""
    if catalog_pk is None:
        return pixels
    have = set(
        CoveredPixel.objects.filter(catalog_id=catalog_pk, pixel__in=pixels.tolist()).values_list(
            "pixel", flat=True
        )
    )
    return np.array([p for p in pixels.tolist() if p not in have], dtype=np.int64)


def ensure_covered(survey: str, ra: float, dec: float, radius: float) -> Fetch:
    """Make the survey's stars in the cone available locally, asking the archive only for what is missing."""
    archive = ARCHIVES.get(survey)
    if archive is None:
        raise ArchiveUnavailable(survey, f"No public archive is configured for {survey}.")
    if radius > MAX_REMOTE_RADIUS_DEG:
        raise ArchiveUnavailable(
            survey, f"Cones wider than {MAX_REMOTE_RADIUS_DEG} deg are not fetched from the {survey} archive."
        )
    outcome = Fetch(survey)
    catalog = ReferenceCatalog.objects.filter(survey=survey).values_list("pk", "files").first()
    if catalog is not None and catalog[1]:
        # Loaded from files by ingest_refcat: that load is the survey's truth here, and archive
        # stars added around it would duplicate its stars.
        return outcome
    missing = missing_pixels(None if catalog is None else catalog[0], cone_pixels(ra, dec, radius))
    if not len(missing):
        return outcome
    # One archive cone holds every missing pixel whole: pixels touching the cone have their
    # centre within radius + one pixel radius, so all their points within two.
    reach = radius + 2 * references.max_pixel_radius(COVERAGE_ORDER)
    table = query(archive, ra, dec, reach)
    outcome.queried = True
    chunk = parse(archive, table)
    try:
        with transaction.atomic():
            outcome.stars, outcome.pixels = _store(archive, chunk, missing)
    except IntegrityError:
        # Another worker stored (some of) these pixels meanwhile: its stars serve this cone.
        log.info("%s: pixels near (%.4f, %.4f) were fetched by another worker", survey, ra, dec)
        outcome.stars = outcome.pixels = 0
    return outcome


def _store(archive: Archive, chunk: StarChunk, missing: np.ndarray) -> tuple[int, int]:
    """Write the stars of the still-missing pixels and record those pixels (inside a transaction)."""
    survey = archive.survey
    bands = [b for b in BANDS if b in SURVEYS[survey].bands and b in archive.format.bands]
    catalog = ReferenceCatalog.objects.select_for_update().filter(survey=survey).first()
    if catalog is None:
        catalog = ReferenceCatalog.objects.create(survey=survey, version=archive.version, bands=bands)
    missing = missing_pixels(catalog.pk, missing)
    if not len(missing):
        return 0, 0
    pixel = references.healpix_index(chunk.ra, chunk.dec, COVERAGE_ORDER)
    keep = np.isin(pixel, missing)
    stars = StarChunk(
        ra=chunk.ra[keep],
        dec=chunk.dec[keep],
        source_id=None if chunk.source_id is None else chunk.source_id[keep],
        mag={b: chunk.mag[b][keep] if b in chunk.mag else np.full(keep.sum(), np.nan) for b in bands},
        err={b: chunk.err[b][keep] if b in chunk.err else np.full(keep.sum(), np.nan) for b in bands},
    )
    footprint = references.footprint_bits(catalog.footprint)
    if len(stars):
        with references.StarWriter(catalog.pk, bands, footprint) as writer:
            writer.add(stars)
    CoveredPixel.objects.bulk_create([CoveredPixel(catalog=catalog, pixel=int(p)) for p in missing])
    catalog.bands = [b for b in BANDS if b in catalog.bands or b in bands]
    catalog.stars += len(stars)
    catalog.footprint = references.pack_footprint(footprint)
    catalog.coverage_deg2 = references.footprint_area(footprint)
    catalog.save()
    return len(stars), len(missing)


@dataclass
class PrewarmReport:
    """Per survey: fields fetched and stars stored, fields already covered, fields that failed (why)."""

    survey: str
    fetched: int = 0
    stars: int = 0
    covered: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)


def prewarm(fields, radius: float, surveys) -> list[PrewarmReport]:
    """Fetch and cache the surveys' stars around each (name, ra, dec) field; failures are reported."""
    reports = {survey: PrewarmReport(survey) for survey in surveys}
    for name, ra, dec in fields:
        for survey, report in reports.items():
            try:
                outcome = ensure_covered(survey, ra, dec, radius)
            except ArchiveUnavailable as error:
                report.failed.append((name, error.message))
                continue
            if outcome.queried:
                report.fetched += 1
                report.stars += outcome.stars
            else:
                report.covered += 1
    return list(reports.values())
