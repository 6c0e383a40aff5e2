"""Creating and importing alerts: the one write path for the form, the legacy endpoint and commands."""

import json
import math
from datetime import UTC, datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.management.color import no_style
from django.core.validators import URLValidator
from django.db import IntegrityError, connection, transaction
from django.db.models import Count

from gsafollowup.errors import BadInput, Duplicate, Forbidden, NearbyAlert

from .ivorns import clean_ivorn, ivorn_key
from .models import Alert, AlertMerge, Alias, GaiaPoint, HarvestedObject
from .selectors import alert_named_by, angular_distance_deg, harvested_position, neighbour_of

__all__ = ["add_alias", "clean_ivorn", "create_alert", "import_legacy_alerts", "merge_alerts", "undo_merge"]

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


def refuse_taken_name(name: str) -> None:
    """Duplicate when an alert already has this name as its IVORN, a twin of it, or an alias."""
    existing = Alert.objects.filter(ivorn=name).only("pk").first()
    if existing is not None:
        raise Duplicate(f"Event {name} exists already (id {existing.pk}).", existing_id=existing.pk)
    twin = twin_of(name)
    if twin is not None:
        raise Duplicate(f"Event {name} reads the same as {twin.ivorn} (id {twin.pk}).", existing_id=twin.pk)
    named = alert_named_by(name)
    if named is not None:
        raise Duplicate(f"{name} is already a name of {named.ivorn} (id {named.pk}).", existing_id=named.pk)


def refuse_neighbour(name: str, ra: float, dec: float) -> None:
    """NearbyAlert when an existing alert lies within 1.5": the new name belongs to it as an alias."""
    near = neighbour_of(ra, dec)
    if near is not None:
        arcsec = angular_distance_deg(ra, dec, near.ra, near.dec) * 3600
        raise NearbyAlert(
            f'{name} lies {arcsec:.1f}" from {near.ivorn} (id {near.pk}): add it as an alias of that '
            "alert, or send separate=1 for another object.",
            existing_id=near.pk,
        )


def _blank(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def position_by_name(name: str) -> tuple[float, float, HarvestedObject]:
    """The position of a TNS or Gaia object from the last harvest; BadInput when none is known."""
    found = harvested_position(name)
    if found is None:
        raise BadInput(
            f"Give ra and dec: no harvested TNS or Gaia object is named {name[:60]} (harvest_alerts)."
        )
    return found.ra, found.dec, found


def position_source(record: HarvestedObject) -> str:
    """Where a position came from, for the observer: 'TNS 2024abc, harvested 2024-06-01'."""
    return f"{record.get_source_display()} {record.name}, harvested {record.harvested:%Y-%m-%d}"


def create_alert(
    *,
    ivorn: str,
    ra=None,
    dec=None,
    url: str = "",
    comment: str = "",
    user=None,
    published=None,
    separate=False,
) -> Alert:
    """Create a new alert; Duplicate if the name is taken, NearbyAlert within 1.5", BadInput for bad values.

    Without ra and dec, a TNS or Gaia name takes the position of its last harvested record, the
    record is linked to the alert and ``alert.position_from`` says which it was.
    ``separate`` creates it even next to an existing alert (two objects 1" apart do exist).
    """
    ivorn = clean_ivorn(ivorn)
    record = None
    if _blank(ra) and _blank(dec):
        ra, dec, record = position_by_name(ivorn)
    ra_f, dec_f = clean_coordinates(ra, dec)
    url = clean_url(url)
    published = clean_published(published)
    refuse_taken_name(ivorn)
    if not separate:
        refuse_neighbour(ivorn, ra_f, dec_f)
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                ivorn=ivorn,
                ra=ra_f,
                dec=dec_f,
                url=url,
                comment=(comment or "").strip(),
                created_by=user if user is not None and user.is_authenticated else None,
                published=published,
            )
            alert.position_from = ""
            if record is not None:
                link_harvested(alert, record)
                alert.position_from = position_source(record)
            return alert
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


#: An alias is a short name (TNS, Gaia, survey ids) or an IVORN; longer is a paste accident.
MAX_ALIAS = 255


def clean_alias_name(value: str) -> str:
    """An alias as stored: the rules of an IVORN (NFC, trimmed, nothing invisible), no comma."""
    try:
        name = clean_ivorn(value)
    except BadInput as error:
        message = error.message.replace("EventID (the IVORN)", "The alias").replace("EventID", "The alias")
        raise BadInput(message) from None
    if "," in name:
        # TNS lists internal names separated by commas: one in a name means a list was not split.
        raise BadInput(f"An alias holds one name, not a list: {name[:60]}")
    return name


