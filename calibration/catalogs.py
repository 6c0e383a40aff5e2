"""Read an uploaded source catalog into arrays, with one clear error for every bad file. No Django.

Formats: SExtractor ASCII_HEAD (``#   1 NAME  description  [unit]`` then rows), plain FITS
binary/ASCII tables, and FITS_LDAC (the ``LDAC_OBJECTS`` table). astropy does the parsing;
this module guards it so that only :class:`gsafollowup.errors.BadCatalog` leaves the reader.
"""

import functools
import io
import itertools
import math
import os
import re
import struct
import threading
import warnings
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas
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

#: Limits on what one upload may make the reader do. They are checked while the bytes are read,
#: before astropy allocates anything, so that no upload of MAX_UPLOAD_MB costs a worker more than
#: about 300 MB or 5 s of CPU whatever its bytes (``python -m calibration.benchmarks.cost``).
#: Each is far above real catalogs: DECam frames give about 11,000 rows of 20-40 columns, the
#: largest real frames about 500,000 sources.
MAX_ROWS = 1_000_000
#: Values per row: SExtractor's vector columns (MAG_APER, FLUX_RADIUS, even a VIGNET) stay below.
MAX_COLUMNS = 1000
#: A row of MAX_COLUMNS values of 25-odd characters fits; a 2,000,000-value row does not.
MAX_LINE_BYTES = 64 * 1024
#: Lines of any kind (rows, comments, blank lines): the rows and a generous header.
MAX_LINES = MAX_ROWS + 100_000
#: The '#' lines before the first row: MAX_COLUMNS column definitions of about 100 characters.
MAX_HEADER_BYTES = 2**20
#: A compressed upload may not expand beyond this (decompression bombs). Text is parsed in blocks
#: as it is inflated, so memory stays flat and this bounds the CPU time (about 1 s per 100 MB).
MAX_UNCOMPRESSED_BYTES = 256 * 2**20
#: gzip members of one file: one usually, a few for 'cat a.gz b.gz', 4,096 for a 256 MB bgzip file.
MAX_GZIP_MEMBERS = 10_000
#: astropy needs a FITS file whole, so an inflated one is held in memory: this bounds that memory.
MAX_UNCOMPRESSED_FITS_BYTES = 80 * 2**20
#: HDUs, header bytes (all HDUs together) and table columns (all tables together) of one FITS
#: file: astropy builds an object per HDU, card and column. A DECam FITS_LDAC file of 62 chips has
#: 125 HDUs, a few hundred kB of headers and about 2,500 columns.
MAX_FITS_HDUS = 256
MAX_FITS_HEADER_BYTES = 4 * 2**20
MAX_FITS_COLUMNS = 10_000
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
_BAD_FLAGS = ~np.int64(3)
HOURS_SAMPLE = 50_000  # SExtractor bits above 2 (saturated, truncated, ...) spoil the photometry


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


def read_catalog(source, filename: str | None = None, max_rows: int = MAX_ROWS) -> SourceCatalog:
    """Read a catalog from bytes, a path or a binary file object; raise BadCatalog if unusable."""
    data = _bytes_of(source)
    try:
        with warnings.catch_warnings():
            # astropy warns about odd headers before failing or coping; the outcome is what counts.
            warnings.simplefilter("ignore")
            return _parse(data, filename or "", max_rows)
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


_GZIP = b"\x1f\x8b"
#: Text is handed on (and parsed) in pieces of about this size; gzip input is fed in smaller ones.
_BLOCK = 4 * 2**20
_INFLATE_INPUT = 2**20


