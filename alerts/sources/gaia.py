"""Gaia Science Alerts: the index alerts.csv and each alert's lightcurve.csv.

The index has the header ``#Name,Date,RaDeg,DecDeg,AlertMag,HistoricMag,HistoricStdDev,Class,
Published,Comment`` (later versions add columns such as TNSid); it is read by column name and
empty values are allowed except for the name and position. A light curve starts with the
alert's name on a line of its own, then ``#Date,JD(TCB),averagemag`` and one line per Gaia
transit; ``null`` and ``untrusted`` magnitudes are no measurement and are skipped.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from astropy.time import Time

from .rows import RowError, RowRefused, clean_name, digest, number, open_text, read_rows, timestamp

REQUIRED = ("Name", "RaDeg", "DecDeg")
GAIA_NAME = re.compile(r"^Gaia\d{2}[a-z]{1,4}$")
URL = "https://gsaweb.ast.cam.ac.uk/alerts/alert/{name}/"
NO_MAGNITUDE = {"null", "untrusted", "nan", ""}
#: Gaia observed from 2014-07-25; a JD(TCB) outside the mission is a broken row.
JD_MIN, JD_MAX = 2456863.0, 2462000.0


@dataclass(frozen=True)
class GaiaAlert:
    """One row of the index, checked."""

    line: int
    name: str
    ra: float
    dec: float
    discovered: datetime | None
    published: datetime | None
    mag: float | None
    kind: str
    comment: str
    fields: dict = field(repr=False)

    @property
    def digest(self) -> str:
        return digest(self.fields)


def gaia_name(value: str) -> str:
    name = clean_name(value, "Name")
    if not GAIA_NAME.match(name):
        raise RowRefused(f"Name {name[:30]!r} is not a Gaia alert name (e.g. Gaia16aye)")
    return name


def _alert(line: int, row: dict) -> GaiaAlert:
    comment = (row.get("Comment") or "").strip()
    if any(not c.isprintable() for c in comment):
        raise RowRefused("Comment holds control characters")
    return GaiaAlert(
        line=line,
        name=gaia_name(row["Name"]),
        ra=number(row["RaDeg"], "RaDeg", low=0, high=360) % 360.0,
        dec=number(row["DecDeg"], "DecDeg", low=-90, high=90),
        discovered=timestamp(row.get("Date"), "Date"),
        published=timestamp(row.get("Published"), "Published"),
        mag=number(row.get("AlertMag"), "AlertMag", low=-5, high=40, optional=True),
        kind=(row.get("Class") or "").strip()[:64],
        comment=comment[:2000],
        fields={k: v.strip() for k, v in row.items()},
    )


def read_index(path) -> tuple[list[GaiaAlert], list[RowError]]:
    """The alerts of alerts.csv and its refused rows (a missing column refuses the whole file)."""
    with open_text(path) as handle:
        return read_rows(handle, 1, REQUIRED, _alert, strip_hash=True)


def tcb_jd_to_utc_mjd(jd_tcb) -> np.ndarray:
    """Gaia's JD(TCB) as MJD(UTC), by astropy's time scales (TCB -> TDB -> TT -> TAI -> UTC).

    Only the time scale changes (TCB runs 84 to 90 s ahead of UTC over 2014-2025, leap
    seconds included); the times stay barycentric as Gaia publishes them: the light-travel
    correction to the Earth (up to 8.3 minutes) is not undone, which is below Gaia's sampling.
    """
    return Time(np.asarray(jd_tcb, dtype=float), format="jd", scale="tcb").utc.mjd


def g_error(mag) -> np.ndarray:
    """The approximate error of a Gaia alerts G magnitude, from the magnitude alone.

    The relation the Gaia alerts community uses for these light curves, which publish no errors
    (BHTOM and the OMEGA microlensing TOM): the per-transit scatter of Gaia DR2, degraded by
    x10 for one transit, log10(err) = 0.2 G - 5.3 for 13.5 <= G < 17 and 0.2625 G - 6.3625
    beyond, flat below 13.5; meant up to G = 21. An approximation, stored and shown as such.
    """
    g = np.asarray(mag, dtype=float)
    bright = 10 ** (0.2 * 13.5 - 5.3)
    return np.where(g < 13.5, bright, np.where(g < 17.0, 10 ** (0.2 * g - 5.3), 10 ** (0.2625 * g - 6.3625)))


@dataclass(frozen=True)
class GaiaLightCurve:
    """The measured transits of one alert: JD(TCB), MJD(UTC), G and its approximate error."""

    name: str
    jd_tcb: np.ndarray
    mjd: np.ndarray
    mag: np.ndarray
    mag_err: np.ndarray
    skipped: int


def _name_from_path(path) -> str | None:
    """Gaia16aye/lightcurve.csv or Gaia16aye_lightcurve.csv, for a file without its name line."""
    path = Path(path)
    for text in (path.parent.name, path.stem.split("_")[0], path.stem.split(".")[0]):
        if GAIA_NAME.match(text):
            return text
    return None


def read_lightcurve(path) -> tuple[GaiaLightCurve | None, list[RowError]]:
    """The light curve of one alert and its refused rows; None with an error when unreadable."""
    errors = []
    with open_text(path) as handle:
        lines = handle.read().splitlines()
    name, start = None, 0
    if lines and not lines[0].startswith("#") and "," not in lines[0]:
        try:
            name = gaia_name(lines[0])
        except RowRefused as error:
            return None, [RowError(1, str(error))]
        start = 1
    name = name or _name_from_path(path)
    if name is None:
        return None, [RowError(1, "no alert name: neither a first line like Gaia16aye nor in the file name")]
    header = lines[start] if len(lines) > start else ""
    columns = [c.strip().lstrip("#").strip().rstrip(".") for c in header.split(",")]
    if columns[:3] != ["Date", "JD(TCB)", "averagemag"]:
        return None, [RowError(start + 1, f"header is not #Date,JD(TCB),averagemag: {header[:60]!r}")]
    jd, mag, skipped = [], [], 0
    for number_, text in enumerate(lines[start + 1 :], start=start + 2):
        if not text.strip():
            continue
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 3:
            errors.append(RowError(number_, f"{len(parts)} fields where the header has 3 (truncated?)"))
            continue
        if parts[2].lower() in NO_MAGNITUDE:
            skipped += 1
            continue
        try:
            jd.append(number(parts[1], "JD(TCB)", low=JD_MIN, high=JD_MAX))
            mag.append(number(parts[2], "averagemag", low=0, high=30))
        except RowRefused as error:
            jd = jd[: len(mag)]  # a bad magnitude after a good JD leaves no half row
            errors.append(RowError(number_, str(error)))
    jd_tcb, g = np.asarray(jd, dtype=float), np.asarray(mag, dtype=float)
    mjd = tcb_jd_to_utc_mjd(jd_tcb) if len(jd_tcb) else np.empty(0)
    return GaiaLightCurve(name, jd_tcb, mjd, g, g_error(g), skipped), errors