def check_alias(alert: Alert, name: str) -> str:
    """The cleaned alias; Duplicate when it names another alert (IVORN, twin or alias)."""
    name = clean_alias_name(name)
    owner = Alert.objects.filter(ivorn=name).only("pk", "ivorn").first() or alert_named_by(name)
    if owner is not None and owner.pk != alert.pk:
        raise Duplicate(f"{name} is already a name of {owner.ivorn} (id {owner.pk}).", existing_id=owner.pk)
    return name


def add_alias(alert: Alert, name: str, source: str = Alias.Source.CURATOR) -> Alias | None:
    """Give the alert another name; None if it is already one of its names (idempotent)."""
    name = check_alias(alert, name)
    if name == alert.ivorn or Alias.objects.filter(alert=alert, key=ivorn_key(name)).exists():
        return None
    try:
        with transaction.atomic():
            return Alias.objects.create(alert=alert, name=name, source=source)
    except IntegrityError:
        # Another request gave the same name (or a twin of it) to an alert meanwhile.
        owner = Alias.objects.filter(key=ivorn_key(name)).select_related("alert").first()
        if owner is not None and owner.alert_id == alert.pk:
            return None
        raise Duplicate(f"{name} was just given to another alert.") from None


MERGED_FIELDS = ("ivorn", "ra", "dec", "url", "published", "comment", "created_by_id")


def _refuse_colliding_points(keep: Alert, merged: Alert) -> None:
    """Forbidden when moving the points would store one measurement twice (the database's unique rules)."""
    from calibration.models import FollowupPoint

    def keys(alert):
        # The rows the partial unique constraints of FollowupPoint cover.
        rows = FollowupPoint.objects.filter(alert=alert, hidden=False, imported=False)
        return rows.values_list("pk", "catalog_sha256", "filter", "observatory_id", "mjd")

    moving = list(keys(merged))
    catalogs = {(sha, band) for _, sha, band, _, _ in moving if sha}
    nights = {(obs, mjd, band) for _, _, band, obs, mjd in moving}
    for pk, sha, band, obs, mjd in keys(keep):
        if (sha and (sha, band) in catalogs) or (obs, mjd, band) in nights:
            raise Forbidden(
                f"Both alerts hold the same measurement (point {pk} of {keep.ivorn}); hide one of the "
                "two points before merging."
            )


@transaction.atomic
def merge_alerts(keep: Alert, merged: Alert, user=None) -> AlertMerge:
    """Merge ``merged`` into ``keep``: its points, aliases, Gaia points and harvested records move to
    ``keep``, its IVORN becomes an alias of ``keep``, and it is deleted. Recorded, so undo_merge
    brings it back with its id and everything that moved.
    """
    from calibration.models import FollowupPoint

    if keep.pk == merged.pk:
        raise BadInput("An alert cannot be merged into itself.")
    keep = Alert.objects.select_for_update().get(pk=keep.pk)
    merged = Alert.objects.select_for_update().get(pk=merged.pk)
    _refuse_colliding_points(keep, merged)
    if GaiaPoint.objects.filter(alert=merged).exists() and GaiaPoint.objects.filter(alert=keep).exists():
        raise Forbidden("Both alerts have a Gaia light curve: they are two Gaia alerts, not one object.")
    moved = {
        "points": list(FollowupPoint.objects.filter(alert=merged).values_list("pk", flat=True)),
        "aliases": list(Alias.objects.filter(alert=merged).values_list("pk", flat=True)),
        "gaia_points": list(GaiaPoint.objects.filter(alert=merged).values_list("pk", flat=True)),
        "harvested": list(HarvestedObject.objects.filter(alert=merged).values_list("pk", flat=True)),
    }
    fields = {name: getattr(merged, name) for name in MERGED_FIELDS}
    fields["published"] = fields["published"].isoformat() if fields["published"] else None
    FollowupPoint.objects.filter(pk__in=moved["points"]).update(alert=keep)
    Alias.objects.filter(pk__in=moved["aliases"]).update(alert=keep)
    GaiaPoint.objects.filter(pk__in=moved["gaia_points"]).update(alert=keep)
    HarvestedObject.objects.filter(pk__in=moved["harvested"]).update(alert=keep)
    record = AlertMerge.objects.create(
        target=keep,
        merged_id=merged.pk,
        merged_ivorn=merged.ivorn,
        merged_fields=fields,
        moved=moved,
        ivorn_alias=merged.ivorn,
        merged_by=user if user is not None and user.is_authenticated else None,
    )
    merged.delete()
    # After the delete: the alias's key may equal the merged alert's own ivorn_key.
    Alias.objects.create(alert=keep, name=merged.ivorn, source=Alias.Source.MERGE)
    refresh_followup_stats(keep.pk)
    return record


