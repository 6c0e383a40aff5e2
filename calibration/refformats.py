"""Readers of reference-survey files: each yields chunks of stars as standard arrays. No Django here.

A format names the file's columns for the position, the identifier and each standard band,
and how they become a magnitude and its error (most files hold both; Gaia gives the flux
over its error, the synthetic photometry a flux error and a validity flag). Text files are
read in chunks of about ``CHUNK_BYTES`` with astropy's fast C reader, so memory stays the
same for any length; a chunk the fast reader refuses is read again line by line to name the
malformed lines. Up to ``max_bad_rows`` malformed rows are skipped and reported; one more
aborts the read.
"""

import csv
import gzip
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import ascii, fits
from astropy.io.ascii import InconsistentTableError
from astropy.table import Table

from gsafollowup.errors import BadInput

from .surveys import BANDS

#: APASS DR10 CSV columns of each band (magnitude, error); ``NA`` marks a missing value.
APASS_DR10_COLUMNS = {
    "B": ("Johnson_B (B)", "Berr"),
    "V": ("Johnson_V (V)", "Verr"),
    "u": ("Sloan_u (SU)", "SUerr"),
    "g": ("Sloan_g (SG)", "SGerr"),
    "r": ("Sloan_r (SR)", "SRerr"),
    "i": ("Sloan_i (SI)", "SIerr"),
    "z": ("Sloan_z (SZ)", "SZerr"),
    "y": ("PanSTARRS_Y (Y)", "Yerr"),
}

#: About this many bytes of text are parsed at once (about 100,000 APASS rows, 300 MB of memory).
CHUNK_BYTES = 16 * 1024 * 1024
#: Rows per chunk for FITS tables.
CHUNK_ROWS = 250_000
#: Malformed rows skipped (and reported) before a file is refused.
MAX_BAD_ROWS = 10
#: Source identifier of a star whose file gives none.
NO_SOURCE_ID = -1

#: 2.5 / ln(10): turns a relative flux error into a magnitude error.
MAG_PER_RELATIVE_FLUX = 2.5 / math.log(10)

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


class BadReferenceFile(BadInput):
    """A reference-catalog file cannot be read as the format it claims, or has too many bad rows."""

    code = "bad_reference_file"


@dataclass(frozen=True)
class Format:
    """How one kind of survey file names its columns and encodes magnitudes and their errors.

    ``bands`` maps a standard band to the roles of its columns: ``mag`` with ``err`` (a
    magnitude error), or ``flux_over_error`` (Gaia), or ``flux`` and ``flux_error``, and an
    optional ``flag`` that must be 1 for the magnitude to count.
    """

    name: str
    description: str
    surveys: tuple[str, ...]
    version: str = ""
    ra: str = "ra"
    dec: str = "dec"
    source_id: str | None = None
    bands: dict[str, dict[str, str]] = field(default_factory=dict)
    missing: tuple[str, ...] = ("", "NA", "null", "NULL", "nan", "NaN", "--")
    #: Magnitudes that mean "no measurement" (PS1 -999, SDSS -9999, RefCat2 0).
    sentinels: tuple[float, ...] = ()
    #: Systematic error added in quadrature to errors derived from ``flux_over_error``.
    zero_point_error: dict[str, float] = field(default_factory=dict)
    #: Column names of a file without a header line, and factors turning its integers into units.
    positional: tuple[str, ...] = ()
    positional_scale: dict[str, float] = field(default_factory=dict)

    def columns(self) -> dict[str, str]:
        """Every column this format reads, by role key (``ra``, ``V``, ``V_err`` ...)."""
        wanted = {"ra": self.ra, "dec": self.dec}
        if self.source_id:
            wanted["source_id"] = self.source_id
        for band, roles in self.bands.items():
            for role, column in roles.items():
                wanted[band if role == "mag" else f"{band}_{role}"] = column
        return wanted


def _direct(pairs: dict[str, tuple[str, str]]) -> dict[str, dict[str, str]]:
    return {band: {"mag": mag, "err": err} for band, (mag, err) in pairs.items()}