def _parse(data: bytes, filename: str, max_rows: int) -> SourceCatalog:
    if not data or data.isspace():
        raise bad("the catalog file is empty")
    compressed = data[:2] == _GZIP
    head, chunks = _peek(_gunzip(data) if compressed else _pieces(data), FITS_BLOCK)
    if compressed and head[:2] == _GZIP:
        raise bad("the catalog is compressed twice")
    if head[:9] == b"SIMPLE  =":
        return _read_fits(_whole_fits(chunks) if compressed else data, max_rows)
    if head.startswith(_UTF16):
        raise bad("the catalog is UTF-16 text: save it as plain ASCII (or UTF-8) and upload again")
    for magic, kind in _NOT_CATALOGS:
        if head.startswith(magic):
            raise bad(f"this is {kind}, not a source catalog: upload SExtractor's ASCII_HEAD or FITS output")
    if _MARKUP.match(head[:200]):
        raise bad("this is HTML/XML (a web page or VOTable?), not a SExtractor ASCII_HEAD or FITS catalog")
    if filename.lower().endswith((".fits", ".fit", ".fts", ".ldac", ".fz")):
        raise bad("the file is named like FITS but is not a FITS file")
    reader = _AsciiReader(max_rows)
    for chunk in chunks:
        reader.feed(chunk)
    return reader.finish()


def _pieces(data: bytes):
    for start in range(0, len(data), _BLOCK):
        yield data[start : start + _BLOCK]


def _peek(chunks, size: int):
    """The first ``size`` bytes (fewer if that is all) and an iterator over every chunk, those included."""
    taken = []
    length = 0
    for chunk in chunks:
        taken.append(chunk)
        length += len(chunk)
        if length >= size:
            break
    return b"".join(taken)[:size], itertools.chain(taken, chunks)


def _gunzip(data: bytes):
    """The inflated bytes of every gzip member in turn, in pieces, at most MAX_UNCOMPRESSED_BYTES in all.

    Input is fed in small pieces (zlib copies what it has not consumed at every call) and output
    comes out in pieces of at most _BLOCK bytes, so a bomb is stopped as soon as it passes the cap.
    A concatenation of gzip members (``cat a.gz b.gz``, what gzip itself reads as one file) is read
    whole; anything else after the last member is refused, as is a stream that stops short.
    """
    view = memoryview(data)
    position = total = 0
    ready: list[bytes] = []  # small outputs (many tiny members) are handed on together
    ready_bytes = 0
    for _member in range(MAX_GZIP_MEMBERS):
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        # zlib copies the input left after a member's end: start each member with a small piece
        # and double it, so that many tiny members cost no more than one large one.
        size = 4096
        while not inflater.eof:
            piece = inflater.unconsumed_tail
            if not piece and position < len(data):
                piece = view[position : position + size]
                position += len(piece)
                size = min(2 * size, _INFLATE_INPUT)
            try:
                out = inflater.decompress(piece, _BLOCK)
            except zlib.error as error:
                raise bad("the gzip file is corrupt: compress the catalog again") from error
            if not out and not piece:
                raise bad("the gzip file is truncated: the upload was cut short, send it again")
            total += len(out)
            if total > MAX_UNCOMPRESSED_BYTES:
                raise bad(f"the compressed catalog expands beyond {MAX_UNCOMPRESSED_BYTES // 2**20} MB")
            ready.append(out)
            ready_bytes += len(out)
            if ready_bytes >= _INFLATE_INPUT:
                yield b"".join(ready)
                ready, ready_bytes = [], 0
        position -= len(inflater.unused_data)
        if position >= len(data):
            break
        if view[position : position + 2] != _GZIP:
            extra = len(data) - position
            raise bad(f"the gzip file has {extra} bytes of garbage after its end: compress the catalog again")
    else:
        raise bad(f"the gzip file has more than {MAX_GZIP_MEMBERS} members: compress the catalog as one file")
    if ready_bytes:
        yield b"".join(ready)


def _whole_fits(chunks) -> bytes:
    """An inflated FITS file in one piece (astropy needs it whole), refused beyond its own cap."""
    parts = []
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > MAX_UNCOMPRESSED_FITS_BYTES:
            raise bad(f"the compressed FITS file expands beyond {MAX_UNCOMPRESSED_FITS_BYTES // 2**20} MB")
        parts.append(chunk)
    return b"".join(parts)


# ---------------------------------------------------------------- ASCII_HEAD

# Comment lines among the rows: astropy's C reader takes about 40 ms per 60 kB comment line, so
# they are cut out before it (searched from each newline, a literal the regex engine skips to).
_COMMENT_LINES = re.compile(r"\n[ \f\v]*#[^\n]*(?=\n)")


