"""Reference-star storage and the cone query: the only database I/O the calibration core needs.

Each star carries its HEALPix nested pixel at order 16 (3.2"), so every coarser pixel is one
contiguous range of those numbers and one B-tree on (catalog, healpix) serves any cone size.
A dense catalog is searched with pixels of at most an eighth of the cone's radius. For 15'
that is order 11 (1.7' pixels): the ~340 pixels that can touch the cone merge into ~31 ranges
(38 at most) covering 1.26 times the cone's area, so a dense cone reads 1.26 rows per star it
returns. Order 8 (13.7' pixels, the "few pixels" choice) would read 6.4 times the cone and
order 10 1.54 times; order 12 reads 1.12 times but needs ~60 ranges, which PostgreSQL measured
slower. A sparse catalog, where planning ranges costs more than reading rows, is searched at
order 9 (about 9 ranges). Rows come back as numpy arrays (PostgreSQL binary COPY, SQLite
tuples), never model objects, and the exact angular-distance filter follows.
"""

import io
import math
import threading
import zlib
from collections.abc import Sequence
from functools import cache

import astropy.units as u
import numpy as np
import psycopg2
from astropy.coordinates import angular_separation
from astropy_healpix import HEALPix
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from gsafollowup.errors import BadInput

from .models import ReferenceCatalog, ReferenceStar, err_column, mag_column
from .refformats import NO_SOURCE_ID, StarChunk
from .surveys import SURVEYS, ReferenceSet

#: HEALPix order (nested) of the stored pixel numbers: 3.2" pixels, 5e10 of them.
STORAGE_ORDER = 16
#: Order of the coverage bitmap kept per catalog: 786,432 pixels of 0.052 deg^2.
FOOTPRINT_ORDER = 8
#: Side of an order-0 pixel, degrees; order k pixels are 2^k times smaller.
ORDER0_RESOLUTION = math.degrees(math.sqrt(4 * math.pi / 12))
#: A cone is searched with pixels at most radius / 8: order 11 (1.7') for 15'.
PIXELS_PER_RADIUS = 8
#: The pixel search itself runs with pixels at most radius / 2 (order 9 for 15'), then refines.
COARSE_PIXELS_PER_RADIUS = 2
#: Stars are written in sorted batches of about this many bytes of arrays (1 M Gaia stars),
BATCH_BYTES = 64 * 1024 * 1024
#: each sent this many rows at a time, which keeps the encoding's temporary arrays small.
WRITE_ROWS = 100_000
#: A cone expected to hold fewer stars of a catalog than this is searched with the coarse pixels.
FEW_ROWS = 2000
#: A cone query names at most this many pixel ranges (neighbouring ones merge beyond it).
MAX_RANGES = 64
SKY_DEG2 = 4 * math.pi * math.degrees(1) ** 2

_TABLE = ReferenceStar._meta.db_table


@cache
def _healpix(order: int) -> HEALPix:
    return HEALPix(nside=2**order, order="nested")


def healpix_index(ra, dec, order: int = STORAGE_ORDER) -> np.ndarray:
    """Nested HEALPix pixel numbers of positions in degrees."""
    return _healpix(order).lonlat_to_healpix(np.asarray(ra) * u.deg, np.asarray(dec) * u.deg)


def search_order(radius_deg: float, pixels_per_radius: float) -> int:
    """The coarsest order whose pixels are at most radius / pixels_per_radius."""
    if radius_deg < pixels_per_radius * ORDER0_RESOLUTION / 2**STORAGE_ORDER:
        return STORAGE_ORDER
    return max(math.ceil(math.log2(pixels_per_radius * ORDER0_RESOLUTION / radius_deg)), 0)