_REFCAT2_COLUMNS = (
    "RA", "Dec", "plx", "dplx", "pmra", "dpmra", "pmdec", "dpmdec", "Gaia", "dGaia", "BP", "dBP",
    "RP", "dRP", "Teff", "AGaia", "dupvar", "Ag", "rp1", "r1", "r10", "g", "dg", "gchi", "gcontrib",
    "r", "dr", "rchi", "rcontrib", "i", "di", "ichi", "icontrib", "z", "dz", "zchi", "zcontrib",
    "nstat", "J", "dJ", "H", "dH", "K", "dK",
)  # fmt: skip

FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "apass-dr10",
            "APASS DR10 CSV as served by AAVSO (NA marks a missing value)",
            surveys=("APASS",),
            version="DR10",
            ra="radeg",
            dec="decdeg",
            bands=_direct(APASS_DR10_COLUMNS),
        ),
        Format(
            "gaia-dr3",
            "Gaia DR3 gaia_source CSV from the Gaia archive (bulk files or query results)",
            surveys=("GaiaDR3",),
            version="DR3",
            source_id="source_id",
            bands={
                band: {"mag": f"phot_{key}_mean_mag", "flux_over_error": f"phot_{key}_mean_flux_over_error"}
                for band, key in (("G", "g"), ("BP", "bp"), ("RP", "rp"))
            },
            # Zero-point uncertainties of the Gaia (E)DR3 photometric system (Riello et al. 2021),
            # added in quadrature as the Gaia archive and VizieR do.
            zero_point_error={"G": 0.0027553202, "BP": 0.0027901700, "RP": 0.0037793818},
        ),
        Format(
            "gaia-gspc",
            "Gaia DR3 synthetic photometry (synthetic_photometry_gspc) joined with gaia_source ra, dec",
            surveys=("GaiaSP",),
            version="DR3",
            source_id="source_id",
            bands={
                band: {
                    "mag": f"{key}_mag",
                    "flux": f"{key}_flux",
                    "flux_error": f"{key}_flux_error",
                    "flag": f"{key}_flag",
                }
                for band, key in (
                    ("U", "u_jkc"),
                    ("B", "b_jkc"),
                    ("V", "v_jkc"),
                    ("R", "r_jkc"),
                    ("I", "i_jkc"),
                    ("u", "u_sdss"),
                    ("g", "g_sdss"),
                    ("r", "r_sdss"),
                    ("i", "i_sdss"),
                    ("z", "z_sdss"),
                )
            },
        ),
        Format(
            "ps1",
            "Pan-STARRS1 DR2 mean-object CSV from MAST (-999 marks a missing value)",
            surveys=("PS1",),
            version="DR2",
            ra="raMean",
            dec="decMean",
            source_id="objID",
            bands=_direct({b: (f"{b}MeanPSFMag", f"{b}MeanPSFMagErr") for b in "grizy"}),
            sentinels=(-999.0,),
        ),
        Format(
            "sdss",
            "SDSS PhotoObj CSV from SkyServer or CasJobs, PSF magnitudes (-9999 marks a missing value)",
            surveys=("SDSS",),
            source_id="objID",
            bands=_direct({b: (f"psfMag_{b}", f"psfMagErr_{b}") for b in "ugriz"}),
            sentinels=(-9999.0, -999.0),
        ),
        Format(
            "refcat2",
            "ATLAS-RefCat2 CSV: MAST files with a header, or the original headerless files in integer units",
            surveys=("RefCat2",),
            version="2",
            ra="RA",
            dec="Dec",
            source_id="objid",
            bands=_direct({b: (b, f"d{b}") for b in ("g", "r", "i", "z", "J", "H", "K")}),
            sentinels=(0.0,),
            positional=_REFCAT2_COLUMNS,
            # The original files hold RA and Dec in 1e-8 degrees and magnitudes in millimagnitudes.
            positional_scale={"RA": 1e-8, "Dec": 1e-8}
            | {c: 1e-3 for c in "g dg r dr i di z dz J dJ H dH K dK".split()},
        ),
    )
}
GENERIC = "generic"
FORMAT_NAMES = (*FORMATS, GENERIC)


