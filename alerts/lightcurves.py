"""Light curves as plain arrays, and their download forms: legacy JSON, CSV, ECSV, VOTable."""

import csv
import io
import json
import math
import unicodedata
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from astropy import units as u
from astropy.io.votable import from_table
from astropy.io.votable.tree import Info
from astropy.table import Table

from gsafollowup.errors import BadInput, UnknownEvent

from .models import Alert
from .selectors import alert_by_name

#: Key order of the legacy server's answers, so our bodies read like the old ones.
LEGACY_KEYS = ("mjd", "magerr", "alert_name", "observatory", "caliberr", "mag", "catalog", "filter", "id")
MJD_UNIX_EPOCH = 40587.0
LIMIT_MAGERR = -1.0
FORMATS = ("json", "csv", "ecsv", "votable")


def find_alert(params) -> tuple[Alert, str | None]:
    """The alert named by ``alert_id`` or ``alert_name`` and the name to echo (None when by id)."""
    alert_id = (params.get("alert_id") or "").strip()
    # Stored IVORNs are NFC (alerts.ivorns): a name typed in another normal form still finds them.
    name = unicodedata.normalize("NFC", params.get("alert_name") or "").strip()
    if alert_id:
        try:
            pk = int(alert_id)
        except ValueError:
            raise BadInput("alert_id must be an integer.") from None
        # Beyond 64 bits the database would fail instead of finding nothing.
        alert = Alert.objects.filter(pk=pk).first() if 0 < pk < 2**63 else None
        if alert is None:
            raise UnknownEvent(f"No alert with id {pk}.")
        return alert, None
    if not name:
        raise BadInput("Give alert_id or alert_name.")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        # No IVORN has them (clean_ivorn), and PostgreSQL refuses a NUL in a query.
        raise BadInput("alert_name contains control characters.")
    # People type bare names (Gaia16aye) and aliases (2024abc, ZTF24aaabbbb): all find the alert.
    alert = alert_by_name(name)
    if alert is None:
        raise UnknownEvent(f"No alert named {name}.")
    return alert, alert.ivorn


@dataclass
class LightCurve:
    """The visible points of one alert as parallel lists in time order (legacy names)."""

    alert: Alert
    mjd: list[float]
    mag: list[float]
    magerr: list[float | None]
    caliberr: list[float | None]
    filter: list[str]
    catalog: list[str]
    observatory: list[str]
    id: list[int]
    is_limit: list[bool]
    owner: list[int]

    def __len__(self) -> int:
        return len(self.id)

    @cached_property
    def dates(self) -> list[str]:
        """Calendar dates of the points, e.g. '2017-06-29 05:27' (UTC)."""
        return [date.replace("T", " ") for date in mjd_to_iso(self.mjd, unit="m")]


def finite(values: list) -> list:
    """Floats with NaN and infinities as None, so that every answer is strict JSON."""
    if np.isfinite(np.asarray(values, dtype=float)).all():
        return values
    return [v if v is not None and math.isfinite(v) else None for v in values]


def mjd_to_iso(mjd, unit: str = "s") -> list[str]:
    """MJDs (UTC) as ISO 8601 strings, e.g. '2017-06-29T05:27'."""
    if len(mjd) == 0:
        return []
    ms = np.rint((np.asarray(mjd, dtype=float) - MJD_UNIX_EPOCH) * 86_400_000).astype("int64")
    return np.datetime_as_string(ms.astype("datetime64[ms]"), unit=unit).tolist()


def load_lightcurve(alert: Alert) -> LightCurve:
    """Read the alert's visible points in one query of plain values (fast for 10^4 points)."""
    from calibration.models import FollowupPoint

    rows = (
        FollowupPoint.objects.visible()
        .filter(alert=alert)
        .order_by("mjd", "pk")
        .values_list(
            "mjd",
            "mag",
            "mag_err",
            "calib_err",
            "filter",
            "survey",
            "observatory__name",
            "pk",
            "observatory__user_id",
        )
    )
    columns = list(zip(*rows, strict=True)) or [()] * 9
    mjd, mag, magerr, caliberr, band, survey, observatory, pk, owner = (list(c) for c in columns)
    return LightCurve(
        alert=alert,
        mjd=finite(mjd),
        mag=finite(mag),
        magerr=finite(magerr),
        caliberr=finite(caliberr),
        filter=band,
        catalog=survey,
        observatory=observatory,
        id=pk,
        # magerr = -1 is what makes a limit for every legacy client, so it decides here too
        # (reading is_limit as well would cost a converter call per row on SQLite).
        is_limit=[err == LIMIT_MAGERR for err in magerr],
        owner=owner,
    )