#: Headers up to this size have their names and units remembered: an observatory's pipeline
#: writes the same header on every frame, and astropy takes about 4 ms to read one.
_CACHED_HEADER_BYTES = 64 * 1024


def _header_names(header: tuple[str, ...], line: str, n_values: int, header_bytes: int):
    """Names and units that astropy's SExtractor reader gives this header and first row."""
    if header_bytes <= _CACHED_HEADER_BYTES and line.isascii() and line.isprintable() and '"' not in line:
        # A row of printable ASCII without quotes is split by astropy where line.split() splits
        # it: the names and units then depend on the header and the number of values alone.
        return _cached_header_names(header, n_values)
    return _astropy_header_names(header, line)


@functools.lru_cache(maxsize=32)
def _cached_header_names(header: tuple[str, ...], n_values: int):
    # A stand-in row of as many values keeps the row's own values out of the key.
    return _astropy_header_names(header, " ".join(["0"] * n_values))


def _astropy_header_names(header, line: str) -> tuple[tuple[str, ...], tuple]:
    names_table = astropy_ascii.read([*header, line], format="sextractor", guess=False)
    return tuple(names_table.colnames), tuple((name, names_table[name].unit) for name in names_table.colnames)


#: The only bytes a block of rows may hold for pandas' C parser to read it: digits, signs,
#: points, exponents, blanks and newlines. Anything else (quotes, nan, inf, a stray letter) is
#: read by astropy's C reader, as before.
_NUMERIC_BYTES = b"0123456789+-.eE \n"


def _numeric_rows(text: str, names: list[str], wanted: list[str]) -> tuple[dict, int] | None:
    """The wanted columns of rows of plain decimal numbers (pandas' C parser), or None: then astropy.

    About 40 % faster than astropy's reader on a DECam catalog, with the same float64 values
    (both round each decimal correctly; pandas converts every column, astropy only the wanted
    ones). Where the two could differ, None hands the block to astropy, which gives the answer
    or the error it always gave: a row of another length (pandas raises on every one except a
    longer first row, checked here), a value that only astropy refuses (an integer beyond int64,
    a column astropy then reads as text), and '-0', an integer zero to astropy.
    """
    if not text.isascii():
        return None
    data = text.encode("ascii")
    first = data.lstrip().split(b"\n", 1)[0]
    if data.translate(None, _NUMERIC_BYTES) or len(first.split()) != len(names):
        return None
    try:
        frame = pandas.read_csv(
            io.BytesIO(data),
            sep=r"\s+",
            header=None,
            names=range(len(names)),
            dtype=np.float64,
            engine="c",
            na_filter=False,
        )
    except ValueError:  # includes pandas' ParserError: a row of another length, a malformed number
        return None
    position = {name: i for i, name in enumerate(names)}
    columns = {}
    for name in wanted:
        values = frame[position[name]].to_numpy()
        beyond = ~np.isfinite(values) | (np.abs(values) >= 2.0**53)
        if beyond.any() or np.signbit(values[values == 0]).any():
            return None
        columns[name] = values
    return columns, len(frame)