def parse_column_map(text: str) -> dict[str, str]:
    """``ra=RAJ2000,dec=DEJ2000,V=Vmag,V_err=e_Vmag`` as a role-to-column dict, checked."""
    mapping = {}
    for item in (text or "").split(","):
        if not item.strip():
            continue
        key, sep, column = item.partition("=")
        key, column = key.strip(), column.strip()
        if not sep or not key or not column:
            raise BadInput(f"--columns item {item.strip()!r} is not KEY=COLUMN.")
        band = key.removesuffix("_err")
        if key not in ("ra", "dec", "source_id") and band not in BANDS:
            raise BadInput(
                f"--columns key {key!r} is not ra, dec, source_id, a band or BAND_err "
                f"(bands: {' '.join(BANDS)})."
            )
        mapping[key] = column
    missing = [key for key in ("ra", "dec") if key not in mapping]
    if missing:
        raise BadInput(f"--columns must map {' and '.join(missing)}.")
    for key in mapping:
        if key.endswith("_err") and key.removesuffix("_err") not in mapping:
            raise BadInput(f"--columns maps {key} but not the magnitude {key.removesuffix('_err')}.")
    if not any(key in BANDS for key in mapping):
        raise BadInput("--columns must map at least one band, e.g. V=Vmag,V_err=e_Vmag.")
    return mapping


def generic_format(column_map: dict[str, str]) -> Format:
    """A format built from a ``--columns`` mapping."""
    bands = {}
    for band in BANDS:
        if band in column_map:
            bands[band] = {"mag": column_map[band]}
            if f"{band}_err" in column_map:
                bands[band]["err"] = column_map[f"{band}_err"]
    return Format(
        GENERIC,
        "any CSV, FITS or VOTable table, with its columns named on the command line",
        surveys=(),
        ra=column_map["ra"],
        dec=column_map["dec"],
        source_id=column_map.get("source_id"),
        bands=bands,
    )


@dataclass
class StarChunk:
    """Stars read from one stretch of a file: positions, identifiers and standard magnitudes."""

    ra: np.ndarray
    dec: np.ndarray
    source_id: np.ndarray | None
    mag: dict[str, np.ndarray]
    err: dict[str, np.ndarray]
    #: How far into the file (bytes, or rows for FITS/VOTable) the reader has come.
    position: int = 0

    def __len__(self) -> int:
        return len(self.ra)

    @property
    def nbytes(self) -> int:
        """Memory held by the arrays."""
        arrays = [self.ra, self.dec, *self.mag.values(), *self.err.values()]
        return sum(a.nbytes for a in arrays) + (0 if self.source_id is None else self.source_id.nbytes)

    @classmethod
    def join(cls, chunks: list["StarChunk"]) -> "StarChunk":
        """One chunk holding the stars of several, in order."""
        if len(chunks) == 1:
            return chunks[0]
        first = chunks[0]
        return cls(
            ra=np.concatenate([c.ra for c in chunks]),
            dec=np.concatenate([c.dec for c in chunks]),
            source_id=None if first.source_id is None else np.concatenate([c.source_id for c in chunks]),
            mag={band: np.concatenate([c.mag[band] for c in chunks]) for band in first.mag},
            err={band: np.concatenate([c.err[band] for c in chunks]) for band in first.err},
            position=chunks[-1].position,
        )


def _open_text(path: Path) -> tuple[io.TextIOWrapper, io.BufferedReader]:
    """A text stream of the file (gunzipped when it is gzip), and the raw file for progress."""
    raw = open(path, "rb")  # closed with the text stream by ReferenceFileReader.close()
    compressed = raw.peek(2)[:2] == b"\x1f\x8b"
    stream = gzip.GzipFile(fileobj=raw) if compressed else raw
    # utf-8-sig drops a byte-order mark; newline=None turns CRLF files into plain lines.
    return io.TextIOWrapper(stream, encoding="utf-8-sig", newline=None), raw


