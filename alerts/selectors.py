"""Reading alerts: by any of their names, by position, and the rows of the alert list."""

import math
import re
import unicodedata
from dataclasses import dataclass

from django.db.models import F, Q

from gsafollowup.errors import BadInput

from .ivorns import INVISIBLE_CATEGORIES, ivorn_key
from .models import Alert, Alias, HarvestedObject, alert_name

#: "SN 2024abc", "AT2024abc", "TDE 2024abc": TNS names with the prefix that changes on classification.
TNS_PREFIXED = re.compile(r"^(?:AT|SN|TDE|FRB|KN|LRN|ILRT|NOV)\s*(\d{4}[a-z]{2,4})$", re.IGNORECASE)


def _typed(name: str) -> str:
    """The name as typed, NFC and trimmed; '' when empty or holding an invisible character."""
    text = unicodedata.normalize("NFC", name or "").strip()
    if any(unicodedata.category(c) in INVISIBLE_CATEGORIES for c in text):
        return ""  # no stored name has one (clean_ivorn, clean_alias_name); PostgreSQL refuses a NUL
    return text


def name_keys(name: str) -> list[str]:
    """Twin keys under which an alias typed as ``name`` may be stored (bare TNS name, ivo:// form)."""
    keys = [ivorn_key(name)]
    if "://" not in name:
        keys.append(ivorn_key(f"ivo://{name}"))
    prefixed = TNS_PREFIXED.match(name)
    if prefixed:
        keys.append(ivorn_key(prefixed.group(1)))
    return keys


def alert_by_name(name: str) -> Alert | None:
    """The alert with this IVORN (also typed without ivo://), else the one with this alias.

    IVORNs match exactly, as they always did; aliases match by twin key, so case and look-alike
    letters do not matter (they cannot name two alerts: the key is unique).
    """
    text = _typed(name)
    if not text:
        return None
    candidates = [text] if "://" in text else [text, f"ivo://{text}"]
    alert = Alert.objects.filter(ivorn__in=candidates).order_by("ivorn").first()
    if alert is not None:
        return alert
    alias = Alias.objects.filter(key__in=name_keys(text)).select_related("alert").first()
    return alias.alert if alias is not None else None


def clash_keys(name: str) -> set[str]:
    """The twin keys (of IVORNs and aliases) that a new IVORN or alias ``name`` would clash with."""
    text = _typed(name)
    if not text:
        return set()
    return {ivorn_key(text), ivorn_key(alert_name(text))} | set(name_keys(text))


def alert_named_by(name: str) -> Alert | None:
    """An existing alert that a new IVORN or alias would clash with (its IVORN, twin or alias)."""
    keys = clash_keys(name)
    if not keys:
        return None
    twin = Alert.objects.filter(ivorn_key__in=keys).only("pk", "ivorn").first()
    if twin is not None:
        return twin
    alias = Alias.objects.filter(key__in=keys).select_related("alert").first()
    return alias.alert if alias is not None else None


def angular_distance_deg(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """Great-circle distance (haversine, stable for small angles)."""
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    h = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(h))))


def ra_half_width(dec: float, radius: float) -> float | None:
    """Half the RA range of a cone (degrees), or None when it holds a pole."""
    if abs(dec) + radius >= 90:
        return None
    ratio = math.sin(math.radians(radius)) / math.cos(math.radians(dec))
    # A hair wider than the tangent points, so rounding never drops an alert on the edge.
    return math.degrees(math.asin(min(1.0, ratio))) + 1e-9


def in_box(alerts, ra: float, dec: float, radius: float):
    """Narrow a queryset to the cone's bounding box in SQL (the Dec index does the work)."""
    nearby = alerts.filter(dec__gte=dec - radius, dec__lte=dec + radius)
    half = ra_half_width(dec, radius)
    if half is not None and half < 180:
        low, high = ra - half, ra + half
        if low < 0:
            nearby = nearby.filter(Q(ra__gte=low + 360) | Q(ra__lte=high))
        elif high > 360:
            nearby = nearby.filter(Q(ra__gte=low) | Q(ra__lte=high - 360))
        else:
            nearby = nearby.filter(ra__gte=low, ra__lte=high)
    return nearby


def cone_ids(alerts, ra: float, dec: float, radius: float) -> list[int]:
    """Ids of the alerts within ``radius`` degrees, by exact distance after the box."""
    rows = in_box(alerts, ra, dec, radius).values_list("pk", "ra", "dec")
    return [pk for pk, a_ra, a_dec in rows if angular_distance_deg(ra, dec, a_ra, a_dec) <= radius]


#: How close (arcsec) a new alert may lie to an existing one before it is offered as its alias.
NEIGHBOUR_ARCSEC = 1.5