@cache
def max_pixel_radius(order: int) -> float:
    """Largest distance (degrees) from a pixel's centre to its edge at this order (Healpix max_pixrad)."""
    nside = 2**order

    def vector(z, phi):
        s = math.sqrt(1 - z * z)
        return np.array([s * math.cos(phi), s * math.sin(phi), z])

    a = vector(2 / 3, math.pi / (4 * nside))
    b = vector(1 - (1 - 1 / nside) ** 2 / 3, 0.0)
    return math.degrees(math.atan2(np.linalg.norm(np.cross(a, b)), a @ b))


def _near(pixels: np.ndarray, order: int, ra: float, dec: float, radius_deg: float) -> np.ndarray:
    """The pixels whose centres lie within radius + the largest pixel radius: all that touch the cone."""
    lon, lat = _healpix(order).healpix_to_lonlat(pixels)
    distance = angular_separation(lon.rad, lat.rad, math.radians(ra), math.radians(dec))
    return pixels[distance <= math.radians(radius_deg + max_pixel_radius(order))]


def pixel_ranges(
    ra: float, dec: float, radius_deg: float, pixels_per_radius: float = PIXELS_PER_RADIUS
) -> tuple[np.ndarray, np.ndarray]:
    """Inclusive ranges (low, high) of storage pixel numbers that hold every star within the cone."""
    order = search_order(radius_deg, pixels_per_radius)
    level = min(search_order(radius_deg, COARSE_PIXELS_PER_RADIUS), order)
    # The pixel search is asked for a cone wider by the largest pixel radius, because on its own
    # it misses some pixels that only graze the edge (astropy-healpix issue #287); _near then
    # keeps exactly the pixels that can touch the cone. Its cost grows with the pixels it
    # returns, so it runs at a coarse order and each pixel is split into its four children,
    # order by order, keeping the children that can touch the cone.
    reach = radius_deg + max_pixel_radius(level)
    pixels = np.unique(_healpix(level).cone_search_lonlat(ra * u.deg, dec * u.deg, reach * u.deg))
    pixels = _near(pixels, level, ra, dec, radius_deg)
    while level < order:
        level += 1
        pixels = _near((pixels[:, None] * 4 + np.arange(4)).ravel(), level, ra, dec, radius_deg)
    gaps = np.flatnonzero(np.diff(pixels) > 1)
    if len(gaps) >= MAX_RANGES:
        # Merge across the smallest gaps: a few extra rows cost less than a huge query.
        gaps = np.sort(gaps[np.argsort(pixels[gaps + 1] - pixels[gaps])[-(MAX_RANGES - 1) :]])
    low = pixels[np.concatenate(([0], gaps + 1))]
    high = pixels[np.concatenate((gaps, [len(pixels) - 1]))]
    shift = 2 * (STORAGE_ORDER - order)
    return low << shift, ((high + 1) << shift) - 1


def cone_pixels(ra: float, dec: float, radius_deg: float, order: int) -> np.ndarray:
    """Sorted nested pixel numbers at ``order`` of every pixel that can touch the cone."""
    reach = radius_deg + max_pixel_radius(order)
    pixels = np.unique(_healpix(order).cone_search_lonlat(ra * u.deg, dec * u.deg, reach * u.deg))
    return _near(pixels, order, ra, dec, radius_deg).astype(np.int64)


def _check_cone(ra, dec, radius_deg) -> tuple[float, float, float]:
    try:
        ra, dec, radius = float(ra), float(dec), float(radius_deg)
    except (TypeError, ValueError):
        raise BadInput("ra, dec and radius must be numbers (degrees).") from None
    if not (math.isfinite(ra) and math.isfinite(dec) and math.isfinite(radius)):
        raise BadInput("ra, dec and radius must be finite.")
    if not -90.0 <= dec <= 90.0:
        raise BadInput("dec must be between -90 and 90 degrees.")
    if not 0.0 <= radius <= 180.0:
        raise BadInput("The cone radius must be between 0 and 180 degrees.")
    return ra % 360.0, dec, radius


def _survey_rank(survey: str) -> int:
    return list(SURVEYS).index(survey) if survey in SURVEYS else len(SURVEYS)