def sniff_kind(path: Path) -> str:
    """``fits``, ``votable`` or ``text``, from the first bytes of the file."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head.startswith(b"SIMPLE  ="):
        return "fits"
    if head.lstrip().startswith(b"<?xml") or b"<VOTABLE" in head:
        return "votable"
    return "text"


class _Lookup:
    """Case-insensitive column lookup in a header."""

    def __init__(self, names: list[str]):
        self.names = names
        self.by_lower = {name.lower(): name for name in names}

    def get(self, column: str) -> str | None:
        return self.by_lower.get(column.lower())

    def has_all(self, columns) -> bool:
        return all(self.get(c) is not None for c in columns)


def _present_bands(fmt: Format, lookup: _Lookup) -> list[str]:
    """Bands of the format whose every column is in the header."""
    return [band for band, roles in fmt.bands.items() if lookup.has_all(roles.values())]


def detect_format(names: list[str]) -> str | None:
    """The format whose position and at least one band's columns are in a header, or None."""
    lookup = _Lookup(names)
    matches = [
        fmt.name
        for fmt in FORMATS.values()
        if lookup.has_all((fmt.ra, fmt.dec)) and _present_bands(fmt, lookup)
    ]
    if len(matches) > 1:
        raise BadReferenceFile(
            f"The header fits several formats ({', '.join(matches)}); choose one with --format."
        )
    return matches[0] if matches else None


def _looks_headerless(fields: list[str], fmt: Format) -> bool:
    """True for a first line of numbers as long as the format's positional column list."""
    return (
        bool(fmt.positional)
        and len(fields) == len(fmt.positional)
        and all(_NUMBER.fullmatch(f.strip()) or re.fullmatch(r"[0-9a-fA-F]+", f.strip()) for f in fields)
    )


def _first_line(handle) -> tuple[str | None, int]:
    """The first line that is neither blank nor a # comment, and its line number."""
    number = 0
    for line in handle:
        number += 1
        if line.strip() and not line.startswith("#"):
            return line, number
    return None, number


def _split(line: str) -> list[str]:
    return next(csv.reader([line]))


class _BadRows:
    """Malformed rows seen so far; refuses the file when there are more than allowed."""

    def __init__(self, limit: int, unit: str):
        self.limit = limit
        self.unit = unit
        self.rows: list[tuple[int, str]] = []

    def add(self, number: int, reason: str) -> None:
        self.rows.append((number, reason))
        if len(self.rows) > self.limit:
            shown = "; ".join(f"{self.unit} {n}: {why}" for n, why in self.rows[:5])
            raise BadReferenceFile(
                f"More than {self.limit} malformed rows; nothing was loaded. First ones: {shown}"
            )


