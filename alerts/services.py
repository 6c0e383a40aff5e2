"""Creating and importing alerts: the one write path for the form, the legacy endpoint and commands."""

import json
import math
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.management.color import no_style
from django.core.validators import URLValidator
from django.db import IntegrityError, connection, transaction

from gsafollowup.errors import BadInput, Duplicate

from .ivorns import clean_ivorn, ivorn_key
from .models import Alert

__all__ = ["clean_ivorn", "create_alert", "import_legacy_alerts"]

#: How far ahead of now a publication time may lie (clock skew of the sender), not more.
MAX_FUTURE = timedelta(days=1)


def clean_coordinates(ra, dec) -> tuple[float, float]:
    """RA in [0, 360), Dec in [-90, 90] as floats, or BadInput."""
    try:
        ra_f, dec_f = float(ra), float(dec)
    except (TypeError, ValueError):
        raise BadInput("ra and dec must be decimal degrees.") from None
    if not (math.isfinite(ra_f) and math.isfinite(dec_f)):
        raise BadInput("ra and dec must be finite numbers.")
    if not 0.0 <= ra_f <= 360.0:
        raise BadInput("ra must be between 0 and 360 degrees.")
    if not -90.0 <= dec_f <= 90.0:
        raise BadInput("dec must be between -90 and 90 degrees.")
    return ra_f % 360.0, dec_f


def clean_url(value: str | None) -> str:
    url = (value or "").strip()
    if url:
        try:
            URLValidator(schemes=["http", "https"])(url)
        except ValidationError:
            raise BadInput("url must be an http(s) address.") from None
    return url


def clean_published(value: datetime | None) -> datetime:
    """The publication time, now when absent; BadInput beyond a day ahead (it would top the list forever)."""
    now = datetime.now(UTC)
    if value is None:
        return now
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value > now + MAX_FUTURE:
        raise BadInput(f"published {value:%Y-%m-%d} lies in the future; give the alert's publication time.")
    return value


def twin_of(ivorn: str) -> Alert | None:
    """An existing alert whose IVORN reads the same as this new one (case, look-alike letters)."""
    return Alert.objects.filter(ivorn_key=ivorn_key(ivorn)).exclude(ivorn=ivorn).only("pk", "ivorn").first()


def create_alert(
    *, ivorn: str, ra, dec, url: str = "", comment: str = "", user=None, published=None
) -> Alert:
    """Create a new alert; Duplicate if the IVORN exists, BadInput for bad values."""
    ivorn = clean_ivorn(ivorn)
    ra_f, dec_f = clean_coordinates(ra, dec)
    url = clean_url(url)
    published = clean_published(published)
    existing = Alert.objects.filter(ivorn=ivorn).only("pk").first()
    if existing is not None:
        raise Duplicate(f"Event {ivorn} exists already (id {existing.pk}).", existing_id=existing.pk)
    twin = twin_of(ivorn)
    if twin is not None:
        raise Duplicate(f"Event {ivorn} reads the same as {twin.ivorn} (id {twin.pk}).", existing_id=twin.pk)
    try:
        with transaction.atomic():
            return Alert.objects.create(
                ivorn=ivorn,
                ra=ra_f,
                dec=dec_f,
                url=url,
                comment=(comment or "").strip(),
                created_by=user if user is not None and user.is_authenticated else None,
                published=published,
            )
    except IntegrityError:
        # A concurrent request created it between our check and our insert.
        existing = Alert.objects.filter(ivorn=ivorn).only("pk").first()
        raise Duplicate(
            f"Event {ivorn} exists already.", existing_id=existing.pk if existing else None
        ) from None


def parse_legacy_time(value: str) -> datetime:
    """Legacy 'YYYY-MM-DDTHH:MM:SS' (UTC, no zone) to an aware datetime."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def legacy_time(value: datetime | None) -> str | None:
    """An aware datetime as the legacy 'YYYY-MM-DDTHH:MM:SS' in UTC."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") if value else None


@transaction.atomic
def import_legacy_alerts(entries: list[dict]) -> dict[str, int]:
    """Load legacy list_of_alerts entries keeping their ids; idempotent. Returns counts."""
    counts = {"created": 0, "unchanged": 0, "conflicts": 0}
    for entry in entries:
        try:
            pk = int(entry["id"])
            ivorn = clean_ivorn(entry["ivorn"])
            ra, dec = clean_coordinates(entry["ra"], entry["dec"])
            published = parse_legacy_time(entry["published"]) if entry.get("published") else None
        except (KeyError, TypeError, ValueError) as error:
            raise BadInput(f"Malformed legacy alert entry {entry!r:.80}: {error}") from None
        by_id = Alert.objects.filter(pk=pk).first()
        by_ivorn = Alert.objects.filter(ivorn=ivorn).first()
        if by_id is not None and by_id.ivorn == ivorn:
            counts["unchanged"] += 1
        elif by_id is None and by_ivorn is None:
            Alert.objects.create(pk=pk, ivorn=ivorn, ra=ra, dec=dec, published=published)
            counts["created"] += 1
        else:
            counts["conflicts"] += 1
    if counts["created"]:
        reset_sequences(Alert)
    return counts


def reset_sequences(*models) -> None:
    """Move the id sequences past rows inserted with explicit ids (PostgreSQL does not by itself)."""
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), list(models)):
            cursor.execute(sql)


def load_legacy_alert_file(path) -> list[dict]:
    """Read a legacy list_of_alerts?format=json file."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadInput(f"Cannot read {path}: {error}") from None
    if not isinstance(data, list):
        raise BadInput(f"{path} is not a JSON array of alerts.")
    return data