def neighbour_of(ra: float, dec: float, exclude_pk: int | None = None) -> Alert | None:
    """The nearest existing alert within 1.5" of this position, or None."""
    radius = NEIGHBOUR_ARCSEC / 3600
    alerts = Alert.objects.exclude(pk=exclude_pk) if exclude_pk else Alert.objects.all()
    rows = in_box(alerts, ra, dec, radius).values_list("pk", "ra", "dec")
    found = sorted((angular_distance_deg(ra, dec, a_ra, a_dec), pk) for pk, a_ra, a_dec in rows)
    if not found or found[0][0] > radius:
        return None
    return Alert.objects.get(pk=found[0][1])


def parse_cone(text: str) -> tuple[float, float, float]:
    """'ra,dec,radius' in degrees, checked; BadInput otherwise."""
    try:
        ra, dec, radius = (float(part) for part in text.split(","))
    except ValueError:
        raise BadInput("cone must be 'ra,dec,radius' in degrees.") from None
    if not all(math.isfinite(v) for v in (ra, dec, radius)):
        raise BadInput("cone values must be finite numbers.")
    if not (0 <= ra <= 360 and -90 <= dec <= 90 and 0 < radius <= 180):
        raise BadInput("cone needs 0<=ra<=360, -90<=dec<=90 and 0<radius<=180.")
    return ra, dec, radius


def search_names(alerts, text: str):
    """Alerts whose IVORN or one of whose aliases contains ``text`` (any case)."""
    text = _typed(text)
    if not text:
        return alerts.none()
    by_alias = Alias.objects.filter(name__icontains=text).values("alert_id")
    return alerts.filter(Q(ivorn__icontains=text) | Q(pk__in=by_alias))


#: Columns of the alert list a reader may sort by: the query parameter -> the database ordering.
SORTS = {
    "id": "id",
    "name": "ivorn",
    "ra": "ra",
    "dec": "dec",
    "published": "published",
    "points": "nfollowup",
    "latest": "latest_mjd",
}


@dataclass(frozen=True)
class ListQuery:
    """What the alert list page was asked for (all optional)."""

    search: str = ""
    cone: tuple[float, float, float] | None = None
    sort: str = "-id"
    observed_only: bool = False


def parse_sort(text: str) -> str:
    """A sort parameter: a column of SORTS, '-' in front for descending; BadInput otherwise."""
    text = (text or "-id").strip()
    if text.lstrip("-") not in SORTS:
        raise BadInput(f"sort must be one of {', '.join(SORTS)} (a leading - sorts descending).")
    return text


def list_alerts(query: ListQuery):
    """The alerts of the list page, annotated with their follow-up statistics, in the asked order."""
    alerts = Alert.objects.all()
    if query.search:
        alerts = search_names(alerts, query.search)
    if query.cone is not None:
        alerts = alerts.filter(pk__in=cone_ids(alerts, *query.cone))
    if query.observed_only:
        alerts = alerts.observed()
    column = F(SORTS[query.sort.lstrip("-")])
    # Alerts never observed (no latest point) go last whichever way the column is sorted; ties
    # follow the column's direction, so each sort is one index of Alert.Meta read in order.
    if query.sort.startswith("-"):
        return alerts.order_by(column.desc(nulls_last=True), F("id").desc())
    return alerts.order_by(column.asc(nulls_last=True), F("id").asc())


def recently_observed(limit: int = 10) -> list[Alert]:
    """The alerts with the latest visible follow-up points, most recent first."""
    # The stored latest point, read by its index (alert_sort_latest_d).
    return list(
        Alert.objects.observed().order_by(F("latest_mjd").desc(nulls_last=True), F("id").desc())[:limit]
    )


def harvested_position(name: str) -> HarvestedObject | None:
    """The last harvested TNS or Gaia record of this name (TNS with or without its prefix)."""
    text = _typed(name)
    if not text:
        return None
    bare = alert_name(text)
    prefixed = TNS_PREFIXED.match(bare)
    names = {bare, prefixed.group(1)} if prefixed else {bare}
    found = HarvestedObject.objects.filter(
        source__in=[HarvestedObject.Source.TNS, HarvestedObject.Source.GAIA], name__in=names
    )
    # A Gaia name is Gaia's own; a TNS name is the TNS's; never both for one text.
    return found.order_by("-harvested").first()


def gaia_names_followed() -> list[str]:
    """Gaia names of the alerts observers follow (with visible points): whose light curves to fetch."""
    records = HarvestedObject.objects.filter(source=HarvestedObject.Source.GAIA, alert__nfollowup__gt=0)
    return list(records.order_by("name").values_list("name", flat=True))