class ReferenceFileReader:
    """Reads one reference-survey file in chunks of ``StarChunk``; see the module docstring."""

    def __init__(
        self,
        path,
        format_name: str | None = None,
        columns: dict[str, str] | None = None,
        max_bad_rows: int = MAX_BAD_ROWS,
    ):
        self.path = Path(path)
        if not self.path.is_file():
            raise BadReferenceFile(f"{self.path} is not a file.")
        if format_name is not None and format_name not in FORMAT_NAMES:
            raise BadReferenceFile(f"Unknown format {format_name!r}; one of: {', '.join(FORMAT_NAMES)}.")
        if columns and format_name not in (None, GENERIC):
            raise BadReferenceFile("--columns goes with --format generic only.")
        if format_name == GENERIC and not columns:
            raise BadReferenceFile("--format generic needs --columns, e.g. ra=RAJ2000,dec=DEJ2000,V=Vmag.")
        self.kind = sniff_kind(self.path)
        if columns and format_name is None:
            format_name = GENERIC
        if self.kind != "text" and format_name != GENERIC:
            raise BadReferenceFile(
                f"{self.path.name} is a {self.kind.upper()} file: use --format generic with --columns."
            )
        self.size = self.path.stat().st_size
        self.bad = _BadRows(max_bad_rows, "line" if self.kind == "text" else "row")
        self._headerless = False
        self._open = []
        try:
            if self.kind == "text":
                self._read_header(format_name, columns)
            else:
                self._open_table(columns)
        except BadReferenceFile:
            self.close()
            raise

    # -- set-up ------------------------------------------------------------------------------

    def _read_header(self, format_name, columns) -> None:
        self._text, self._raw = _open_text(self.path)
        self._open += [self._raw, self._text]  # closing gzip text leaves the raw file open
        try:
            line, self._line = _first_line(self._text)
        except UnicodeDecodeError:
            raise BadReferenceFile(f"{self.path.name} is not UTF-8 text.") from None
        if line is None:
            raise BadReferenceFile(f"{self.path.name} is empty.")
        names = [name.strip() for name in _split(line)]
        if format_name is None:
            format_name = detect_format(names)
            if format_name is None and _looks_headerless(names, FORMATS["refcat2"]):
                format_name = "refcat2"
        if format_name is None:
            self._refuse_header(names)
        self.format = generic_format(columns) if format_name == GENERIC else FORMATS[format_name]
        if _looks_headerless(names, self.format):
            # The first line is data: read it again with the rest.
            self._headerless = True
            names = list(self.format.positional)
            self._pending = [line]
            self._line -= 1
        else:
            self._pending = []
        self.names = names
        self._bind_columns(_Lookup(names))

    def _refuse_header(self, names: list[str]) -> None:
        if len(names) == 1:
            for delimiter, label in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars"), (" ", "spaces")):
                if delimiter in names[0].strip():
                    raise BadReferenceFile(
                        f"{self.path.name} looks separated by {label}; reference files must be "
                        "comma-separated (CSV)."
                    )
        raise BadReferenceFile(
            f"Cannot tell the format of {self.path.name} from its header ({', '.join(names[:8])}"
            f"{', ...' if len(names) > 8 else ''}); pass --format ({', '.join(FORMAT_NAMES)})."
        )

    def _bind_columns(self, lookup: _Lookup) -> None:
        """Find each wanted column in the header; refuse when the position or every band is missing."""
        fmt = self.format
        where = f"{self.path.name} ({fmt.name})"
        missing = [c for c in (fmt.ra, fmt.dec) if lookup.get(c) is None]
        if len(lookup.names) == 1 and missing:
            self._refuse_header(lookup.names)
        if missing:
            raise BadReferenceFile(f"{where} lacks the position column(s) {', '.join(missing)}.")
        self.bands = _present_bands(fmt, lookup)
        if not self.bands:
            expected = ", ".join(next(iter(fmt.bands.values())).values())
            raise BadReferenceFile(f"{where} has none of the band columns it needs (e.g. {expected}).")
        for band, roles in fmt.bands.items():
            found = [c for c in roles.values() if lookup.get(c) is not None]
            if found and band not in self.bands:
                absent = [c for c in roles.values() if lookup.get(c) is None]
                raise BadReferenceFile(f"{where} has {found[0]} but lacks {', '.join(absent)}.")
        self.has_ids = bool(fmt.source_id) and lookup.get(fmt.source_id) is not None
        self.columns = {
            key: lookup.get(column)
            for key, column in fmt.columns().items()
            if key in ("ra", "dec")
            or (key == "source_id" and self.has_ids)
            or key.split("_")[0] in self.bands
        }

    def _open_table(self, columns) -> None:
        self.format = generic_format(columns)
        try:
            if self.kind == "fits":
                self._hdul = fits.open(self.path, memmap=True)
                self._open.append(self._hdul)
                hdu = next((h for h in self._hdul if isinstance(h, fits.BinTableHDU | fits.TableHDU)), None)
                if hdu is None:
                    raise BadReferenceFile(f"{self.path.name} holds no FITS table.")
                self._table = hdu.data
                names = list(hdu.columns.names)
            else:
                # VOTable is XML: astropy reads it whole, so very large tables belong in CSV or FITS.
                self._table = Table.read(self.path, format="votable")
                names = list(self._table.colnames)
        except (OSError, ValueError) as error:
            kind = self.kind.upper()
            raise BadReferenceFile(f"{self.path.name} cannot be read as {kind}: {error}") from None
        self.names = names
        self.size = len(self._table)
        self._bind_columns(_Lookup(names))

    # -- reading -----------------------------------------------------------------------------

    def chunks(self) -> Iterator[StarChunk]:
        """The stars of the file in order, chunk by chunk; malformed rows are left out and counted."""
        if self.kind == "text":
            yield from self._text_chunks()
        else:
            yield from self._table_chunks()

    def close(self) -> None:
        """Close the file."""
        while self._open:
            self._open.pop().close()

    def _text_chunks(self) -> Iterator[StarChunk]:
        try:
            while True:
                lines = self._pending + self._text.readlines(CHUNK_BYTES)
                self._pending = []
                if not lines:
                    return
                first = self._line + 1
                self._line += len(lines)
                values, numbers = self._parse_fast(lines, first)
                if values is None:
                    values, numbers = self._parse_slowly(lines, first)
                chunk = self._finish(values, numbers)
                chunk.position = self._raw.tell()
                yield chunk
        except UnicodeDecodeError:
            raise BadReferenceFile(f"{self.path.name} is not UTF-8 text (near line {self._line}).") from None
        except (EOFError, gzip.BadGzipFile, OSError) as error:
            raise BadReferenceFile(f"{self.path.name} is truncated or damaged: {error}") from None

    def _parse_fast(self, lines: list[str], first: int):
        """Columns of a chunk by astropy's C reader, or (None, None) when it meets anything odd."""
        wanted = list(self.columns.values())
        try:
            table = ascii.read(
                "".join(lines),
                format="no_header",
                delimiter=",",
                names=self.names,
                include_names=wanted,
                guess=False,
                fast_reader={"use_fast_converter": True},
                fill_values=[(token, "0") for token in self.format.missing],
            )
        except (InconsistentTableError, ValueError):
            return None, None
        if len(table) != len(lines):
            data = [bool(line.strip()) and not line.startswith("#") for line in lines]
            if sum(data) != len(table):
                return None, None
            numbers = first + np.flatnonzero(data)
        else:
            numbers = first + np.arange(len(lines))
        values = {}
        for key, column in self.columns.items():
            col = table[column]
            if col.dtype.kind not in "iuf":
                return None, None
            if key == "source_id":
                if col.dtype.kind == "f":
                    return None, None
                values[key] = np.ma.filled(np.ma.asarray(col, dtype=np.int64), NO_SOURCE_ID)
            else:
                values[key] = np.ma.filled(np.ma.asarray(col, dtype=np.float64), np.nan)
        return values, numbers

    def _parse_slowly(self, lines: list[str], first: int):
        """Columns of a chunk line by line, naming each malformed line."""
        index = {key: self.names.index(column) for key, column in self.columns.items()}
        missing = set(self.format.missing)
        rows, numbers = [], []
        for offset, line in enumerate(lines):
            number = first + offset
            if not line.strip() or line.startswith("#"):
                continue
            fields = _split(line)
            if len(fields) != len(self.names):
                self.bad.add(number, f"{len(fields)} fields where the header has {len(self.names)}")
                continue
            row, problem = [], None
            for key, position in index.items():
                token = fields[position].strip()
                if token in missing:
                    row.append(NO_SOURCE_ID if key == "source_id" else math.nan)
                elif key != "source_id" and _NUMBER.fullmatch(token):
                    row.append(float(token))
                elif key == "source_id" and _INTEGER.fullmatch(token) and abs(int(token)) < 2**63:
                    row.append(int(token))
                else:
                    problem = (
                        f"{self.columns[key]} is not {'an integer' if key == 'source_id' else 'a number'}"
                    )
                    problem += f": {token[:40]!r}"
                    break
            if problem:
                self.bad.add(number, problem)
                continue
            rows.append(row)
            numbers.append(number)
        values = {}
        for k, key in enumerate(index):
            dtype = np.int64 if key == "source_id" else np.float64
            values[key] = np.array([row[k] for row in rows], dtype=dtype)
        return values, np.array(numbers, dtype=np.int64)

    def _table_chunks(self) -> Iterator[StarChunk]:
        for start in range(0, self.size, CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, self.size)
            values = {}
            for key, column in self.columns.items():
                col = self._table[column][start:stop]
                if np.asarray(col).dtype.kind not in "iuf":
                    raise BadReferenceFile(f"Column {column} of {self.path.name} is not numeric.")
                if key == "source_id":
                    values[key] = np.ma.filled(np.ma.asarray(col, dtype=np.int64), NO_SOURCE_ID)
                else:
                    values[key] = np.ma.filled(np.ma.asarray(col, dtype=np.float64), np.nan)
            chunk = self._finish(values, np.arange(start + 1, stop + 1))
            chunk.position = stop
            yield chunk

    # -- from columns to stars ---------------------------------------------------------------

    def _finish(self, values: dict[str, np.ndarray], numbers: np.ndarray) -> StarChunk:
        """Scale, drop rows without a valid position (counted as bad), and derive magnitudes."""
        fmt = self.format
        if self._headerless:
            for key, column in self.columns.items():
                if column in fmt.positional_scale:
                    values[key] = values[key] * fmt.positional_scale[column]
        ra, dec = values["ra"], values["dec"]
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(ra) & np.isfinite(dec) & (ra >= 0) & (ra <= 360) & (np.abs(dec) <= 90))
        for k in np.flatnonzero(bad):
            self.bad.add(int(numbers[k]), f"no valid position (ra={float(ra[k])}, dec={float(dec[k])})")
        if bad.any():
            values = {key: column[~bad] for key, column in values.items()}
        mag, err = {}, {}
        for band in self.bands:
            mag[band], err[band] = band_magnitudes(fmt, band, values)
        return StarChunk(
            ra=values["ra"] % 360.0,
            dec=values["dec"],
            source_id=values["source_id"] if self.has_ids else None,
            mag=mag,
            err=err,
        )


