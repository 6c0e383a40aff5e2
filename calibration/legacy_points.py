"""Importing the old server's light curves (get_alert_lc_data JSON files) as stored points.

Imported points keep the old follow-up id as their primary key (and in ``legacy_id``), so the
ids clients saw on the old server, and may pass to delpoint, stay valid. They are marked
``imported`` (no catalog is kept) and belong to the observatory named by the old label,
a placeholder (inactive, no hashtag) when no observatory has that name.
"""

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from alerts.models import Alert
from alerts.services import refresh_followup_stats, reset_sequences
from gsafollowup.errors import BadInput, UnknownEvent
from observers.models import Observatory
from observers.services import create_observatory

from .models import FollowupPoint

FILE_NAME = re.compile(r"^alert-(\d+)\.json$")
NUMBERS = ("mjd", "mag", "magerr", "caliberr")
TEXTS = ("filter", "catalog", "observatory")
LIMIT_MAGERR = -1.0
MAX_LENGTH = {"filter": 10, "catalog": 20, "observatory": 100}
# Keeps each "pk IN (...)" query well below SQLite's limit on bound variables.
CHUNK = 5000


@dataclass(frozen=True)
class LegacyPoint:
    """One point of a legacy light-curve file, with the legacy names."""

    id: int
    mjd: float
    mag: float
    magerr: float
    caliberr: float
    filter: str
    catalog: str
    observatory: str


@dataclass
class ImportCounts:
    """What one import did."""

    created: int = 0
    unchanged: int = 0
    conflicts: int = 0
    observatories: int = 0

    def add(self, other: "ImportCounts") -> None:
        for name in ("created", "unchanged", "conflicts", "observatories"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def legacy_files(path) -> list[Path]:
    """The alert-N.json files of a directory (sorted), or the one file given."""
    path = Path(path)
    if path.is_dir():
        return sorted(p for p in path.iterdir() if FILE_NAME.match(p.name))
    if not path.is_file():
        raise BadInput(f"{path} is neither a file nor a directory.")
    return [path]


def alert_id_of(path: Path) -> int:
    """The alert id N of a file named alert-N.json (the old server's data URL had it)."""
    match = FILE_NAME.match(path.name)
    if match is None:
        raise BadInput(f"{path.name}: the file name must be alert-N.json, N being the alert id.")
    return int(match.group(1))


def _number(value, key: str, k: int) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadInput(f"{key}[{k}] is not a finite number.")
    return float(value)


def _text(value, key: str, k: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_LENGTH[key]:
        raise BadInput(f"{key}[{k}] must be a non-empty string of at most {MAX_LENGTH[key]} characters.")
    return value


def parse_legacy_lightcurve(data) -> list[LegacyPoint]:
    """Check a decoded get_alert_lc_data object and return its points."""
    if not isinstance(data, dict):
        raise BadInput("A legacy light curve is a JSON object of arrays.")
    keys = (*NUMBERS, *TEXTS, "id")
    missing = [key for key in keys if not isinstance(data.get(key), list)]
    if missing:
        raise BadInput(f"Missing or non-array keys: {', '.join(missing)}.")
    lengths = {len(data[key]) for key in keys}
    if len(lengths) != 1:
        raise BadInput("The arrays of the light curve differ in length.")
    points = []
    for k in range(lengths.pop()):
        ident = data["id"][k]
        if isinstance(ident, bool) or not isinstance(ident, int) or ident <= 0:
            raise BadInput(f"id[{k}] is not a positive integer.")
        values = {key: _number(data[key][k], key, k) for key in NUMBERS}
        values.update({key: _text(data[key][k], key, k) for key in TEXTS})
        points.append(LegacyPoint(id=ident, **values))
    return points


def read_legacy_lightcurve(path: Path) -> list[LegacyPoint]:
    """The points of one legacy light-curve file."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadInput(f"Cannot read {path}: {error}") from None
    try:
        return parse_legacy_lightcurve(data)
    except BadInput as error:
        raise BadInput(f"{path.name}: {error.message}") from None


def placeholder_prefix(label: str) -> str:
    """A free hashtag prefix made from an old observer label, e.g. 'legacy-Loiano-K.Ulaczyk'."""
    slug = re.sub(r"[^A-Za-z0-9.]+", "-", label).strip("-.")[:20].strip("-.")
    base = f"legacy-{slug}" if slug else "legacy"
    users = get_user_model().objects
    candidate, n = base, 1
    while (
        Observatory.objects.filter(prefix__iexact=candidate).exists()
        or users.filter(username=f"obs-{candidate}").exists()
    ):
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def observatory_for(label: str) -> tuple[Observatory, bool]:
    """The observatory with this name, or a new inactive placeholder without hashtags."""
    found = Observatory.objects.filter(name=label).first()
    if found is not None:
        return found, False
    observatory, _ = create_observatory(
        name=label, prefix=placeholder_prefix(label), active=False, issue=False
    )
    return observatory, True


def _existing(ids: list[int]) -> dict[int, tuple[int | None, int]]:
    """Rows holding any of these ids as pk or legacy id: {id: (legacy_id, alert_id)}."""
    found = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        rows = FollowupPoint.objects.filter(Q(pk__in=chunk) | Q(legacy_id__in=chunk))
        for pk, legacy_id, alert_id in rows.values_list("pk", "legacy_id", "alert_id"):
            found[pk] = (legacy_id, alert_id)
            if legacy_id is not None:
                found.setdefault(legacy_id, (legacy_id, alert_id))
    return found


@transaction.atomic
def import_legacy_points(alert_id: int, points: list[LegacyPoint]) -> ImportCounts:
    """Store the points of one alert, skipping those already imported; idempotent."""
    alert = Alert.objects.filter(pk=alert_id).first()
    if alert is None:
        raise UnknownEvent(f"No alert with id {alert_id}: import the alert list first (--alert-id-map).")
    counts = ImportCounts()
    existing = _existing([point.id for point in points])
    observatories: dict[str, Observatory] = {}
    new = []
    for point in points:
        if point.id in existing:
            # Already imported here: unchanged. Anything else (an upload holds this id,
            # or the id belongs to another alert) is a conflict that is reported, not overwritten.
            if existing[point.id] == (point.id, alert.pk):
                counts.unchanged += 1
            else:
                counts.conflicts += 1
            continue
        existing[point.id] = (None, 0)  # a repeated id inside the file is a conflict
        if point.observatory not in observatories:
            observatories[point.observatory], created = observatory_for(point.observatory)
            counts.observatories += created
        limit = point.magerr == LIMIT_MAGERR
        new.append(
            FollowupPoint(
                pk=point.id,
                legacy_id=point.id,
                imported=True,
                alert=alert,
                observatory=observatories[point.observatory],
                legacy_observatory=point.observatory,
                mjd=point.mjd,
                survey=point.catalog,
                filter=point.filter,
                mag=point.mag,
                mag_err=point.magerr,
                calib_err=point.caliberr,
                is_limit=limit,
            )
        )
    FollowupPoint.objects.bulk_create(new, batch_size=1000)
    counts.created = len(new)
    if new:
        reset_sequences(FollowupPoint)
        refresh_followup_stats(alert.pk)
    return counts


def import_legacy_file(path) -> tuple[int, ImportCounts]:
    """Import one alert-N.json file; returns the alert id and the counts."""
    path = Path(path)
    alert_id = alert_id_of(path)
    return alert_id, import_legacy_points(alert_id, read_legacy_lightcurve(path))