class ReferenceSets(list):
    """The ReferenceSets of a cone, and ``missing``: survey -> why its source could not answer."""

    def __init__(self, sets=(), missing: dict[str, str] | None = None):
        super().__init__(sets)
        self.missing = dict(missing or {})


DATABASE = "database"
REMOTE = "remote"
HATS_PREFIX = "hats:"


def source_of(survey: str) -> str:
    """Where a survey's stars come from (settings.REFERENCE_SOURCES): database, remote or hats:<location>."""
    source = settings.REFERENCE_SOURCES.get(survey, DATABASE)
    if source in (DATABASE, REMOTE) or (source.startswith(HATS_PREFIX) and source[len(HATS_PREFIX) :]):
        return source
    raise ImproperlyConfigured(
        f"REFERENCE_SOURCES gives {survey} the source {source!r}; use database, remote or hats:<path or URL>."
    )


def cone(ra: float, dec: float, radius_deg: float, surveys: Sequence[str] | None = None) -> ReferenceSets:
    """Stars within ``radius_deg`` of (ra, dec), one ReferenceSet per survey that has any.

    Each survey is read from its configured source (``source_of``): the database, the remote
    archive through the database cache, or a HATS catalog. A survey whose archive or catalog
    cannot answer is left out and named, with the reason, in the result's ``missing``.
    """
    ra, dec, radius = _check_cone(ra, dec, radius_deg)
    if surveys is not None:
        unknown = [name for name in surveys if name not in SURVEYS]
        if unknown:
            raise BadInput(f"Unknown survey {unknown[0]!r}; known: {', '.join(SURVEYS)}.")
    wanted = list(SURVEYS) if surveys is None else list(surveys)
    sources = {survey: source_of(survey) for survey in wanted}
    found = ReferenceSets()
    from_database = [s for s in wanted if sources[s] == DATABASE]
    remote_surveys = [s for s in wanted if sources[s] == REMOTE]
    if remote_surveys:
        # Imported here: pyvo and the archive client load only where a survey is remote.
        from .remote import ArchiveUnavailable, ensure_covered

        for survey in remote_surveys:
            try:
                ensure_covered(survey, ra, dec, radius)
            except ArchiveUnavailable as error:
                found.missing[survey] = error.message
            else:
                from_database.append(survey)
    hats_surveys = [s for s in wanted if sources[s].startswith(HATS_PREFIX)]
    if hats_surveys:
        from .hatscat import HatsUnavailable, hats_cone

        for survey in hats_surveys:
            try:
                stars = hats_cone(survey, sources[survey][len(HATS_PREFIX) :], ra, dec, radius)
            except HatsUnavailable as error:
                found.missing[survey] = error.message
                continue
            if stars is not None:
                found.append(stars)
    if from_database:
        found.extend(database_cone(ra, dec, radius, from_database))
    found.sort(key=lambda stars: _survey_rank(stars.survey))
    return found


def database_cone(ra: float, dec: float, radius: float, surveys: Sequence[str]) -> list[ReferenceSet]:
    """The stars of the loaded catalogs of these surveys within the (checked) cone."""
    catalogs = ReferenceCatalog.objects.values_list("pk", "survey", "bands", "stars", "coverage_deg2")
    catalogs = catalogs.filter(survey__in=list(surveys))
    catalogs = sorted(catalogs, key=lambda row: _survey_rank(row[1]))
    area = 2 * math.pi * (1 - math.cos(math.radians(radius))) * math.degrees(1) ** 2
    ranges = {}
    found = []
    for pk, survey, bands, stars, coverage in catalogs:
        # Few rows expected: a few coarse ranges cost less than many exact ones (PostgreSQL
        # plans each range, about 30 microseconds apiece); many rows: read as few as possible.
        expected = stars / max(coverage, 1e-9) * area
        fineness = PIXELS_PER_RADIUS if expected > FEW_ROWS else COARSE_PIXELS_PER_RADIUS
        if fineness not in ranges:
            ranges[fineness] = pixel_ranges(ra, dec, radius, fineness)
        rows = _fetch(pk, bands, *ranges[fineness])
        separation = angular_separation(
            np.radians(rows["ra"]), np.radians(rows["dec"]), math.radians(ra), math.radians(dec)
        )
        inside = np.degrees(separation) <= radius
        if not inside.any():
            continue
        ids = rows["source_id"][inside].astype(np.int64)
        found.append(
            ReferenceSet(
                survey=survey,
                ra=rows["ra"][inside].astype(np.float64),
                dec=rows["dec"][inside].astype(np.float64),
                mag={band: rows[mag_column(band)][inside].astype(np.float64) for band in bands},
                err={band: rows[err_column(band)][inside].astype(np.float64) for band in bands},
                source_id=ids if (ids != NO_SOURCE_ID).any() else None,
            )
        )
    return found


