"""The TNS public objects CSV (tns_public_objects.csv, the daily dump and its hourly deltas).

Its first line is the time of the dump (e.g. ``"2024-06-01 00:00:00"``); the second is the
header ``"objid","name_prefix","name","ra","declination","redshift","typeid","type",...,
"discoverydate","discoverymag",...,"internal_names",...``; one object per line after it, RA and
Dec in degrees, ``internal_names`` the survey names separated by commas.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from .rows import RowError, RowRefused, clean_name, digest, number, open_text, read_rows, timestamp

REQUIRED = ("objid", "name_prefix", "name", "ra", "declination", "internal_names")
#: TNS names: the year and one to four lower-case letters (2016aa, 2024abc, 2024aaaa).
TNS_NAME = re.compile(r"^\d{4}[a-z]{1,4}$")
URL = "https://www.wis-tns.org/object/{name}"


@dataclass(frozen=True)
class TnsObject:
    """One row of the dump, checked."""

    line: int
    name: str
    prefix: str
    ra: float
    dec: float
    type: str
    discovered: datetime | None
    mag: float | None
    internal_names: tuple[str, ...]
    fields: dict = field(repr=False)

    @property
    def digest(self) -> str:
        return digest(self.fields)


@dataclass(frozen=True)
class TnsSelection:
    """Which TNS objects a curator wants as alerts (settings TNS_SELECT_*, or command options).

    A listed name is selected whatever else; otherwise an object must meet every criterion given,
    and with no criterion none is selected (a 150,000-row dump never becomes 150,000 alerts by accident).
    """

    types: frozenset[str] = frozenset()
    max_mag: float | None = None
    dec_min: float | None = None
    dec_max: float | None = None
    max_age_days: float | None = None
    names: frozenset[str] = frozenset()

    def has_criteria(self) -> bool:
        limits = (self.max_mag, self.dec_min, self.dec_max, self.max_age_days)
        return bool(self.types) or any(v is not None for v in limits)

    def selects(self, obj: TnsObject, now: datetime) -> bool:
        """True for a listed name, or when criteria are given and the object meets all of them."""
        if obj.name in self.names:
            return True
        if not self.has_criteria():
            return False
        if self.types and obj.type.casefold() not in {t.casefold() for t in self.types}:
            return False
        if self.max_mag is not None and (obj.mag is None or obj.mag > self.max_mag):
            return False
        if self.dec_min is not None and obj.dec < self.dec_min:
            return False
        if self.dec_max is not None and obj.dec > self.dec_max:
            return False
        age_limit = self.max_age_days
        return age_limit is None or (
            obj.discovered is not None and obj.discovered >= now - timedelta(days=age_limit)
        )


def _object(line: int, row: dict) -> TnsObject:
    name = clean_name(row["name"], "name")
    if not TNS_NAME.match(name):
        raise RowRefused(f"name {name[:30]!r} is not a TNS name (e.g. 2024abc)")
    internal = tuple(
        clean_name(part, "internal name") for part in row["internal_names"].split(",") if part.strip()
    )
    return TnsObject(
        line=line,
        name=name,
        prefix=clean_name(row["name_prefix"], "name_prefix") if row["name_prefix"].strip() else "",
        ra=number(row["ra"], "ra", low=0, high=360) % 360.0,
        dec=number(row["declination"], "declination", low=-90, high=90),
        type=clean_name(row.get("type") or "", "type") if (row.get("type") or "").strip() else "",
        discovered=timestamp(row.get("discoverydate"), "discoverydate"),
        mag=number(row.get("discoverymag"), "discoverymag", low=-5, high=40, optional=True),
        internal_names=internal,
        fields={k: v.strip() for k, v in row.items()},
    )


def read_tns(path) -> tuple[datetime | None, list[TnsObject], list[RowError]]:
    """The dump's time, its objects and its refused rows (a missing column refuses the whole file)."""
    with open_text(path) as handle:
        first = handle.readline().strip().strip('"')
        try:
            dumped = datetime.fromisoformat(first).replace(tzinfo=UTC) if first else None
        except ValueError:
            return None, [], [RowError(1, f"the first line is not the dump's time: {first[:40]!r}")]
        objects, errors = read_rows(handle, 2, REQUIRED, _object)
    return dumped, objects, errors