@transaction.atomic
def undo_merge(record: AlertMerge, user=None) -> Alert:
    """Bring the merged alert back with its id, and move back what moved (still on the kept alert)."""
    from calibration.models import FollowupPoint

    record = AlertMerge.objects.select_for_update().get(pk=record.pk)
    if record.undone is not None:
        raise BadInput(f"The merge of {record.merged_ivorn} was undone already.")
    if Alert.objects.filter(pk=record.merged_id).exists():
        raise Duplicate(f"Id {record.merged_id} is in use again; cannot restore {record.merged_ivorn}.")
    Alias.objects.filter(alert=record.target, name=record.ivorn_alias, source=Alias.Source.MERGE).delete()
    refuse_taken_name(record.merged_ivorn)
    fields = dict(record.merged_fields)
    published = fields.pop("published")
    restored = Alert.objects.create(
        pk=record.merged_id,
        published=datetime.fromisoformat(published) if published else None,
        **fields,
    )
    moved = record.moved
    target = record.target_id
    FollowupPoint.objects.filter(pk__in=moved["points"], alert=target).update(alert=restored)
    Alias.objects.filter(pk__in=moved["aliases"], alert=target).update(alert=restored)
    GaiaPoint.objects.filter(pk__in=moved["gaia_points"], alert=target).update(alert=restored)
    HarvestedObject.objects.filter(pk__in=moved["harvested"], alert=target).update(alert=restored)
    refresh_followup_stats(target, restored.pk)
    record.undone = datetime.now(UTC)
    record.undone_by = user if user is not None and user.is_authenticated else None
    record.save(update_fields=["undone", "undone_by"])
    return restored


def link_harvested(alert: Alert, record: HarvestedObject) -> None:
    """The harvested record belongs to this alert; its name and survey names become aliases."""
    HarvestedObject.objects.filter(pk=record.pk).update(alert=alert)
    names = [(record.name, Alias.Source(record.source))]
    names += [(name, Alias.Source.SURVEY) for name in record.data.get("internal_names", [])]
    for name, source in names:
        try:
            add_alias(alert, name, source)
        except Duplicate:
            continue  # another alert has that name: the curator merges them if they are one


def refine_position(alert: Alert, ra, dec) -> Alert:
    """Move an alert to a better position (a later GCN packet with a smaller error circle)."""
    alert.ra, alert.dec = clean_coordinates(ra, dec)
    alert.save(update_fields=["ra", "dec", "updated"])
    return alert


def refresh_followup_stats(*alert_ids: int) -> None:
    """Store each alert's count of visible points and its latest visible point (mjd, mag, band, limit).

    Recomputed from the points rather than counted up or down, so a call can never drift; the
    alert rows are locked first, so two uploads to one alert committing together both count
    (the second waits and then reads the first's point). Called inside the writer's transaction
    by every write of follow-up points: upload, hide/restore, recalibration, merges, legacy import.
    """
    from calibration.models import FollowupPoint

    ids = sorted({int(pk) for pk in alert_ids if pk is not None})
    if not ids:
        return
    with transaction.atomic():
        # In id order, so that two writers locking two alerts (a merge) cannot deadlock.
        locked = list(
            Alert.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True)
        )
        visible = FollowupPoint.objects.visible().filter(alert_id__in=locked)
        counts = dict(
            visible.order_by().values("alert_id").annotate(n=Count("pk")).values_list("alert_id", "n")
        )
        for pk in locked:
            # The (alert, hidden, mjd) index answers this without reading the alert's other points.
            newest = (
                visible.filter(alert_id=pk)
                .order_by("-mjd", "-pk")
                .values_list("mjd", "mag", "filter", "is_limit")
            )
            mjd, mag, band, limit = newest.first() or (None, None, "", None)
            Alert.objects.filter(pk=pk).update(
                nfollowup=counts.get(pk, 0),
                latest_mjd=mjd,
                latest_mag=mag,
                latest_filter=band,
                latest_is_limit=limit,
            )