def _fetch(catalog_pk: int, bands: list[str], low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Rows of one catalog in the pixel ranges, as a structured array (NaN for NULL magnitudes)."""
    magnitudes = [column for band in bands for column in (mag_column(band), err_column(band))]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            return _fetch_postgres(cursor, catalog_pk, magnitudes, low, high)
        return _fetch_rows(cursor, catalog_pk, magnitudes, low, high)


#: Signature, flags and header-extension length that open PostgreSQL binary COPY data.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"


def _fetch_postgres(cursor, catalog_pk, magnitudes, low, high) -> np.ndarray:
    # Binary COPY of fixed-width columns (NULLs turned into NaN and -1) lands as one numpy
    # buffer: no Python object per value, which is what dominates a dense cone otherwise.
    select = ", ".join(
        ["ra", "dec", f"COALESCE(source_id, {NO_SOURCE_ID})"] + [f"COALESCE({c}, 'NaN')" for c in magnitudes]
    )
    ranges = " OR ".join(f"healpix BETWEEN {int(a)} AND {int(b)}" for a, b in zip(low, high, strict=True))
    query = f"SELECT {select} FROM {_TABLE} WHERE catalog_id = {int(catalog_pk)} AND ({ranges})"  # noqa: S608 - integers only
    buffer = io.BytesIO()
    # copy_expert is psycopg2's own, which Django's cursor does not wrap: without this a server
    # gone mid-COPY raised psycopg2.OperationalError, which no handler knew, and answered 500.
    with connection.wrap_database_errors:
        cursor.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT binary)", buffer)
    fields = [("ra", ">f8"), ("dec", ">f8"), ("source_id", ">i8")] + [(c, ">f4") for c in magnitudes]
    dtype = np.dtype(
        [("count", ">i2")] + [item for name, kind in fields for item in ((f"{name}_n", ">i4"), (name, kind))]
    )
    data = buffer.getbuffer()[len(_COPY_HEADER) : -len(_COPY_TRAILER)]
    return np.frombuffer(data, dtype=dtype)


def _fetch_rows(cursor, catalog_pk, magnitudes, low, high) -> np.ndarray:
    # SQLite uses the index for each "healpix BETWEEN" of a UNION ALL, but not for an OR of them.
    select = ", ".join(["ra", "dec", f"COALESCE(source_id, {NO_SOURCE_ID})", *magnitudes])
    part = f"SELECT {select} FROM {_TABLE} WHERE catalog_id = %s AND healpix BETWEEN %s AND %s"  # noqa: S608 - names are ours
    params = [value for a, b in zip(low, high, strict=True) for value in (catalog_pk, int(a), int(b))]
    cursor.execute(" UNION ALL ".join([part] * len(low)), params)
    dtype = [("ra", "f8"), ("dec", "f8"), ("source_id", "i8")] + [(c, "f8") for c in magnitudes]
    return np.array(cursor.fetchall(), dtype=dtype)


def loaded_surveys() -> list[dict]:
    """The loaded reference catalogs: survey, version, bands, number of stars, area covered."""
    catalogs = ReferenceCatalog.objects.only("survey", "version", "bands", "stars", "coverage_deg2")
    return [
        {
            "survey": c.survey,
            "version": c.version,
            "bands": list(c.bands),
            "stars": c.stars,
            "coverage_deg2": round(c.coverage_deg2, 3),
        }
        for c in sorted(catalogs, key=lambda c: _survey_rank(c.survey))
    ]


# -- writing -------------------------------------------------------------------------------------


class StarWriter:
    """Writes the stars of one catalog, inside the caller's transaction.

    Stars are gathered into batches of about ``BATCH_BYTES`` and each batch goes in sorted by
    pixel, so the stars of a cone sit together on disk even when the file is in no order
    (the larger the batch, the fewer places a cone reads from). PostgreSQL gets a binary COPY
    per batch, sent by a background thread while Python parses on (psycopg2 lets go of the GIL
    while the server works), so a load uses both cores. SQLite gets executemany in the
    caller's thread: binding each row needs the GIL, and a second thread measured slower. Both
    send ``WRITE_ROWS`` rows at a time. Use it as a context manager: leaving writes the last
    batch, waits for the COPY and raises its error. ``footprint`` (order-8 coverage bits) is
    updated as stars are written.
    """

    def __init__(self, catalog_pk: int, bands: Sequence[str], footprint: np.ndarray):
        self.catalog_pk = catalog_pk
        self.bands = list(bands)
        self.footprint = footprint
        self._postgres = connection.vendor == "postgresql"
        self._pending: list[StarChunk] = []
        self._thread: threading.Thread | None = None
        self._failure: psycopg2.Error | None = None
        self._cursor = connection.cursor()
        if not self._postgres:
            # 64 MB of page cache instead of 2 MB keeps more of the index in memory between
            # batches (measured 5% faster on 4 M rows); the cache belongs to this connection only.
            self._cursor.execute("PRAGMA cache_size = -65536")

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, traceback):
        try:
            if exc_type is None:
                self.flush()
                self.wait()
            elif self._thread is not None:
                # The transaction is failing anyway: let the COPY end, keep the first error.
                self._thread.join()
        finally:
            self._cursor.close()

    def add(self, chunk: StarChunk) -> None:
        """Take a chunk of stars; a full batch is written."""
        self._pending.append(chunk)
        if sum(c.nbytes for c in self._pending) >= BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the gathered stars (in the background on PostgreSQL)."""
        if not self._pending:
            return
        chunk, self._pending = StarChunk.join(self._pending), []
        pixels = healpix_index(chunk.ra, chunk.dec)
        mark_footprint(self.footprint, pixels)
        order = np.argsort(pixels, kind="stable")
        names = ["catalog_id", "healpix", "ra", "dec"]
        columns = [
            np.full(len(pixels), self.catalog_pk, np.int64),
            pixels[order],
            chunk.ra[order],
            chunk.dec[order],
        ]
        if chunk.source_id is not None:
            names.append("source_id")
            columns.append(chunk.source_id[order])
        for band in self.bands:
            names += [mag_column(band), err_column(band)]
            # Stored as 4-byte floats on both databases, so both give back the same numbers.
            columns += [chunk.mag[band][order].astype(np.float32), chunk.err[band][order].astype(np.float32)]
        if not self._postgres:
            statement = insert_statement(names)
            for start in range(0, len(pixels), WRITE_ROWS):
                self._cursor.executemany(
                    statement, insert_rows([c[start : start + WRITE_ROWS] for c in columns])
                )
            return
        statement = f"COPY {_TABLE} ({', '.join(names)}) FROM STDIN WITH (FORMAT binary)"
        # Encoding here, not in the COPY thread, measured 30% faster: numpy holds the GIL often.
        data = [
            binary_copy_data([c[start : start + WRITE_ROWS] for c in columns])
            for start in range(0, len(pixels), WRITE_ROWS)
        ]
        self.wait()
        # Django's connection belongs to this thread: the COPY thread gets psycopg2's own cursor.
        self._thread = threading.Thread(target=self._copy, args=(self._cursor.cursor, statement, data))
        self._thread.start()

    def _copy(self, cursor, statement: str, data: list[bytes]) -> None:
        try:
            for part in data:
                cursor.copy_expert(statement, io.BytesIO(part), size=1 << 20)
        except psycopg2.Error as error:
            self._failure = error

    def wait(self) -> None:
        """Wait for the running COPY; raise its error as Django's database error."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._failure is not None:
            failure, self._failure = self._failure, None
            with connection.wrap_database_errors:
                raise failure


def refresh_statistics() -> None:
    """Let PostgreSQL's planner know the new rows at once, not when autovacuum comes by."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {_TABLE}")


def binary_copy_data(columns: list[np.ndarray]) -> bytes:
    """PostgreSQL binary COPY data for numeric columns: NaN floats and -1 source ids become NULL."""
    count = len(columns[0])
    # Each row is a field count, then a length and a big-endian value per field: a record array.
    layout = [("fields", ">i2")]
    for k, column in enumerate(columns):
        layout += [(f"length{k}", ">i4"), (f"value{k}", column.dtype.newbyteorder(">"))]
    rows = np.empty(count, np.dtype(layout))
    rows["fields"] = len(columns)
    keep = None
    at = 2
    for k, column in enumerate(columns):
        width = column.dtype.itemsize
        null = np.isnan(column) if column.dtype.kind == "f" else column == NO_SOURCE_ID
        rows[f"length{k}"] = width
        rows[f"value{k}"] = column
        if null.any():
            # A NULL is a length of -1 and no value bytes: those bytes are cut out below.
            rows[f"length{k}"][null] = -1
            if keep is None:
                keep = np.ones((count, rows.dtype.itemsize), bool)
            keep[null, at + 4 : at + 4 + width] = False
        at += 4 + width
    body = rows.tobytes() if keep is None else rows.view(np.uint8).reshape(count, -1)[keep].tobytes()
    return _COPY_HEADER + body + _COPY_TRAILER


def insert_statement(names: list[str]) -> str:
    """INSERT of one star with these columns (a source id of -1 becomes NULL)."""
    values = ", ".join("NULLIF(%s, -1)" if name == "source_id" else "%s" for name in names)
    return f"INSERT INTO {_TABLE} ({', '.join(names)}) VALUES ({values})"  # noqa: S608 - names are ours


def insert_rows(columns: list[np.ndarray]):
    """Rows of Python numbers for executemany; SQLite stores a NaN as NULL by itself."""
    # tolist() makes the Python numbers in one C loop per column.
    lists = (
        column.astype(np.float64 if column.dtype.kind == "f" else np.int64).tolist() for column in columns
    )
    return zip(*lists, strict=True)


# -- footprint -----------------------------------------------------------------------------------

_FOOTPRINT_PIXELS = 12 * 4**FOOTPRINT_ORDER


def footprint_bits(packed: bytes) -> np.ndarray:
    """The coverage bitmap (one bool per order-8 pixel) from its stored form."""
    if not packed:
        return np.zeros(_FOOTPRINT_PIXELS, bool)
    bits = np.unpackbits(np.frombuffer(zlib.decompress(bytes(packed)), np.uint8))
    return bits[:_FOOTPRINT_PIXELS].astype(bool)


def pack_footprint(bits: np.ndarray) -> bytes:
    """The stored form of a coverage bitmap."""
    return zlib.compress(np.packbits(bits).tobytes())


def mark_footprint(bits: np.ndarray, pixels: np.ndarray) -> None:
    """Set the order-8 pixels holding these storage pixels."""
    bits[pixels >> (2 * (STORAGE_ORDER - FOOTPRINT_ORDER))] = True


def footprint_area(bits: np.ndarray) -> float:
    """Square degrees of the pixels set in a coverage bitmap."""
    return float(bits.sum()) * SKY_DEG2 / _FOOTPRINT_PIXELS
