"""What the light-curve page shows, prepared in Python so that the template only displays it."""

import html
import re
from urllib.parse import urlencode

from astropy import units as u
from astropy.coordinates import Angle
from astropy.time import Time
from django.core.paginator import Paginator
from django.urls import get_script_prefix, reverse
from django.utils.safestring import mark_safe

from .lightcurves import FORMATS, LightCurve, mjd_to_iso
from .models import Alert, Alias, GaiaPoint
from .plots import band_order, figure_script, lightcurve_figure
from .selectors import ListQuery, list_alerts, parse_cone, parse_sort

GAIA_NAME = re.compile(r"^Gaia\d{2}[a-z]{1,4}$")
GAIA_ALERT_URL = "https://gsaweb.ast.cam.ac.uk/alerts/alert/{name}/"
DOWNLOAD_LABELS = {"json": "JSON (legacy)", "csv": "CSV", "ecsv": "ECSV", "votable": "VOTable"}


def sexagesimal(ra: float, dec: float) -> tuple[str, str]:
    """RA as hh:mm:ss.ss and Dec as ±dd:mm:ss.s."""
    ra_hms = Angle(ra, u.deg).to_string(unit=u.hourangle, sep=":", precision=2, pad=True)
    dec_dms = Angle(dec, u.deg).to_string(unit=u.deg, sep=":", precision=1, pad=True, alwayssign=True)
    return ra_hms, dec_dms


TNS_URL = "https://www.wis-tns.org/object/{name}"
ASASSN_NAME = re.compile(r"^ASASSN-?\d{2}[a-z]{2,3}$")
TNS_NAME = re.compile(r"^\d{4}[a-z]{1,4}$")


def links_out(alert: Alert, names: list[str]) -> list[dict]:
    """Pages about the object elsewhere: TNS, Gaia alerts, ASAS-SN transients, from its names."""
    links = []
    for name in [alert.name, *names]:
        if TNS_NAME.match(name):
            links.append({"label": f"TNS {name}", "url": TNS_URL.format(name=name)})
        elif GAIA_NAME.match(name):
            links.append({"label": f"Gaia alert {name}", "url": GAIA_ALERT_URL.format(name=name)})
        elif ASASSN_NAME.match(name):
            links.append(
                {
                    "label": f"ASAS-SN {name}",
                    "url": "https://www.astronomy.ohio-state.edu/asassn/transients.html",
                }
            )
    unique = {link["url"]: link for link in links}
    return list(unique.values())


def origin_url(alert: Alert) -> str:
    """Where the alert was announced: its stored URL, else the Gaia alerts page for Gaia names."""
    if alert.url:
        return alert.url
    return GAIA_ALERT_URL.format(name=alert.name) if GAIA_NAME.match(alert.name) else ""


def deletable_points(lc: LightCurve, user) -> list[bool] | None:
    """Which points this user may delete (the owner, i.e. the observatory's account, and curators).

    None when there is none, so that the page shows no delete column at all.
    """
    if not user.is_authenticated:
        return None
    if user.is_staff:
        return [True] * len(lc)
    pk = user.pk  # once: request.user is a lazy proxy, slow to ask 10^4 times
    mine = [owner == pk for owner in lc.owner]
    return mine if any(mine) else None


ROW = (
    '<tr class="{}"><td class="num">{}</td><td class="num">{}</td><td>{}</td><td>{}</td><td>{}</td>'
    '<td class="num" data-value="{}">{}</td><td class="num">{}</td><td class="num">{}</td><td>{}</td>{}</tr>'
)
DELETE_BUTTON = (
    '<td><button type="submit" form="delete-point" name="followupid" value="{}">Delete</button></td>'
)


def _numbers(values: list, digits: int) -> list[str]:
    """Floats formatted with this many decimals ('' for a missing value)."""
    spec = f"{{:.{digits}f}}".format
    return ["" if v is None else spec(v) for v in values]


def _texts(values: list[str]) -> list[str]:
    """User texts HTML-escaped (each distinct value once)."""
    escaped = {value: html.escape(value) for value in set(values)}
    return [escaped[value] for value in values]


def point_rows(lc: LightCurve, deletable: list[bool] | None) -> str:
    """The table's <tr> elements in time order; with ``deletable``, a last column of delete buttons.

    Built here, column by column, because a template loop takes ~0.5 s for 10^4 rows. Texts
    from users (band, survey, observatory) are escaped by _texts; all else is numbers and dates.
    """
    buttons = [""] * len(lc)
    if deletable is not None:
        pairs = zip(lc.id, deletable, strict=True)
        buttons = [DELETE_BUTTON.format(int(pk)) if ok else "<td></td>" for pk, ok in pairs]
    columns = zip(
        lc.id,
        _numbers(lc.mjd, 5),
        lc.dates,
        _texts(lc.filter),
        _texts(lc.catalog),
        _numbers(lc.mag, 4),
        _numbers(lc.mag, 3),
        _numbers(lc.magerr, 3),
        _numbers(lc.caliberr, 3),
        _texts(lc.observatory),
        lc.is_limit,
        buttons,
        strict=True,
    )
    rows = [
        ROW.format(
            "limit" if limit else "detection",
            int(pk),
            mjd,
            date,
            band,
            survey,
            sort_value,
            f"&gt; {mag}" if limit else mag,
            "limit" if limit else magerr,
            caliberr,
            observer,
            button,
        )
        for pk, mjd, date, band, survey, sort_value, mag, magerr, caliberr, observer, limit, button in columns
    ]
    return mark_safe("\n".join(rows))  # noqa: S308 - user texts are escaped by _texts, the rest are numbers


