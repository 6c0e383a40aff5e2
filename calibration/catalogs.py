"""Read an uploaded source catalog into arrays, with one clear error for every bad file. No Django.

Formats: SExtractor ASCII_HEAD (``#   1 NAME  description  [unit]`` then rows), plain FITS
binary/ASCII tables, and FITS_LDAC (the ``LDAC_OBJECTS`` table). astropy does the parsing;
this module guards it so that only :class:`gsafollowup.errors.BadCatalog` leaves the reader.
"""

import io
import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass, field

import numpy as np
from astropy import units as u
from astropy.io import ascii as astropy_ascii
from astropy.io import fits
from astropy.io.ascii import InconsistentTableError
from astropy.io.fits.verify import VerifyError

from calibration.sky import enclosing_cone, unit_vectors
from gsafollowup.errors import BadCatalog

#: Accepted names for each quantity, the first found wins (real catalogs use all of these).
RA_NAMES = ("ALPHA_J2000", "X_WORLD", "ALPHA_SKY", "ALPHAWIN_J2000")
DEC_NAMES = ("DELTA_J2000", "Y_WORLD", "DELTA_SKY", "DELTAWIN_J2000")
MAG_NAMES = ("MAG_AUTO",)
MAGERR_NAMES = ("MAGERR_AUTO",)
OPTIONAL_NAMES = {
    "flags": ("FLAGS",),
    "fwhm": ("FWHM_IMAGE",),
    "class_star": ("CLASS_STAR",),
    "x": ("X_IMAGE",),
    "y": ("Y_IMAGE",),
}

#: A compressed upload may not expand beyond this (decompression bombs).
MAX_UNCOMPRESSED_BYTES = 256 * 2**20
MAX_MESSAGE = 99

#: What astropy and numpy raise on malformed input. Caught at the one boundary
#: (:func:`read_catalog`) and turned into BadCatalog; anything else is a bug and propagates.
#: MemoryError is here because a header may ask for more memory than exists.
LIBRARY_FAILURES = (
    ValueError,  # includes astropy InconsistentTableError and UnicodeDecodeError
    TypeError,
    KeyError,
    IndexError,
    # astropy's lazy HDU iteration over a corrupt header: "'_BaseHDU' object has no attribute 'size'"
    AttributeError,
    OSError,  # "Empty or corrupt FITS file", truncated data
    EOFError,
    OverflowError,
    ZeroDivisionError,
    VerifyError,
    struct.error,
    zlib.error,
    MemoryError,
)

#: Leading bytes of files people upload by mistake, and what to call them in the message.
_NOT_CATALOGS = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"BZh", "a bzip2 file"),
    (b"\xfd7zXZ\x00", "an xz file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
)
_UTF16 = (b"\xff\xfe", b"\xfe\xff")
_MARKUP = re.compile(rb"^\s*<(\?xml|!doctype|html|votable)", re.IGNORECASE)
FITS_BLOCK = 2880
_HEADER_LINE = re.compile(r"^\s*#\s*(\d+)\s+([-\w]+)")
_SEXAGESIMAL = re.compile(r"^\s*[-+]?\d{1,3}[: ]\d{1,2}[: ]\d")
_DEGREE_UNITS = {"deg", "degree", "degrees"}
_BAD_FLAGS = ~np.int64(3)  # SExtractor bits above 2 (saturated, truncated, ...) spoil the photometry


@dataclass
class SourceCatalog:
    """Sources of one frame: positions (deg), instrumental magnitudes and optional extras."""

    ra: np.ndarray
    dec: np.ndarray
    mag: np.ndarray
    magerr: np.ndarray
    flags: np.ndarray | None = None
    fwhm: np.ndarray | None = None
    class_star: np.ndarray | None = None
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    format: str = "ascii_head"
    columns: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ra)

    def footprint(self) -> tuple[float, float, float]:
        """(ra_centre, dec_centre, radius_deg) of a cone enclosing every source."""
        return enclosing_cone(unit_vectors(self.ra, self.dec))

    def photometry_ok(self) -> np.ndarray:
        """Mask of sources whose magnitude and error can serve a calibration."""
        ok = np.isfinite(self.mag) & (self.mag < 90) & np.isfinite(self.magerr) & (self.magerr > 0)
        if self.flags is not None:
            ok &= (self.flags.astype(np.int64) & _BAD_FLAGS) == 0
        return ok


