"""Creating and importing alerts: the one write path for the form, the legacy endpoint and commands."""

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from django.core.exceptions import ValidationError
from django.core.management.color import no_style
from django.core.validators import URLValidator
from django.db import IntegrityError, connection, transaction
from django.db.models import Count
from scipy.spatial import cKDTree

from gsafollowup.errors import BadInput, Duplicate, Forbidden, NearbyAlert

from .ivorns import clean_ivorn, ivorn_key
from .models import Alert, AlertMerge, Alias, GaiaPoint, HarvestedObject
from .selectors import (
    NEIGHBOUR_ARCSEC,
    alert_named_by,
    angular_distance_deg,
    clash_keys,
    harvested_position,
    neighbour_of,
)

__all__ = [
    "add_alias",
    "clean_ivorn",
    "create_alert",
    "create_alerts_in_bulk",
    "import_legacy_alerts",
    "merge_alerts",
    "undo_merge",
]

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


@dataclass(frozen=True)
class NewAlert:
    """One alert to create in bulk: create_alert's arguments, with the names to give it as aliases."""

    ivorn: str
    ra: float
    dec: float
    url: str = ""
    comment: str = ""
    published: datetime | None = None
    aliases: tuple[tuple[str, str], ...] = ()


@dataclass
class BulkOutcome:
    """What create_alerts_in_bulk did with each candidate, by its position in the list given.

    ``created`` maps to the new alert; ``belongs`` to the id of the alert a candidate is a
    duplicate or a 1.5" neighbour of (what create_alert raises as Duplicate/NearbyAlert);
    ``refused`` to the message of the BadInput create_alert would raise.
    """

    created: dict[int, Alert] = field(default_factory=dict)
    belongs: dict[int, int] = field(default_factory=dict)
    refused: dict[int, str] = field(default_factory=dict)
    aliases_added: int = 0
    notes: list[str] = field(default_factory=list)


#: Alerts inserted per transaction by create_alerts_in_bulk.
BULK_CHUNK = 2000


def known_names() -> dict[str, int]:
    """Every twin key an alert holds (its IVORN's and its aliases'), to the alert's id."""
    keys = dict(Alert.objects.values_list("ivorn_key", "pk").iterator(chunk_size=10_000))
    keys.update(Alias.objects.values_list("key", "alert_id").iterator(chunk_size=10_000))
    return keys


def _sky_vectors(ra, dec) -> np.ndarray:
    ra, dec = np.radians(np.asarray(ra, dtype=float)), np.radians(np.asarray(dec, dtype=float))
    return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])


def close_pairs(ra, dec, other_ra, other_dec, arcsec: float) -> list[list[int]]:
    """For each (ra, dec), the indices of the ``other`` positions that may lie within ``arcsec``.

    A k-d tree on unit vectors (no RA wrap or pole to handle), searched a little wider than the
    radius; callers decide with angular_distance_deg, the distance create_alert uses.
    """
    if not len(ra) or not len(other_ra):
        return [[] for _ in range(len(ra))]
    chord = 2 * math.sin(math.radians(arcsec / 3600) / 2) * (1 + 1e-6) + 1e-12
    tree = cKDTree(_sky_vectors(other_ra, other_dec))
    return tree.query_ball_point(_sky_vectors(ra, dec), r=chord)