def downloads(alert: Alert) -> list[dict]:
    """Links to the light curve in every download format (JSON, the legacy default, needs no format)."""
    base = reverse("lightcurve-data")
    links = []
    for fmt in FORMATS:
        query = {"alert_id": alert.pk} if fmt == "json" else {"alert_id": alert.pk, "format": fmt}
        links.append({"label": DOWNLOAD_LABELS[fmt], "url": f"{base}?{urlencode(query)}"})
    return links


def lightcurve_page(lc: LightCurve, user) -> dict:
    """The template context of GET /get_alert_lc and of the alert's page."""
    alert = lc.alert
    ra_hms, dec_dms = sexagesimal(alert.ra, alert.dec)
    deletable = deletable_points(lc, user)
    aliases = list(alert.aliases.values_list("name", flat=True))
    gaia = gaia_series(alert)
    figure = lightcurve_figure(lc, gaia) if len(lc) or gaia else None
    return {
        "aliases": aliases,
        "links_out": links_out(alert, aliases),
        "ngaia": len(gaia[0]) if gaia else 0,
        "alert": alert,
        "ra_hms": ra_hms,
        "dec_dms": dec_dms,
        "origin_url": origin_url(alert),
        "npoints": len(lc),
        "nlimits": sum(lc.is_limit),
        "bands": band_order(lc.filter),
        "plot": figure_script(figure) if figure is not None else "",
        "rows": point_rows(lc, deletable),
        "can_delete": deletable is not None,
        # The legacy path is part of the contract, so it is fixed; only a deployment prefix varies.
        "delete_url": f"{get_script_prefix()}cgi/delpoint",
        "downloads": downloads(alert),
        # The upload form, filled in for this alert.
        "upload_url": f"{reverse('upload')}?{urlencode({'EventID': alert.ivorn})}",
        "filter_bands": band_order(lc.filter),
        "filter_observatories": sorted(set(lc.observatory)),
    }


def gaia_series(alert: Alert) -> tuple[list, list, list] | None:
    """The alert's Gaia G light curve as (mjd, mag, approximate error) lists, or None."""
    rows = list(GaiaPoint.objects.filter(alert=alert).order_by("mjd").values_list("mjd", "mag", "mag_err"))
    if not rows:
        return None
    mjd, mag, err = (list(column) for column in zip(*rows, strict=True))
    return mjd, mag, err


PAGE_SIZE = 50
COLUMNS = (
    ("id", "id"),
    ("name", "Alert"),
    ("ra", "RA"),
    ("dec", "Dec"),
    ("published", "Published (UTC)"),
    ("points", "Points"),
    ("latest", "Latest point"),
)


def table_rows(alerts) -> list[dict]:
    """Alerts of one page with their aliases, the latest point's date and how many days ago."""
    alerts = list(alerts)
    names = {}
    for alert_id, name in Alias.objects.filter(alert__in=alerts).values_list("alert_id", "name"):
        names.setdefault(alert_id, []).append(name)
    now_mjd = Time.now().mjd
    latest = [a.latest_mjd for a in alerts if getattr(a, "latest_mjd", None) is not None]
    dates = iter(mjd_to_iso(latest, unit="m"))
    rows = []
    for alert in alerts:
        mjd = getattr(alert, "latest_mjd", None)
        row = {"alert": alert, "aliases": names.get(alert.pk, [])[:3]}
        if mjd is not None:
            row["latest_date"] = next(dates).replace("T", " ")
            row["days_ago"] = max(0, int(now_mjd - mjd))
        rows.append(row)
    return rows


def sort_columns(params, current: str) -> list[dict]:
    """Column headers: each links to sorting by it (again: the other way), keeping the search."""
    keep = {k: v for k, v in params.items() if k in ("q", "cone", "observed_only")}
    columns = []
    for key, label in COLUMNS:
        target = f"-{key}" if current == key else key
        arrow = "▲" if current == key else "▼" if current == f"-{key}" else ""
        columns.append({"label": label, "url": "?" + urlencode({**keep, "sort": target}), "arrow": arrow})
    return columns


def list_page(params) -> dict:
    """The template context of the HTML alert list: search, cone, sort and one page of rows."""
    cone_text = (params.get("cone") or "").strip()
    query = ListQuery(
        search=(params.get("q") or "").strip()[:255],
        cone=parse_cone(cone_text) if cone_text else None,
        sort=parse_sort(params.get("sort")),
        observed_only=(params.get("observed_only") or "") in ("1", "on", "true"),
    )
    page = Paginator(list_alerts(query), PAGE_SIZE).get_page(params.get("page"))
    keep = {k: v for k, v in params.items() if k in ("q", "cone", "observed_only", "sort")}
    return {
        "query": query,
        "cone_text": cone_text,
        "page": page,
        "rows": table_rows(page.object_list),
        "columns": sort_columns(params, query.sort),
        "page_query": urlencode(keep),
    }