def bad(message: str) -> BadCatalog:
    """A BadCatalog with a single-line message short enough for an observer to read."""
    line = " ".join(message.split())
    return BadCatalog(line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 3] + "...")


def read_catalog(source, filename: str | None = None, max_rows: int = 2_000_000) -> SourceCatalog:
    """Read a catalog from bytes, a path or a binary file object; raise BadCatalog if unusable."""
    data = _bytes_of(source)
    try:
        with warnings.catch_warnings():
            # astropy warns about odd headers before failing or coping; the outcome is what counts.
            warnings.simplefilter("ignore")
            return _parse(data, filename or "", max_rows, may_decompress=True)
    except BadCatalog:
        raise
    except UnicodeError as error:
        raise bad("the catalog has bytes that are not UTF-8 text") from error
    except LIBRARY_FAILURES as error:
        raise bad("the file is corrupt or not a source catalog") from error


def _bytes_of(source) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, (str, os.PathLike)):
        try:
            with open(source, "rb") as handle:
                return handle.read()
        except OSError as error:
            raise bad(f"cannot open the catalog file ({error.strerror or 'unreadable'})") from error
    if hasattr(source, "read"):
        try:
            content = source.read()
        except OSError as error:
            raise bad("cannot read the uploaded catalog") from error
        if isinstance(content, str):
            content = content.encode("utf-8")
        return bytes(content)
    raise TypeError(f"read_catalog needs bytes, a path or a binary file object, not {type(source).__name__}")


def _parse(data: bytes, filename: str, max_rows: int, may_decompress: bool) -> SourceCatalog:
    if not data.strip():
        raise bad("the catalog file is empty")
    if data[:2] == b"\x1f\x8b":
        if not may_decompress:
            raise bad("the catalog is compressed twice")
        return _parse(_gunzip(data), filename, max_rows, may_decompress=False)
    if data[:9] == b"SIMPLE  =":
        return _read_fits(data, max_rows)
    if data.startswith(_UTF16):
        raise bad("the catalog is UTF-16 text: save it as plain ASCII (or UTF-8) and upload again")
    for magic, kind in _NOT_CATALOGS:
        if data.startswith(magic):
            raise bad(f"this is {kind}, not a source catalog: upload SExtractor's ASCII_HEAD or FITS output")
    if _MARKUP.match(data[:200]):
        raise bad("this is HTML/XML (a web page or VOTable?), not a SExtractor ASCII_HEAD or FITS catalog")
    if filename.lower().endswith((".fits", ".fit", ".fts", ".ldac", ".fz")):
        raise bad("the file is named like FITS but is not a FITS file")
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise bad(f"binary data (NUL byte on line {line}): expected a SExtractor ASCII_HEAD or FITS catalog")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise bad(f"not UTF-8 text (bad byte on line {line}): expected a SExtractor catalog") from error
    return _read_ascii(text, max_rows)


def _gunzip(data: bytes) -> bytes:
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, MAX_UNCOMPRESSED_BYTES)
    except zlib.error as error:
        raise bad("the gzip file is corrupt: compress the catalog again") from error
    if inflater.unconsumed_tail:
        raise bad(f"the compressed catalog expands beyond {MAX_UNCOMPRESSED_BYTES // 2**20} MB")
    if not inflater.eof:
        raise bad("the gzip file is truncated: the upload was cut short, send it again")
    return out


# ---------------------------------------------------------------- ASCII_HEAD


