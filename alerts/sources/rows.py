"""What every source reader shares: per-row errors, names and numbers checked the same way."""

import csv
import hashlib
import json
import math
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime

#: Unicode categories no name may hold (as for IVORNs): controls, format characters, separators.
INVISIBLE = {"Cc", "Cf", "Zl", "Zp"}
MAX_NAME = 100


@dataclass(frozen=True)
class RowError:
    """A refused row: its line in the file (1 = first line) and why."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


class RowRefused(ValueError):
    """Raised inside a reader for one row; becomes a RowError."""


def clean_name(value: str, what: str = "name") -> str:
    """A short name: NFC, trimmed, printable, no comma; RowRefused otherwise."""
    name = unicodedata.normalize("NFC", value or "").strip()
    if not name:
        raise RowRefused(f"{what} is empty")
    if len(name) > MAX_NAME:
        raise RowRefused(f"{what} is longer than {MAX_NAME} characters")
    bad = next((c for c in name if unicodedata.category(c) in INVISIBLE), None)
    if bad is not None:
        raise RowRefused(f"{what} holds an invisible or control character (U+{ord(bad):04X})")
    if "," in name:
        raise RowRefused(f"{what} holds a comma")
    return name


def number(value: str | None, what: str, *, low=-math.inf, high=math.inf, optional=False) -> float | None:
    """A finite float within [low, high]; None for an empty optional value; RowRefused otherwise."""
    text = (value or "").strip()
    if not text:
        if optional:
            return None
        raise RowRefused(f"{what} is empty")
    try:
        result = float(text)
    except ValueError:
        raise RowRefused(f"{what} is not a number: {text[:30]!r}") from None
    if not math.isfinite(result) or not low <= result <= high:
        raise RowRefused(f"{what} {text[:30]} is out of range")
    return result


def timestamp(value: str | None, what: str) -> datetime | None:
    """An ISO-like UTC time ('2024-01-02 03:04:05.678'); None when empty; RowRefused otherwise."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise RowRefused(f"{what} is not a date and time: {text[:30]!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def digest(fields: dict) -> str:
    """A fingerprint of a row as read: the same row harvested again has the same digest."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def open_text(path):
    """A source file as UTF-8 text (a BOM is dropped); OSError/UnicodeDecodeError go to the caller."""
    return open(path, encoding="utf-8-sig", newline="")


def dict_rows(lines, header_line: int, required: tuple[str, ...], *, strip_hash: bool = False):
    """(line number, row dict) of a CSV whose header is the first of ``lines``.

    Names are matched after trimming blanks (and a leading '#' with ``strip_hash``), so the order
    and extra columns do not matter; a missing required column refuses the whole file.
    A row with too few or too many fields (a truncated file) is a RowError, never a half row.
    """
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise RowRefused(f"line {header_line}: the header is missing") from None
    names = [h.strip().lstrip("#").strip() if strip_hash else h.strip() for h in header]
    missing = [name for name in required if name not in names]
    if missing:
        found = ", ".join(names)[:200]
        raise RowRefused(f"line {header_line}: missing column(s) {', '.join(missing)}; found {found}")
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            # An unclosed quote at the end: a file cut off in the middle of a row.
            yield RowError(
                header_line + reader.line_num - 1, f"unreadable CSV ({error}); the file is truncated?"
            )
            return
        line = header_line + reader.line_num - 1  # physical line of the row's end (quoted fields span lines)
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(names):
            yield RowError(line, f"{len(values)} fields where the header has {len(names)} (truncated?)")
            continue
        yield line, dict(zip(names, values, strict=True))


def read_rows(lines, header_line: int, required: tuple[str, ...], build, *, strip_hash: bool = False):
    """``build(line, row)`` for every row of a CSV (see ``dict_rows``): (built items, RowErrors).

    A row ``build`` refuses (RowRefused) is reported at its line and the others go on; a header
    missing a required column refuses the whole file, reported at the header's line.
    """
    built, errors = [], []
    try:
        for item in dict_rows(lines, header_line, required, strip_hash=strip_hash):
            if isinstance(item, RowError):
                errors.append(item)
                continue
            line, row = item
            try:
                built.append(build(line, row))
            except RowRefused as error:
                errors.append(RowError(line, str(error)))
    except RowRefused as error:
        return [], [RowError(header_line, str(error).removeprefix(f"line {header_line}: "))]
    return built, errors
