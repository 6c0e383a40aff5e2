"""The "hats:" reference source: a survey read in place from a HATS catalog (HEALPix-partitioned Parquet).

A catalog directory (local disk, or an ``s3://`` / ``https://`` URL through universal-pathlib)
is opened once per worker process with ``hats.read_hats``, which reads only its small metadata
(properties, partition list). A cone then asks the partition tree which Parquet files can hold
it, and each file is read with only the columns the survey's format needs and only the row
groups whose ``_healpix_29`` range overlaps the cone's pixel ranges (HATS files are sorted by
that index), so a cone reads about what it returns even from a large partition. The dask-based
``lsdb`` layer is not used here: building and running its task graph costs more than the whole
read of one cone.

The survey's columns are those of the project's file formats (``refformats.FORMATS``): a HATS
catalog made from the archive's own files keeps the archive's column names (Gaia ``gaia_source``,
PS1 ``raMean``/``gMeanPSFMag``, APASS DR10 CSV ...).
"""

import math
import threading

import numpy as np
import pyarrow.parquet as pq
from astropy.coordinates import angular_separation

from gsafollowup.errors import ServiceUnavailable

from . import references
from .refformats import FORMATS, BadReferenceFile, Format, _Lookup, _present_bands, table_stars
from .surveys import SURVEYS, ReferenceSet

#: The HEALPix order of the spatial index column HATS adds to every row.
HATS_INDEX_ORDER = 29
HATS_INDEX_COLUMN = "_healpix_29"


class HatsUnavailable(ServiceUnavailable):
    """A HATS catalog cannot be opened or read, or holds none of the survey's columns."""

    code = "hats_unavailable"


class HatsSource:
    """One opened HATS catalog of one survey: its partition tree and the columns to read."""

    def __init__(self, survey: str, location: str):
        # Imported here: hats (and pandas behind it) load only in processes that use this source.
        import hats
        from upath import UPath

        self.survey = survey
        self.location = location
        # Public buckets (MAST's PS1 HATS on AWS) are read without credentials; needs s3fs.
        where = UPath(location, anon=True) if location.startswith("s3://") else location
        try:
            self.catalog = hats.read_hats(where)
        except (OSError, ValueError, ImportError) as error:
            raise HatsUnavailable(
                f"The {survey} HATS catalog at {location} cannot be opened: {error}"
            ) from None
        names = list(self.catalog.schema.names) if self.catalog.schema is not None else []
        self.format = _format_for(survey, names, location)
        lookup = _Lookup(names)
        wanted = self.format.columns().values()
        self.columns = [lookup.get(c) for c in dict.fromkeys(wanted) if lookup.get(c) is not None]
        self.indexed = HATS_INDEX_COLUMN in names

    def cone(self, ra: float, dec: float, radius: float) -> ReferenceSet | None:
        """The survey's stars within the cone, or None when there are none."""
        from hats.io.paths import pixel_catalog_file

        pixels = self.catalog.filter_by_cone(ra, dec, radius * 3600).get_healpix_pixels()
        filters = None
        if self.indexed:
            low, high = references.pixel_ranges(ra, dec, radius)
            shift = 2 * (HATS_INDEX_ORDER - references.STORAGE_ORDER)
            filters = [
                [(HATS_INDEX_COLUMN, ">=", int(a) << shift), (HATS_INDEX_COLUMN, "<", (int(b) + 1) << shift)]
                for a, b in zip(low, high, strict=True)
            ]
        tables = []
        try:
            for pixel in pixels:
                path = pixel_catalog_file(self.catalog.catalog_base_dir, pixel)
                tables.append(
                    pq.read_table(
                        path.path, columns=self.columns, filters=filters, filesystem=path.fs
                    ).to_pandas()
                )
        except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
            raise HatsUnavailable(
                f"The {self.survey} HATS catalog at {self.location} cannot be read: {error}"
            ) from None
        if not tables:
            return None
        import pandas as pd

        frame = pd.concat(tables, ignore_index=True) if len(tables) > 1 else tables[0]
        if not len(frame):
            return None
        chunk, _ = table_stars(self.format, frame, f"The {self.survey} HATS catalog")
        separation = angular_separation(
            np.radians(chunk.ra), np.radians(chunk.dec), math.radians(ra), math.radians(dec)
        )
        inside = np.degrees(separation) <= radius
        if not inside.any():
            return None
        bands = [b for b in chunk.mag if b in SURVEYS[self.survey].bands]
        return ReferenceSet(
            survey=self.survey,
            ra=chunk.ra[inside],
            dec=chunk.dec[inside],
            mag={b: chunk.mag[b][inside] for b in bands},
            err={b: chunk.err[b][inside] for b in bands},
            source_id=None if chunk.source_id is None else chunk.source_id[inside],
        )


def _format_for(survey: str, names: list[str], location: str) -> Format:
    """The project format of this survey whose position and bands are among the catalog's columns."""
    lookup = _Lookup(names)
    for fmt in FORMATS.values():
        if survey in fmt.surveys and lookup.has_all((fmt.ra, fmt.dec)) and _present_bands(fmt, lookup):
            return fmt
    known = ", ".join(f.name for f in FORMATS.values() if survey in f.surveys) or "none"
    raise HatsUnavailable(
        f"The HATS catalog at {location} has no columns of a {survey} format (known: {known})."
    )


_OPEN: dict[tuple[str, str], HatsSource] = {}
_LOCK = threading.Lock()


def open_source(survey: str, location: str) -> HatsSource:
    """The HATS catalog of a survey, opened once per worker process and kept."""
    key = (survey, location)
    source = _OPEN.get(key)
    if source is None:
        with _LOCK:
            source = _OPEN.get(key)
            if source is None:
                source = _OPEN[key] = HatsSource(survey, location)
    return source


def hats_cone(survey: str, location: str, ra: float, dec: float, radius: float) -> ReferenceSet | None:
    """Stars of ``survey`` within the cone, read from the HATS catalog at ``location``."""
    try:
        return open_source(survey, location).cone(ra, dec, radius)
    except BadReferenceFile as error:
        raise HatsUnavailable(error.message) from None