def _read_ascii(text: str, max_rows: int) -> SourceCatalog:
    # Tabs are valid separators in rows but defeat astropy's header pattern.
    lines = text.replace("\t", " ").splitlines()
    declared: dict[int, str] = {}
    first_data = last_data = None
    for line in lines:
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            match = _HEADER_LINE.match(line)
            if match and first_data is None:
                declared[int(match.group(1))] = match.group(2)
            continue
        if first_data is None:
            first_data = line
        last_data = line
    names = list(declared.values())
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise bad(f"the header names column {twice[0]} twice: each column needs its own name")
    if not declared:
        raise bad("no SExtractor header: expected lines like '#   1 ALPHA_J2000' before the rows")
    if first_data is None:
        raise bad("the catalog has a header but no rows")
    n_rows = sum(1 for line in lines if line.strip() and not line.lstrip().startswith("#"))
    if n_rows > max_rows:
        raise bad(f"the catalog has {n_rows} rows; the limit is {max_rows}")
    n_values = len(first_data.split())
    n_declared = max(declared)
    if n_values < n_declared:
        raise bad(f"the header declares {n_declared} columns but the rows have {n_values}")
    n_last = len(last_data.split())
    if n_last < n_values and not text.endswith(("\n", "\r")):
        raise bad(f"the last row has {n_last} of {n_values} values: the file is truncated, send it again")
    try:
        table = _read_sextractor_rows(lines, first_data, n_values)
    except InconsistentTableError as error:
        raise bad(f"rows do not all have the {n_values} values the header implies") from error
    declared_names = set(declared.values())

    def get(name):
        column = table[name]
        if f"{name}_1" in table.colnames and f"{name}_1" not in declared_names:
            # astropy reads extra values as a vector column; for these quantities it is a lie.
            raise bad(f"header and rows disagree on the columns (extra values after {name})")
        return column, column.unit

    return _assemble(get, table.colnames, "ascii_head")


def _read_sextractor_rows(lines: list[str], first_data: str, n_values: int):
    """The whole table: column names and units from astropy's SExtractor reader, rows from its C reader.

    astropy's SExtractor reader parses rows in Python (0.3 s for a 9,400-row DECam catalog); its
    fast C reader does it in a few hundredths. The header is read by the SExtractor reader on
    the header and the first row alone, so names (vector columns become NAME_1, ...) and units
    are exactly astropy's. Unusual headers (repeated names) keep the SExtractor reader.
    """
    header = [line for line in lines if line.lstrip().startswith("#")]
    names_table = astropy_ascii.read([*header, first_data], format="sextractor", guess=False)
    names = names_table.colnames
    if len(names) != n_values or len(set(names)) != len(names):
        return astropy_ascii.read(lines, format="sextractor", guess=False)
    rows = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    table = astropy_ascii.read(rows, format="no_header", names=names, guess=False, fast_reader=True)
    for name in names:
        table[name].unit = names_table[name].unit
    return table


# ---------------------------------------------------------------- FITS and FITS_LDAC


def _read_fits(data: bytes, max_rows: int) -> SourceCatalog:
    if len(data) % FITS_BLOCK:
        raise bad("the FITS file is truncated or damaged (its size is not a multiple of 2880 bytes)")
    try:
        return _read_fits_tables(data, max_rows)
    except (OSError, EOFError, VerifyError, struct.error) as error:
        raise bad("the FITS file is truncated or damaged: write it again and upload the new file") from error


