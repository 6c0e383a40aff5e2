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
from collections import OrderedDict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from astropy.coordinates import angular_separation

from gsafollowup.errors import HatsUnavailable

from . import references
from .refformats import FORMATS, NO_SOURCE_ID, BadReferenceFile, Format, _Lookup, _present_bands, table_stars
from .surveys import SURVEYS, ReferenceSet

#: The HEALPix order of the spatial index column HATS adds to every row.
HATS_INDEX_ORDER = 29
HATS_INDEX_COLUMN = "_healpix_29"
#: Partition footers kept per catalog (a few kB each): the fields of a night, read once.
KEPT_PARTITIONS = 4096


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
        self._partitions: OrderedDict[object, _Partition] = OrderedDict()

    def _partition(self, pixel) -> "_Partition":
        """The partition file of a pixel, its footer read once and kept (the most recent ones)."""
        from hats.io.paths import pixel_catalog_file

        partition = self._partitions.get(pixel)
        if partition is None:
            partition = _Partition(pixel_catalog_file(self.catalog.catalog_base_dir, pixel), self.indexed)
            with _LOCK:
                self._partitions[pixel] = partition
                while len(self._partitions) > KEPT_PARTITIONS:
                    self._partitions.popitem(last=False)
        return partition

    def cone(self, ra: float, dec: float, radius: float) -> ReferenceSet | None:
        """The survey's stars within the cone, or None when there are none."""
        pixels = self.catalog.filter_by_cone(ra, dec, radius * 3600).get_healpix_pixels()
        low, high = references.pixel_ranges(ra, dec, radius)
        shift = 2 * (HATS_INDEX_ORDER - references.STORAGE_ORDER)
        ranges = (low.astype(np.int64) << shift, (high.astype(np.int64) + 1) << shift)
        tables = []
        try:
            for pixel in pixels:
                table = self._partition(pixel).read(self.columns, ranges)
                if table is not None:
                    tables.append(table)
        except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
            raise HatsUnavailable(
                f"The {self.survey} HATS catalog at {self.location} cannot be read: {error}"
            ) from None
        if not tables:
            return None
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        if not table.num_rows:
            return None
        frame = {name: _numpy(table.column(name)) for name in table.column_names}
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


class _Partition:
    """One Parquet file of a HATS catalog: its footer and the _healpix_29 range of each row group."""

    def __init__(self, path, indexed: bool):
        self.path = path
        self.local = path.protocol in ("", "file", "local")
        with self._open() as source:
            self.metadata = pq.ParquetFile(source).metadata
        groups = self.metadata.num_row_groups
        self.low = np.full(groups, np.iinfo(np.int64).min)
        self.high = np.full(groups, np.iinfo(np.int64).max)
        if indexed:
            column = self.metadata.schema.names.index(HATS_INDEX_COLUMN)
            for group in range(groups):
                stats = self.metadata.row_group(group).column(column).statistics
                if stats is not None and stats.has_min_max:
                    self.low[group], self.high[group] = stats.min, stats.max

    def _open(self):
        # Local files through Arrow's own reader (no Python file object in the loop); URLs
        # through fsspec, as hats opens them.
        if self.local:
            return pa.OSFile(self.path.path)
        return self.path.fs.open(self.path.path, "rb")

    def read(self, columns: list[str], ranges: tuple[np.ndarray, np.ndarray]):
        """The columns of the row groups whose index range meets one of the [low, high) ranges."""
        low, high = ranges
        meets = (low[None, :] <= self.high[:, None]) & (high[None, :] > self.low[:, None])
        groups = np.flatnonzero(meets.any(axis=1))
        if not len(groups):
            return None
        with self._open() as source:
            return pq.ParquetFile(source, metadata=self.metadata).read_row_groups(
                groups.tolist(), columns=columns
            )


def _numpy(column) -> np.ndarray:
    """A Parquet column as numpy: NaN for a null float, -1 for a null integer (an absent id)."""
    if pa.types.is_integer(column.type):
        column = pc.fill_null(column, NO_SOURCE_ID)
    return column.to_numpy()


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