def create_alerts_in_bulk(candidates: list[NewAlert]) -> BulkOutcome:
    """Create many alerts at once (a first harvest), each checked exactly as create_alert checks it.

    In order, as if create_alert were called for each candidate: BadInput for a bad IVORN,
    position, URL or publication time; a name held by an existing or earlier candidate alert
    (IVORN, twin or alias) makes it belong to that alert; so does an alert, existing or created
    earlier in the list, within 1.5" (the nearest). The checks run in memory (names by twin key,
    neighbours by a k-d tree), then the alerts and their aliases are inserted BULK_CHUNK at a
    time, each chunk in its own transaction. A chunk that meets a concurrent writer's row (a
    unique constraint) is done again one alert at a time through create_alert.
    """
    outcome = BulkOutcome()
    keys = known_names()
    existing = list(Alert.objects.values_list("pk", "ra", "dec"))
    accepted: list[tuple[int, Alert, list[tuple[str, str]]]] = []
    checked = []
    for k, candidate in enumerate(candidates):
        try:
            ivorn = clean_ivorn(candidate.ivorn)
            ra, dec = clean_coordinates(candidate.ra, candidate.dec)
            checked.append(
                (k, ivorn, ra, dec, clean_url(candidate.url), clean_published(candidate.published))
            )
        except BadInput as error:
            outcome.refused[k] = error.message
    near_existing = close_pairs(
        [c[2] for c in checked],
        [c[3] for c in checked],
        [e[1] for e in existing],
        [e[2] for e in existing],
        NEIGHBOUR_ARCSEC,
    )
    near_batch = close_pairs(
        [c[2] for c in checked],
        [c[3] for c in checked],
        [c[2] for c in checked],
        [c[3] for c in checked],
        NEIGHBOUR_ARCSEC,
    )
    #: Candidate -> the key under which it is known until it has an id (an earlier accepted one).
    pending_owner: dict[str, int] = {}
    accepted_at: dict[int, int] = {}  # position in ``checked`` -> candidate number, for accepted ones
    radius = NEIGHBOUR_ARCSEC / 3600
    for i, (k, ivorn, ra, dec, url, published) in enumerate(checked):
        clash = next((key for key in clash_keys(ivorn) if key in keys or key in pending_owner), None)
        if clash is not None:
            owner = keys.get(clash)
            outcome.belongs[k] = owner if owner is not None else -1 - pending_owner[clash]
            continue
        found = [
            (angular_distance_deg(ra, dec, existing[j][1], existing[j][2]), existing[j][0])
            for j in near_existing[i]
        ] + [
            (angular_distance_deg(ra, dec, checked[j][2], checked[j][3]), -1 - accepted_at[j])
            for j in near_batch[i]
            if j < i and j in accepted_at
        ]
        found = sorted(f for f in found if f[0] <= radius)
        if found:
            outcome.belongs[k] = found[0][1]
            continue
        alert = Alert(
            ivorn=ivorn,
            ivorn_key=ivorn_key(ivorn),
            ra=ra,
            dec=dec,
            url=url,
            comment=(candidates[k].comment or "").strip(),
            published=published,
        )
        pending_owner[alert.ivorn_key] = k
        accepted_at[i] = k
        names = []
        for name, source in candidates[k].aliases:
            try:
                name = clean_alias_name(name)
            except BadInput as error:
                outcome.notes.append(f"{ivorn}: alias {name[:40]} refused: {error.message}")
                continue
            # check_alias: refused when the name belongs to an existing alert or another candidate.
            taken = [key for key in clash_keys(name) if key in keys or pending_owner.get(key, k) != k]
            if taken:
                outcome.notes.append(f"{ivorn}: alias {name[:40]} refused: it is a name of another alert")
                continue
            # add_alias: nothing to do when it is one of the alert's names already.
            if name == ivorn or any(ivorn_key(name) == ivorn_key(n) for n, _ in names):
                continue
            names.append((name, source))
            pending_owner.setdefault(ivorn_key(name), k)
        accepted.append((k, alert, names))
    for start in range(0, len(accepted), BULK_CHUNK):
        _insert_chunk(accepted[start : start + BULK_CHUNK], candidates, outcome)
    # Candidates that belong to one created in this call get its id now that it has one.
    for k, owner in list(outcome.belongs.items()):
        if owner < 0:
            alert = outcome.created.get(-1 - owner)
            if alert is None:
                del outcome.belongs[k]
                outcome.refused[k] = "its neighbour or namesake in the same file could not be created"
            else:
                outcome.belongs[k] = alert.pk
    return outcome


def _insert_chunk(chunk, candidates: list[NewAlert], outcome: BulkOutcome) -> None:
    try:
        with transaction.atomic():
            Alert.objects.bulk_create([alert for _, alert, _ in chunk])
            aliases = [
                Alias(alert=alert, name=name, key=ivorn_key(name), source=source)
                for _, alert, names in chunk
                for name, source in names
            ]
            Alias.objects.bulk_create(aliases)
    except IntegrityError:
        # Someone created one of these names or IVORNs meanwhile: the careful path, one by one.
        for k, _, names in chunk:
            candidate = candidates[k]
            try:
                with transaction.atomic():
                    alert = create_alert(
                        ivorn=candidate.ivorn,
                        ra=candidate.ra,
                        dec=candidate.dec,
                        url=candidate.url,
                        comment=candidate.comment,
                        published=candidate.published,
                    )
            except (Duplicate, NearbyAlert) as error:
                if error.existing_id is not None:
                    outcome.belongs[k] = error.existing_id
                else:
                    outcome.refused[k] = error.message
                continue
            except BadInput as error:
                outcome.refused[k] = error.message
                continue
            outcome.created[k] = alert
            for name, source in names:
                try:
                    outcome.aliases_added += add_alias(alert, name, source) is not None
                except Duplicate as error:
                    outcome.notes.append(f"{alert.ivorn}: alias {name[:40]} refused: {error.message}")
        return
    for k, alert, names in chunk:
        outcome.created[k] = alert
        outcome.aliases_added += len(names)