def _read_fits_tables(data: bytes, max_rows: int) -> SourceCatalog:
    hdul = fits.open(io.BytesIO(data), memmap=False, lazy_load_hdus=True, disable_image_compression=True)
    with hdul:
        tables = []
        for index, hdu in enumerate(hdul):
            if isinstance(hdu, (fits.BinTableHDU, fits.TableHDU)) and not hdu.header.get("ZIMAGE", False):
                tables.append((index, hdu))
        if not tables:
            raise bad("the FITS file has no table: upload the source catalog, not the image")
        ldac = [(i, h) for i, h in tables if h.name == "LDAC_OBJECTS"]
        chosen = ldac or [(i, h) for i, h in tables if _has_required(h.columns.names)][:1] or tables[:1]
        fmt = "fits_ldac" if ldac else "fits"
        for _, hdu in chosen:
            named = [name.upper() for name in hdu.columns.names if name]
            twice = sorted({name for name in named if named.count(name) > 1})
            if twice:
                raise bad(f"the FITS table has two columns named {twice[0]}: each needs its own name")
        n_rows = sum(_checked_rows(hdul, i, h, len(data)) for i, h in chosen)
        if n_rows > max_rows:
            raise bad(f"the catalog has {n_rows} rows; the limit is {max_rows}")
        # A column without TTYPE has no name: nothing can ask for it.
        names = [name for name in chosen[0][1].columns.names if name]
        units = {c.name.upper(): c.unit for c in chosen[0][1].columns if c.name}
        arrays = [h.data for _, h in chosen]

        def get(name):
            parts = [np.asarray(a[name]) for a in arrays]
            return (parts[0] if len(parts) == 1 else np.concatenate(parts)), units.get(name.upper())

        return _assemble(get, names, fmt)


def _has_required(names) -> bool:
    upper = {n.upper() for n in names if n}
    return all(any(a in upper for a in group) for group in (RA_NAMES, DEC_NAMES, MAG_NAMES, MAGERR_NAMES))


def _checked_rows(hdul, index: int, hdu, file_size: int) -> int:
    """Rows of a table HDU, refusing headers that claim more bytes than the file holds."""
    header = hdu.header
    row_bytes, n_rows = header.get("NAXIS1", 0), header.get("NAXIS2", 0)
    heap = header.get("PCOUNT", 0)
    if not all(isinstance(v, int) and v >= 0 for v in (row_bytes, n_rows, heap)):
        raise bad("the FITS table header has invalid dimensions")
    start = hdul.fileinfo(index)["datLoc"]
    if start + row_bytes * n_rows + heap > file_size:
        raise bad("the FITS table is truncated or declares absurd dimensions")
    return n_rows


# ---------------------------------------------------------------- common checks


def _assemble(get, names, fmt: str) -> SourceCatalog:
    """Pick the columns, check values and units, and build the catalog."""
    upper = {n.upper(): n for n in names}

    def find(aliases):
        return next((upper[a] for a in aliases if a in upper), None)

    found = {
        key: find(aliases)
        for key, aliases in (
            ("ra", RA_NAMES),
            ("dec", DEC_NAMES),
            ("mag", MAG_NAMES),
            ("magerr", MAGERR_NAMES),
        )
    }
    missing = [
        aliases[0]
        for key, aliases in (
            ("ra", RA_NAMES),
            ("dec", DEC_NAMES),
            ("mag", MAG_NAMES),
            ("magerr", MAGERR_NAMES),
        )
        if found[key] is None
    ]
    if missing:
        hint = " (X_WORLD/Y_WORLD also do)" if found["ra"] is None or found["dec"] is None else ""
        raise bad(f"missing column(s) {', '.join(missing)}{hint}")
    values = {}
    for key, name in found.items():
        array, unit = get(name)
        values[key] = _numeric(array, name)
        if key in ("ra", "dec"):
            _check_degrees(unit, name)
    for key, aliases in OPTIONAL_NAMES.items():
        name = find(aliases)
        values[key] = _numeric(get(name)[0], name) if name else None
    n = len(values["ra"])
    if n == 0:
        raise bad("the catalog has no rows")
    keep = np.isfinite(values["ra"]) & np.isfinite(values["dec"])
    if not keep.any():
        raise bad(f"no row has a finite position in {found['ra']}/{found['dec']}")
    ra, dec = values["ra"][keep], values["dec"][keep]
    if np.abs(dec).max() > 90.0:
        raise bad(f"{found['dec']} has values beyond +-90: positions must be decimal degrees")
    if ra.min() < -180.0 or ra.max() > 360.0:
        raise bad(f"{found['ra']} has values outside 0..360: positions must be decimal degrees")
    columns = {key: (v[keep] if v is not None else None) for key, v in values.items()}
    wrapped = ra % 360.0
    columns["ra"] = np.where(wrapped >= 360.0, 0.0, wrapped)  # -1e-300 % 360 rounds to 360
    if columns["flags"] is not None:
        columns["flags"] = np.where(np.isfinite(columns["flags"]), columns["flags"], 0).astype(np.int64)
    catalog = SourceCatalog(format=fmt, columns=list(names), **columns)
    errors = catalog.magerr[np.isfinite(catalog.magerr)]
    if errors.size and (errors <= 0).all():
        raise bad(f"{found['magerr']} is zero or negative for every source: errors must be positive")
    if not catalog.photometry_ok().any():
        raise bad("no source has a usable MAG_AUTO and MAGERR_AUTO (all missing, 99 or flagged)")
    if _looks_like_hours(catalog):
        raise bad(f"{found['ra']} looks like hours, not degrees (sky scale 15x off in RA)")
    return catalog


