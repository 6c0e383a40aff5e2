"""Loading a reference-survey file: the one write path for reference stars.

The whole file goes in one transaction: either every valid row lands or nothing does, and a
``replace`` deletes the old stars of the survey in that same transaction, so readers see the
old catalog until the commit and the new one after it, never a mixture.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from django.db import IntegrityError, transaction

from gsafollowup.errors import BadInput

from . import references
from .models import ReferenceCatalog
from .refformats import GENERIC, MAX_BAD_ROWS, BadReferenceFile, ReferenceFileReader, parse_column_map
from .surveys import BANDS, SURVEYS


@dataclass
class IngestResult:
    """What one ingest did."""

    survey: str
    version: str
    format: str
    bands: list[str]
    stars: int
    replaced: int = 0
    bad_rows: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0


def ingest_refcat(
    survey: str,
    path,
    *,
    format_name: str | None = None,
    columns: str | dict[str, str] | None = None,
    version: str | None = None,
    replace: bool = False,
    append: bool = False,
    max_bad_rows: int = MAX_BAD_ROWS,
    progress: Callable[[int, int], None] | None = None,
) -> IngestResult:
    """Load a survey file into the catalog of ``survey``; BadInput (nothing loaded) when it cannot.

    ``progress(position, size)`` is called after each chunk, in bytes (rows for FITS/VOTable).
    """
    started = time.perf_counter()
    if survey not in SURVEYS:
        raise BadInput(f"Unknown survey {survey!r}; one of: {', '.join(SURVEYS)}.")
    if replace and append:
        raise BadInput("Choose --replace or --append, not both.")
    column_map = parse_column_map(columns) if isinstance(columns, str) else columns
    reader = ReferenceFileReader(path, format_name, column_map, max_bad_rows)
    try:
        bands = _bands_for(survey, reader)
        version = reader.format.version if version is None else version.strip()
        try:
            with transaction.atomic():
                catalog, replaced = _catalog_for(survey, version, replace, append)
                footprint = references.footprint_bits(catalog.footprint)
                stars = 0
                with references.StarWriter(catalog.pk, bands, footprint) as writer:
                    for chunk in reader.chunks():
                        if len(chunk):
                            writer.add(chunk)
                            stars += len(chunk)
                        if progress is not None:
                            progress(chunk.position, reader.size)
                if stars == 0:
                    raise BadReferenceFile(f"{Path(path).name} holds no stars.")
                references.refresh_statistics()
                catalog.bands = [b for b in BANDS if b in catalog.bands or b in bands]
                catalog.stars += stars
                catalog.footprint = references.pack_footprint(footprint)
                catalog.coverage_deg2 = references.footprint_area(footprint)
                catalog.files = [
                    *catalog.files,
                    {
                        "name": Path(path).name,
                        "format": reader.format.name,
                        "stars": stars,
                        "malformed_rows": len(reader.bad.rows),
                        "loaded": datetime.now(UTC).isoformat(timespec="seconds"),
                    },
                ]
                catalog.save()
        except IntegrityError:
            raise BadInput(f"Another ingest of {survey} ran at the same time; nothing was loaded.") from None
    finally:
        reader.close()
    return IngestResult(
        survey=survey,
        version=catalog.version,
        format=reader.format.name,
        bands=bands,
        stars=stars,
        replaced=replaced,
        bad_rows=list(reader.bad.rows),
        seconds=time.perf_counter() - started,
    )


def _bands_for(survey: str, reader: ReferenceFileReader) -> list[str]:
    """The survey's bands that the file provides, in standard order; BadInput when none or foreign."""
    fmt = reader.format
    if fmt.surveys and survey not in fmt.surveys:
        raise BadInput(f"The {fmt.name} format holds {', '.join(fmt.surveys)}, not {survey}.")
    provided = SURVEYS[survey].bands
    foreign = [band for band in reader.bands if band not in provided]
    if fmt.name == GENERIC and foreign:
        raise BadInput(f"{survey} has no band {', '.join(foreign)} (its bands: {', '.join(provided)}).")
    bands = [band for band in BANDS if band in reader.bands and band in provided]
    if not bands:
        raise BadInput(f"The file has none of the bands of {survey} ({', '.join(provided)}).")
    return bands


def _catalog_for(survey: str, version: str, replace: bool, append: bool) -> tuple[ReferenceCatalog, int]:
    """The catalog to load into (inside the transaction) and how many old stars it replaces."""
    existing = ReferenceCatalog.objects.select_for_update().filter(survey=survey).first()
    if existing is None:
        return ReferenceCatalog.objects.create(survey=survey, version=version), 0
    if replace:
        replaced = existing.stars
        # One DELETE of its stars (a fast cascade): other readers keep the old rows until commit.
        existing.delete()
        return ReferenceCatalog.objects.create(survey=survey, version=version), replaced
    if not append:
        raise BadInput(
            f"{survey} is loaded already ({existing.stars} stars): use --replace to swap it for this "
            "file, or --append to add this file to it."
        )
    if version != existing.version:
        raise BadInput(f"{survey} is loaded as version {existing.version!r}, not {version!r}: use --replace.")
    return existing, 0