class _AsciiReader:
    """A SExtractor ASCII_HEAD catalog read as its bytes arrive, refused at the first limit passed.

    Bytes are cut into whole lines and checked (length, count, NUL, UTF-8) block by block; the
    header is read by astropy's SExtractor reader on the header and the first row alone, once
    its column counts are checked; each block of rows is parsed by astropy's fast C reader,
    keeping only the columns the calibration reads. So the memory is a block plus those columns,
    whatever the size of the file, and nothing is parsed beyond the first limit passed.
    """

    def __init__(self, max_rows: int):
        self.max_rows = max_rows
        self.lines = 0  # whole lines seen so far
        self.pending: list[bytes] = []  # the start of a line whose end has not arrived
        self.pending_bytes = 0
        self.overlong: int | None = None  # number of a line past MAX_LINE_BYTES, skipped to its end
        self.seen_text = False
        self.header: list[str] = []
        self.header_bytes = 0
        self.declared: dict[int, str] = {}
        self.first_data: str | None = None
        self.n_values = 0
        self.names: list[str] = []
        self.units: dict = {}
        self.found: dict[str, str] = {}
        self.parts: dict[str, list[np.ndarray]] = {}
        self.rows = 0

    # -- bytes to whole lines

    def feed(self, chunk: bytes) -> None:
        # Tabs are valid separators in rows but defeat astropy's header pattern; CR and CRLF end lines.
        # Each replace copies the chunk: skip those with nothing to replace (memchr is ~50x cheaper).
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if b"\t" in chunk:
            chunk = chunk.replace(b"\t", b" ")
        cut = chunk.rfind(b"\n")
        if cut < 0:
            self._extend_pending(chunk)
            return
        if self.overlong is not None:
            self._refuse_overlong()
        block = b"".join([*self.pending, chunk[: cut + 1]])
        self.pending, self.pending_bytes = [], 0
        self._block(block)
        self._extend_pending(chunk[cut + 1 :])

    def _extend_pending(self, piece: bytes) -> None:
        if not piece:
            return
        self.pending_bytes += len(piece)
        if self.overlong is None and self.pending_bytes > MAX_LINE_BYTES:
            # Keep reading to the line's end without storing it: a bomb is then called a bomb.
            self.overlong = self.lines + 1
        if self.overlong is None:
            self.pending.append(piece)
        else:
            self.pending = []

    def _refuse_overlong(self):
        raise bad(
            f"line {self.overlong} is longer than {MAX_LINE_BYTES // 1024} kB: "
            "a catalog row is much shorter; is this a catalog?"
        )

    def _block(self, block: bytes) -> None:
        """Whole lines (ending in a newline): checked, then read as header or rows."""
        first_line = self.lines + 1
        ends = np.flatnonzero(np.frombuffer(block, dtype=np.uint8) == ord("\n"))
        lengths = np.diff(ends, prepend=-1) - 1
        longest = int(lengths.argmax())
        if lengths[longest] > MAX_LINE_BYTES:
            self.overlong = first_line + longest
            self._refuse_overlong()
        self.lines += len(ends)
        if self.lines > MAX_LINES:
            raise bad(f"the catalog has more than {MAX_LINES} lines (comments and blank lines count too)")
        nul = block.find(b"\x00")
        if nul >= 0:
            line = first_line + block.count(b"\n", 0, nul)
            raise bad(f"binary data (NUL byte on line {line}): expected a SExtractor ASCII_HEAD or FITS file")
        try:
            text = block.decode("utf-8-sig" if first_line == 1 else "utf-8")
        except UnicodeDecodeError as error:
            line = first_line + block.count(b"\n", 0, error.start)
            raise bad(f"not UTF-8 text (bad byte on line {line}): expected a SExtractor catalog") from error
        if not self.seen_text and not text.isspace():
            self.seen_text = True
        if self.first_data is None:
            text = self._header_lines(text)
        if text:
            self._rows(text)

    # -- the header

    def _header_lines(self, text: str) -> str:
        """Take the header lines at the start of ``text``; return the rest (from the first row on)."""
        position = 0
        while position < len(text):
            end = text.index("\n", position)
            line = text[position:end]
            stripped = line.lstrip()
            if stripped.startswith("#"):
                self.header_bytes += len(line)
                if self.header_bytes > MAX_HEADER_BYTES:
                    raise bad(f"the header (# lines before the rows) is over {MAX_HEADER_BYTES // 2**20} MB")
                self.header.append(line)
                match = _HEADER_LINE.match(line)
                if match:
                    number = int(match.group(1))
                    if number > MAX_COLUMNS:
                        raise bad(f"the header declares column {number}; at most {MAX_COLUMNS} can be read")
                    self.declared[number] = match.group(2)
            elif stripped:
                self._first_row(line)
                return text[position:]
            position = end + 1
        return ""

    def _check_header(self) -> None:
        names = list(self.declared.values())
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise bad(f"the header names column {twice[0]} twice: each column needs its own name")
        if not self.declared:
            raise bad("no SExtractor header: expected lines like '#   1 ALPHA_J2000' before the rows")

    def _first_row(self, line: str) -> None:
        """The header is complete: check it against the first row, then read its names and units."""
        self._check_header()
        self.first_data = line
        self.n_values = n_values = len(line.split())
        if n_values > MAX_COLUMNS:
            raise bad(f"the first row has {n_values} values; at most {MAX_COLUMNS} columns can be read")
        n_declared = max(self.declared)
        if n_values < n_declared:
            raise bad(f"the header declares {n_declared} columns but the rows have {n_values}")
        # astropy's SExtractor reader on the header and the first row: its names (vector columns
        # become NAME_1, ...) and units, exactly. Its rows are parsed by the fast reader below.
        names, units = _header_names(tuple(self.header), line, n_values, self.header_bytes)
        self.names = list(names)
        if len(self.names) != n_values:
            raise bad(f"header and rows disagree on the columns ({len(self.names)} names, {n_values} values)")
        self.units = dict(units)
        self.found = _choose_columns(self.names)
        declared = set(self.declared.values())
        for name in self.found.values():
            if f"{name}_1" in self.names and f"{name}_1" not in declared:
                # astropy reads extra values as a vector column; for these quantities it is a lie.
                raise bad(f"header and rows disagree on the columns (extra values after {name})")
        self.parts = {name: [] for name in self.found.values()}

    # -- the rows

    def _rows(self, text: str) -> None:
        if "#" in text:
            text = _COMMENT_LINES.sub("", "\n" + text)[1:]
        if not text or text.isspace():
            return
        plain = _numeric_rows(text, self.names, list(self.parts))
        if plain is not None:
            columns, n_rows = plain
        else:
            try:
                table = astropy_ascii.read(
                    text,
                    format="no_header",
                    names=self.names,
                    include_names=list(self.parts),
                    guess=False,
                    fast_reader=True,
                )
            except InconsistentTableError as error:
                raise bad(f"rows do not all have the {self.n_values} values the header implies") from error
            columns, n_rows = table, len(table)
        self.rows += n_rows
        if self.rows > self.max_rows:
            raise bad(f"the catalog has more than {self.max_rows} rows; the limit is {self.max_rows}")
        for name, parts in self.parts.items():
            parts.append(_numeric(columns[name], name))

    def finish(self) -> SourceCatalog:
        """The stream has ended: the last line, the checks of the whole file, the catalog."""
        if self.overlong is not None:
            self._refuse_overlong()
        if self.pending:
            last = b"".join(self.pending)
            self.pending = []
            n_last = len(last.split())
            is_row = self.first_data is not None and not last.lstrip().startswith(b"#")
            if is_row and 0 < n_last < self.n_values:
                shown = f"{n_last} of {self.n_values}"
                raise bad(f"the last row has {shown} values: the file is truncated, send it again")
            self._block(last + b"\n")
        if not self.seen_text:
            raise bad("the catalog file is empty")
        if self.first_data is None:
            self._check_header()
            raise bad("the catalog has a header but no rows")
        columns = {
            name: np.concatenate(parts) if len(parts) > 1 else parts[0] for name, parts in self.parts.items()
        }
        self.parts = {}

        def get(name):
            return columns[name], self.units[name]

        return _assemble(get, self.names, "ascii_head")