def legacy_json(lc: LightCurve, alert_name: str | None) -> str:
    """The legacy get_alert_lc_data body: parallel arrays, alert_name null when asked by id."""
    payload = {key: alert_name if key == "alert_name" else getattr(lc, key) for key in LEGACY_KEYS}
    return json.dumps(payload, allow_nan=False)


CSV_COLUMNS = ("id", "mjd", "date", "mag", "magerr", "caliberr", "limit", "filter", "catalog", "observatory")


#: A text cell starting with one of these is a formula to a spreadsheet (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(texts: list[str]) -> list[str]:
    """Text cells that a spreadsheet shows as text: a leading ' before a formula character."""
    return [f"'{text}" if text.startswith(FORMULA_STARTS) else text for text in texts]


def lightcurve_csv(lc: LightCurve) -> str:
    """One row per point after a header line; limits keep magerr = -1 and have limit = 1.

    Numbers are written as they are (a limit's magerr -1 stays a number); the text columns,
    which curators and observers name, are made spreadsheet-safe.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    limit = [int(flag) for flag in lc.is_limit]
    writer.writerows(
        zip(
            lc.id,
            lc.mjd,
            mjd_to_iso(lc.mjd),
            lc.mag,
            lc.magerr,
            lc.caliberr,
            limit,
            spreadsheet_safe(lc.filter),
            spreadsheet_safe(lc.catalog),
            spreadsheet_safe(lc.observatory),
            strict=True,
        )
    )
    return out.getvalue()


def lightcurve_table(lc: LightCurve) -> Table:
    """An astropy Table with units and the alert in its metadata, for ECSV and VOTable."""
    alert = lc.alert
    table = Table(
        {
            "id": np.array(lc.id, dtype="int64"),
            "mjd": np.array(lc.mjd, dtype=float) * u.day,
            "mag": np.array(lc.mag, dtype=float) * u.mag,
            "magerr": np.array(lc.magerr, dtype=float) * u.mag,
            "caliberr": np.array(lc.caliberr, dtype=float) * u.mag,
            "limit": np.array(lc.is_limit, dtype=bool),
            "filter": np.array(lc.filter, dtype=str),
            "catalog": np.array(lc.catalog, dtype=str),
            "observatory": np.array(lc.observatory, dtype=str),
        },
        meta={
            "alert_id": alert.pk,
            "alert_name": alert.ivorn,
            "ra_deg": alert.ra,
            "dec_deg": alert.dec,
            "description": "Follow-up photometry; limit=True rows are upper limits (magerr = -1).",
        },
    )
    table["mjd"].description = "Modified Julian Date (UTC)"
    table["caliberr"].description = "Calibration error, add in quadrature to magerr"
    return table


def lightcurve_votable(lc: LightCurve) -> bytes:
    """The table as a VOTable whose INFO elements name the alert and its position."""
    table = lightcurve_table(lc)
    votable = from_table(table)
    for key in ("alert_id", "alert_name", "ra_deg", "dec_deg"):
        votable.resources[0].infos.append(Info(name=key, value=str(table.meta[key])))
    out = io.BytesIO()
    # BINARY, not TABLEDATA: astropy 8.0's C TABLEDATA writer overruns its buffer and corrupts
    # the heap (astropy/astropy#20419); tests/test_lightcurve_data.py guards this.
    votable.to_xml(out, tabledata_format="binary")
    return out.getvalue()


@dataclass(frozen=True)
class Download:
    """A light curve rendered for one format: body, media type and suggested file name."""

    body: str | bytes
    content_type: str
    filename: str | None


def export_lightcurve(lc: LightCurve, fmt: str | None, alert_name: str | None) -> Download:
    """Render the light curve as legacy JSON (default), CSV, ECSV or VOTable."""
    fmt = (fmt or "json").strip().lower()
    stem = f"alert-{lc.alert.pk}"
    if fmt == "json":
        return Download(legacy_json(lc, alert_name), "application/json", None)
    if fmt == "csv":
        return Download(lightcurve_csv(lc), "text/csv; charset=utf-8", f"{stem}.csv")
    if fmt == "ecsv":
        out = io.StringIO()
        lightcurve_table(lc).write(out, format="ascii.ecsv")
        return Download(out.getvalue(), "text/plain; charset=utf-8", f"{stem}.ecsv")
    if fmt == "votable":
        return Download(lightcurve_votable(lc), "application/x-votable+xml", f"{stem}.vot")
    raise BadInput(f"format must be one of {', '.join(FORMATS)}.")