def _numeric(array, name: str) -> np.ndarray:
    # Plain masked view: astropy columns carry units and metadata the core must not drag along.
    array = np.ma.MaskedArray(np.ma.getdata(array).view(np.ndarray), mask=np.ma.getmaskarray(array))
    if array.ndim != 1:
        raise bad(f"column {name} holds several values per row")
    if array.dtype.kind in "US" and array.size:
        sample = str(array.compressed()[0]) if array.count() else ""
        if _SEXAGESIMAL.match(sample):
            raise bad(f"{name} is sexagesimal ('{sample[:16]}'): give decimal degrees")
        raise bad(f"column {name} is not numeric (e.g. '{sample[:16]}')")
    if array.dtype.kind not in "fiub":
        raise bad(f"column {name} is not numeric")
    return np.ma.filled(array.astype(np.float64), np.nan)


def _check_degrees(unit, name: str) -> None:
    if unit is None:
        return
    text = str(unit).strip()
    if not text or text.lower() in _DEGREE_UNITS:
        return
    try:
        if u.Unit(text) == u.deg:
            return
    except ValueError:
        pass
    raise bad(f"{name} is in '{text[:12]}'; positions must be decimal degrees")


def _looks_like_hours(catalog: SourceCatalog) -> bool:
    """True when pixel axes map to sky axes with a 15x scale ratio: RA was written in hours.

    A real WCS has nearly equal scales along both sky axes; RA in hours shrinks one by 15.
    Needs pixel positions; without them hours cannot be told from degrees.
    """
    if catalog.x is None or catalog.y is None:
        return False
    ok = np.isfinite(catalog.x) & np.isfinite(catalog.y)
    if ok.sum() < 10:
        return False
    ra, dec = catalog.ra[ok], catalog.dec[ok]
    ra0, dec0 = np.median(ra), np.median(dec)
    xi = ((ra - ra0 + 180.0) % 360.0 - 180.0) * np.cos(np.radians(dec0))
    eta = dec - dec0
    design = np.column_stack((catalog.x[ok], catalog.y[ok], np.ones(ok.sum())))
    solution, _, rank, _ = np.linalg.lstsq(design, np.column_stack((xi, eta)), rcond=None)
    if rank < 3:
        return False
    fitted = design @ solution
    spread = np.array([np.var(xi), np.var(eta)])
    resid = np.var(np.column_stack((xi, eta)) - fitted, axis=0)
    if np.any(spread <= 0) or np.any(resid > 0.05 * spread):
        return False  # the pixel-to-sky map is not affine (a mosaic): no verdict
    singular = np.linalg.svd(solution[:2], compute_uv=False)
    ratio = singular[0] / singular[1] if singular[1] > 0 else np.inf
    return 10.0 < ratio < 22.0