# ---------------------------------------------------------------- FITS and FITS_LDAC


def _read_fits(data: bytes, max_rows: int) -> SourceCatalog:
    if len(data) % FITS_BLOCK:
        raise bad("the FITS file is truncated or damaged (its size is not a multiple of 2880 bytes)")
    _check_fits_layout(data, max_rows)
    try:
        return _read_fits_tables(data, max_rows)
    except (OSError, EOFError, VerifyError, struct.error) as error:
        raise bad("the FITS file is truncated or damaged: write it again and upload the new file") from error


_END_CARD = b"END" + b" " * 77
_LAYOUT_KEYS = ("XTENSION", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "TFIELDS", "GROUPS")


def _check_fits_layout(data: bytes, max_rows: int) -> None:
    """Walk the HDUs' headers and declared sizes before astropy builds anything from them.

    Only the cards that give the layout are decoded (by astropy's Card); the limits on HDUs,
    header bytes, columns and rows are enforced here. Where the walk cannot go on (no END card,
    data beyond the end of the file, bytes that are no HDU) it stops and leaves the verdict to
    astropy and the checks after it, which name those faults.
    """
    offset = header_total = columns = 0
    for index in range(MAX_FITS_HDUS + 1):
        if offset >= len(data) or (index and data[offset : offset + 8] != b"XTENSION"):
            return
        if index == MAX_FITS_HDUS:
            raise bad(f"the FITS file has more than {MAX_FITS_HDUS} HDUs: is this a source catalog?")
        end = _find_end_card(data, offset, MAX_FITS_HEADER_BYTES - header_total)
        if end is None:
            return
        header_total += end - offset
        cards = _layout_cards(data, offset, end)
        n_axes = _fits_int(cards, "NAXIS", index, allowed=range(1000))
        naxes = [_fits_int(cards, f"NAXIS{n}", index) for n in range(1, n_axes + 1)]
        bitpix = _fits_int(cards, "BITPIX", index, allowed=(8, 16, 32, 64, -32, -64))
        pcount = _fits_int(cards, "PCOUNT", index, default=0)
        gcount = _fits_int(cards, "GCOUNT", index, default=1)
        if index == 0 and cards.get("GROUPS") is True and naxes[:1] == [0]:
            naxes = naxes[1:]  # random groups: NAXIS1 = 0 is no axis
        size = abs(bitpix) // 8 * gcount * (pcount + (math.prod(naxes) if naxes else 0))
        if str(cards.get("XTENSION", "")).strip() in ("BINTABLE", "TABLE"):
            columns += _fits_int(cards, "TFIELDS", index, allowed=range(1000))
            if columns > MAX_FITS_COLUMNS:
                raise bad(f"the FITS tables have more than {MAX_FITS_COLUMNS} columns in all")
            fits_in_file = end + size <= len(data)
            if len(naxes) == 2 and naxes[1] > max_rows and fits_in_file:
                raise bad(f"the catalog has {naxes[1]} rows; the limit is {max_rows}")
        offset = end + -(-size // FITS_BLOCK) * FITS_BLOCK


def _find_end_card(data: bytes, offset: int, budget: int) -> int | None:
    """Where the header starting at ``offset`` ends (a block boundary), None if the file ends first."""
    limit = min(len(data), offset + budget)
    position = offset
    while True:
        found = data.find(_END_CARD, position, limit)
        if found < 0:
            if limit < len(data):
                raise bad(
                    f"the FITS headers are over {MAX_FITS_HEADER_BYTES // 2**20} MB: is this a catalog?"
                )
            return None
        if (found - offset) % 80 == 0:
            return offset + -(-(found - offset + 80) // FITS_BLOCK) * FITS_BLOCK
        position = found + 1


def _layout_cards(data: bytes, start: int, end: int) -> dict:
    """The values of the layout keywords (NAXISn included) of one header, decoded by astropy's Card."""
    values = {}
    for position in range(start, end, 80):
        keyword = data[position : position + 8].rstrip().decode("ascii", "replace")
        if keyword in values or not (keyword.startswith("NAXIS") or keyword in _LAYOUT_KEYS):
            continue
        try:
            card = fits.Card.fromstring(data[position : position + 80].decode("ascii", "replace"))
            values[keyword] = card.value
        except (VerifyError, ValueError):
            values[keyword] = "?"
    return values


def _fits_int(cards: dict, key: str, index: int, default=None, allowed=None) -> int:
    """A layout value that must be a non-negative integer (or one of ``allowed``)."""
    value = cards.get(key, default)
    valid = isinstance(value, int) and not isinstance(value, bool)
    if valid and (value in allowed if allowed is not None else value >= 0):
        return value
    shown = "missing" if value is None else str(value)[:12]
    raise bad(f"the FITS header of HDU {index} is invalid ({key} = {shown}): write the file again")


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
        layouts = {}

        def layout(index, hdu):
            if index not in layouts:
                layouts[index] = _TableLayout.of(data, hdu)
            return layouts[index]

        chosen = ldac or [(i, h) for i, h in tables if _has_required(layout(i, h).names)][:1] or tables[:1]
        fmt = "fits_ldac" if ldac else "fits"
        for index, hdu in chosen:
            named = [name.upper() for name in layout(index, hdu).names if name]
            twice = sorted({name for name in named if named.count(name) > 1})
            if twice:
                raise bad(f"the FITS table has two columns named {twice[0]}: each needs its own name")
        n_rows = sum(_checked_rows(hdul, i, h, len(data)) for i, h in chosen)
        if n_rows > max_rows:
            raise bad(f"the catalog has {n_rows} rows; the limit is {max_rows}")
        first = layout(*chosen[0])
        # A column without TTYPE has no name: nothing can ask for it.
        names = [name for name in first.names if name]
        units = {name.upper(): unit for name, unit in zip(first.names, first.units, strict=True) if name}
        records = [layout(i, hdu).records(data, hdu) for i, hdu in chosen]

        def get(name):
            parts = [
                records[k][name]
                if name in layout(i, hdu).plain and records[k] is not None
                else np.asarray(hdu.data[name])
                for k, (i, hdu) in enumerate(chosen)
            ]
            return (parts[0] if len(parts) == 1 else np.concatenate(parts)), units.get(name.upper())

        return _assemble(get, names, fmt)


#: Binary-table formats whose stored values are the values (no scaling, no bits, no strings).
_PLAIN_FORMATS = frozenset("BIJKED")
#: Table headers up to this size have their layout remembered (an observatory's pipeline writes
#: the same table header on every frame but for NAXIS2): astropy takes ~3 ms to build the column
#: objects of a 40-column LDAC table from its cards.
_CACHED_TABLE_HEADER_BYTES = 64 * 1024
_LAYOUTS: "dict[bytes, _TableLayout]" = {}
_LAYOUTS_LOCK = threading.Lock()
_NAXIS2_CARD = b"NAXIS2  ="


@dataclass(frozen=True)
class _TableLayout:
    """What the reader needs of a table's column definitions, all from its header's cards."""

    names: tuple
    units: tuple
    plain: frozenset  # names of the columns a record view of the file's bytes reads as astropy does
    dtype: np.dtype | None  # big-endian record dtype; None if the rows cannot be viewed so

    @classmethod
    def of(cls, data: bytes, hdu) -> "_TableLayout":
        """The layout of one table HDU: remembered by its header's bytes (NAXIS2 aside), else astropy's."""
        key = _layout_key(data, hdu)
        if key is not None:
            with _LAYOUTS_LOCK:
                known = _LAYOUTS.get(key)
            if known is not None:
                return known
        layout = cls.from_columns(hdu)
        if key is not None:
            with _LAYOUTS_LOCK:
                while len(_LAYOUTS) >= 32:
                    _LAYOUTS.pop(next(iter(_LAYOUTS)))
                _LAYOUTS[key] = layout
        return layout

    @classmethod
    def from_columns(cls, hdu) -> "_TableLayout":
        columns = hdu.columns
        dtype = None
        if isinstance(hdu, fits.BinTableHDU):
            try:
                dtype = columns.dtype.newbyteorder(">")
            except ValueError:
                pass  # e.g. two columns of one name (refused by the reader with its own message)
        if dtype is not None and dtype.itemsize != hdu.header.get("NAXIS1"):
            dtype = None
        plain = frozenset(
            column.name
            for column in columns
            if column.format.format in _PLAIN_FORMATS
            and column.format.repeat == 1
            and column.bscale in (None, 1)
            and column.bzero in (None, 0)
            and not column.dim
        )
        return cls(
            tuple(columns.names), tuple(c.unit for c in columns), plain if dtype else frozenset(), dtype
        )

    def records(self, data: bytes, hdu) -> np.ndarray | None:
        """The table's rows as a numpy record view of the file's bytes, or None.

        astropy's ``hdu.data`` builds a second set of column objects for the FITS_rec (about 5 ms
        for a 40-column LDAC table); a column of a plain format reads the same from this view.
        """
        info = hdu.fileinfo()
        if self.dtype is None or info is None:
            return None
        return np.frombuffer(data, dtype=self.dtype, count=hdu.header["NAXIS2"], offset=info["datLoc"])


def _layout_key(data: bytes, hdu) -> bytes | None:
    """The bytes of a table's header without its NAXIS2 card (the rows), or None if not remembered."""
    info = hdu.fileinfo()
    if info is None or info["datLoc"] - info["hdrLoc"] > _CACHED_TABLE_HEADER_BYTES:
        return None
    header = data[info["hdrLoc"] : info["datLoc"]]
    for position in range(0, len(header), 80):
        if header[position : position + 9] == _NAXIS2_CARD:
            return type(hdu).__name__.encode() + header[:position] + header[position + 80 :]
    return None


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
    # The HDU's own fileinfo: the HDUList's also checks every header for changes (2 ms a file).
    start = (hdu.fileinfo() or hdul.fileinfo(index))["datLoc"]
    if start + row_bytes * n_rows + heap > file_size:
        raise bad("the FITS table is truncated or declares absurd dimensions")
    return n_rows


# ---------------------------------------------------------------- common checks


_REQUIRED = (("ra", RA_NAMES), ("dec", DEC_NAMES), ("mag", MAG_NAMES), ("magerr", MAGERR_NAMES))


def _choose_columns(names) -> dict[str, str]:
    """The column read for each quantity: the first alias present, case ignored.

    Refuses a missing required quantity, and a chosen column whose name another column repeats
    in other letter case (MAG_AUTO and mag_auto): which one is meant cannot be known.
    """
    by_upper: dict[str, list[str]] = {}
    for name in names:
        by_upper.setdefault(name.upper(), []).append(name)

    def find(aliases):
        for alias in aliases:
            same = by_upper.get(alias)
            if same and len(same) > 1:
                raise bad(f"columns {same[0]} and {same[1]} differ only in case: rename or remove one")
            if same:
                return same[0]
        return None

    found = {key: find(aliases) for key, aliases in (*_REQUIRED, *OPTIONAL_NAMES.items())}
    missing = [aliases[0] for key, aliases in _REQUIRED if found[key] is None]
    if missing:
        hint = " (X_WORLD/Y_WORLD also do)" if found["ra"] is None or found["dec"] is None else ""
        raise bad(f"missing column(s) {', '.join(missing)}{hint}")
    return {key: name for key, name in found.items() if name is not None}


def _assemble(get, names, fmt: str) -> SourceCatalog:
    """Pick the columns, check values and units, and build the catalog."""
    found = _choose_columns(names)
    values = {}
    for key, _ in _REQUIRED:
        array, unit = get(found[key])
        values[key] = _numeric(array, found[key])
        if key in ("ra", "dec"):
            _check_degrees(unit, found[key])
    for key in OPTIONAL_NAMES:
        name = found.get(key)
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
    every = bool(keep.all())  # the usual case: no copy of a million-row column
    columns = {key: (v if every or v is None else v[keep]) for key, v in values.items()}
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
    if type(array) is np.ndarray and array.dtype == np.float64 and array.ndim == 1:
        return array  # converted already (the streamed ASCII reader does it block by block)
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
    # An affine fit on an even sample of HOURS_SAMPLE sources gives the same verdict as on all
    # of them, and keeps a million-source frame from costing hundreds of MB of temporaries.
    step = -(-len(catalog) // HOURS_SAMPLE)
    x, y = catalog.x[::step], catalog.y[::step]
    ok = np.isfinite(x) & np.isfinite(y)
    if ok.sum() < 10:
        return False
    ra, dec = catalog.ra[::step][ok], catalog.dec[::step][ok]
    ra0, dec0 = np.median(ra), np.median(dec)
    xi = ((ra - ra0 + 180.0) % 360.0 - 180.0) * np.cos(np.radians(dec0))
    eta = dec - dec0
    design = np.column_stack((x[ok], y[ok], np.ones(ok.sum())))
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