def band_magnitudes(fmt: Format, band: str, values: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude and error of one band, NaN where the values hold no valid measurement."""
    roles = fmt.bands[band]
    mag = np.array(values[band], dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        if "err" in roles:
            err = np.array(values[f"{band}_err"], dtype=np.float64)
        elif "flux_over_error" in roles:
            relative = MAG_PER_RELATIVE_FLUX / values[f"{band}_flux_over_error"]
            err = np.hypot(relative, fmt.zero_point_error.get(band, 0.0))
        elif "flux_error" in roles:
            err = MAG_PER_RELATIVE_FLUX * values[f"{band}_flux_error"] / values[f"{band}_flux"]
        else:
            err = np.full_like(mag, np.nan)
    for sentinel in fmt.sentinels:
        mag[mag == sentinel] = np.nan
    if "flag" in roles:
        mag[values[f"{band}_flag"] != 1] = np.nan
    mag[~np.isfinite(mag)] = np.nan
    err[~np.isfinite(mag) | ~np.isfinite(err) | (err < 0)] = np.nan
    return mag, err


def _column_values(column, key: str) -> np.ndarray:
    """A table column as float64 (NaN for masked) or, for the identifier, int64 (-1 for masked)."""
    if key == "source_id":
        return np.ma.filled(np.ma.asarray(column, dtype=np.int64), NO_SOURCE_ID)
    return np.ma.filled(np.ma.asarray(column, dtype=np.float64), np.nan)


def table_stars(fmt: Format, table, where: str) -> tuple[StarChunk, list[str]]:
    """The stars of an in-memory table (astropy Table, pandas DataFrame or dict of arrays) read as ``fmt``.

    Columns are found case-insensitively. Returns the chunk and the format's bands present;
    BadReferenceFile when the position or every band is missing. Rows without a valid
    position are dropped: an archive answer has no line numbers to report them by.
    """
    if isinstance(table, dict):
        names = list(table)
    else:
        names = list(table.colnames) if hasattr(table, "colnames") else list(table.columns)
    lookup = _Lookup(names)
    missing = [c for c in (fmt.ra, fmt.dec) if lookup.get(c) is None]
    if missing:
        raise BadReferenceFile(f"{where} ({fmt.name}) lacks the position column(s) {', '.join(missing)}.")
    bands = _present_bands(fmt, lookup)
    if not bands:
        raise BadReferenceFile(f"{where} ({fmt.name}) has none of its band columns.")
    has_ids = bool(fmt.source_id) and lookup.get(fmt.source_id) is not None
    values = {
        key: _column_values(table[lookup.get(column)], key)
        for key, column in fmt.columns().items()
        if key in ("ra", "dec") or (key == "source_id" and has_ids) or key.split("_")[0] in bands
    }
    ra, dec = values["ra"], values["dec"]
    with np.errstate(invalid="ignore"):
        good = np.isfinite(ra) & np.isfinite(dec) & (ra >= 0) & (ra <= 360) & (np.abs(dec) <= 90)
    if not good.all():
        values = {key: column[good] for key, column in values.items()}
    mag, err = {}, {}
    for band in bands:
        mag[band], err[band] = band_magnitudes(fmt, band, values)
    chunk = StarChunk(
        ra=values["ra"] % 360.0,
        dec=values["dec"],
        source_id=values["source_id"] if has_ids else None,
        mag=mag,
        err=err,
    )
    return chunk, bands
