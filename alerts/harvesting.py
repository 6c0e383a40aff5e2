"""Harvesting alert sources into the database: the one write path of `harvest_alerts` and `listen_gcn`.

Every harvester keeps the last record of each object (HarvestedObject), links it to the alert
that is the same object (by any of its names, else within 1.5"), gives that alert the object's
names as aliases, and creates alerts through alerts.services.create_alert for the objects the
curator selected. A row written once is compared by its digest next time, so harvesting the
same file again writes nothing. Periodic harvests (TNS deltas every hour, the Gaia index every
day) are these same functions called by the task engine when it lands: see harvest_alerts.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from django.conf import settings
from django.db import transaction

from gsafollowup.errors import DomainError, Duplicate, NearbyAlert

from .ivorns import ivorn_key
from .models import Alert, Alias, GaiaPoint, HarvestedObject, alert_name
from .selectors import NEIGHBOUR_ARCSEC, alert_by_name
from .services import NewAlert, add_alias, create_alert, create_alerts_in_bulk, refine_position
from .sources import gaia, gcn, tns
from .sources.rows import RowError, RowRefused

CHUNK = 2000


@dataclass
class HarvestReport:
    """What one harvest did, and every row it refused with its line."""

    source: str
    read: int = 0
    records_created: int = 0
    records_updated: int = 0
    unchanged: int = 0
    alerts_created: int = 0
    alerts_linked: int = 0
    alerts_refined: int = 0
    aliases_added: int = 0
    points_added: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def error(self, where: str, row: RowError) -> None:
        self.errors.append(f"{where}: {row}")

    @property
    def changed(self) -> int:
        return (
            self.records_created
            + self.records_updated
            + self.alerts_created
            + self.alerts_linked
            + self.alerts_refined
            + self.aliases_added
            + self.points_added
        )

    def summary(self) -> str:
        return (
            f"{self.source}: {self.read} read, {self.records_created} new, {self.records_updated} updated, "
            f"{self.unchanged} unchanged; {self.alerts_created} alerts created, {self.alerts_linked} linked, "
            f"{self.alerts_refined} refined, {self.aliases_added} aliases, {self.points_added} Gaia points; "
            f"{len(self.errors)} rows refused"
        )


def _chunks(items: list, size: int = CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def store_records(source: str, rows: list, report: HarvestReport) -> dict[str, HarvestedObject]:
    """Insert new records and update changed ones (by digest); the stored record of every row by name."""
    stored: dict[str, HarvestedObject] = {}
    names = [row.name for row in rows]
    for chunk in _chunks(names, 5000):
        stored.update(
            (record.name, record)
            for record in HarvestedObject.objects.filter(source=source, name__in=chunk).only(
                "pk", "name", "digest", "alert_id", "ra", "dec", "data"
            )
        )
    new, changed = [], []
    for row in rows:
        values = {
            "ra": row.ra,
            "dec": row.dec,
            "discovered": getattr(row, "discovered", None) or getattr(row, "time", None),
            "mag": getattr(row, "mag", None),
            "kind": (
                getattr(row, "type", None) or getattr(row, "kind", None) or getattr(row, "packet_type", "")
            )[:64],
            "data": {**row.fields, "internal_names": list(getattr(row, "internal_names", ()))},
            "digest": row.digest,
        }
        record = stored.get(row.name)
        if record is None:
            record = HarvestedObject(source=source, name=row.name, **values)
            new.append(record)
            stored[row.name] = record
        elif record.digest != row.digest:
            for key, value in values.items():
                setattr(record, key, value)
            changed.append(record)
        else:
            report.unchanged += 1
    now = datetime.now(UTC)
    for record in changed:
        record.harvested = now  # bulk_update skips auto_now
    HarvestedObject.objects.bulk_create(new, batch_size=CHUNK)
    HarvestedObject.objects.bulk_update(
        changed, ["ra", "dec", "discovered", "mag", "kind", "data", "digest", "harvested"], batch_size=CHUNK
    )
    report.records_created += len(new)
    report.records_updated += len(changed)
    return stored


def name_index() -> dict[str, tuple[int, bool]]:
    """Every name an alert answers to, by twin key -> (alert id, whether it is an IVORN or alias).

    The bare name of an IVORN (ASASSN-14fv of ivo://asassn/ASASSN-14fv) matches too, but is not
    exact: an upload naming it finds the alert only once it is an alias, so _adopt adds it.
    """
    index = {}
    for pk, ivorn in Alert.objects.values_list("pk", "ivorn").iterator(chunk_size=10_000):
        bare = alert_name(ivorn)
        # ivo://Gaia16aye is found as Gaia16aye already (alert_by_name tries ivo://).
        index.setdefault(ivorn_key(bare), (pk, ivorn == f"ivo://{bare}"))
        index[ivorn_key(ivorn)] = (pk, True)
    for key, pk in Alias.objects.values_list("key", "alert_id").iterator(chunk_size=10_000):
        index[key] = (pk, True)
    return index


def _named(index, names) -> int | None:
    """The alert that one of these names belongs to, or None."""
    return next((index[ivorn_key(n)][0] for n, _ in names if ivorn_key(n) in index), None)


def position_matches(rows: list) -> dict[str, int]:
    """Name of each row -> id of the nearest existing alert within 1.5" (astropy's sky matching)."""
    alerts = list(Alert.objects.values_list("pk", "ra", "dec"))
    if not alerts or not rows:
        return {}
    pks = np.array([a[0] for a in alerts])
    catalog = SkyCoord([a[1] for a in alerts] * u.deg, [a[2] for a in alerts] * u.deg)
    found = SkyCoord([r.ra for r in rows] * u.deg, [r.dec for r in rows] * u.deg)
    nearest, separation, _ = found.match_to_catalog_sky(catalog)
    close = separation.arcsec <= NEIGHBOUR_ARCSEC
    return {rows[k].name: int(pks[nearest[k]]) for k in np.flatnonzero(close)}


def _adopt(alert_id: int, record: HarvestedObject, names: Iterable[tuple[str, str]], index, report) -> None:
    """Link the record to the alert and give the alert the names it lacks (nothing when all is there)."""
    if record.alert_id != alert_id:
        HarvestedObject.objects.filter(pk=record.pk).update(alert_id=alert_id)
        record.alert_id = alert_id
        report.alerts_linked += 1
    alert = None
    for name, source in names:
        key = ivorn_key(name)
        owner, exact = index.get(key, (None, False))
        if owner == alert_id and exact:
            continue
        if owner is not None and owner != alert_id:
            report.notes.append(f"{name} is a name of alert {owner} and of {record.name}: merge them?")
            continue
        alert = alert or Alert.objects.get(pk=alert_id)
        try:
            if add_alias(alert, name, source) is not None:
                report.aliases_added += 1
        except DomainError as error:
            report.notes.append(f"{record.name}: alias {name[:40]} refused: {error.message}")
        index[key] = (alert_id, True)


def _create(row, record, *, ivorn, url, comment, published, index, report, where, names) -> None:
    """A new alert for a selected row; a neighbour within 1.5" adopts the row instead."""
    try:
        with transaction.atomic():
            alert = create_alert(
                ivorn=ivorn, ra=row.ra, dec=row.dec, url=url, comment=comment, published=published
            )
    except NearbyAlert as near:
        _adopt(near.existing_id, record, names, index, report)
        return
    except Duplicate as taken:
        if taken.existing_id is not None:
            _adopt(taken.existing_id, record, names, index, report)
        return
    except DomainError as error:
        report.error(where, RowError(row.line, error.message))
        return
    report.alerts_created += 1
    index[ivorn_key(alert.ivorn)] = (alert.pk, True)
    _adopt(alert.pk, record, names, index, report)


def _create_many(rows, stored, candidates: list[NewAlert], *, index, report, where) -> None:
    """New alerts for many selected rows at once (a first harvest), checked as _create checks one.

    ``candidates[k]`` is the alert of ``rows[k]``; rows whose name or 1.5" neighbour is an alert
    (existing, or created earlier in this list) adopt the row instead, as _create does.
    """
    outcome = create_alerts_in_bulk(candidates)
    report.notes.extend(outcome.notes)
    report.aliases_added += outcome.aliases_added
    linked = []
    for k, alert in sorted(outcome.created.items()):
        record = stored[rows[k].name]
        record.alert_id = alert.pk
        linked.append(record)
        index[ivorn_key(alert.ivorn)] = (alert.pk, True)
        for name, _ in candidates[k].aliases:
            index[ivorn_key(name)] = (alert.pk, True)
    HarvestedObject.objects.bulk_update(linked, ["alert"], batch_size=CHUNK)
    report.alerts_created += len(linked)
    report.alerts_linked += len(linked)
    for k, message in sorted(outcome.refused.items()):
        report.error(where, RowError(rows[k].line, message))
    for k, owner in sorted(outcome.belongs.items()):
        _adopt(owner, stored[rows[k].name], list(candidates[k].aliases), index, report)


def tns_selection_from_settings(**overrides) -> tns.TnsSelection:
    """The curator's TNS selection: settings TNS_SELECT_*, each replaced by a command option given."""
    chosen = {**settings.TNS_SELECTION, **{k: v for k, v in overrides.items() if v not in (None, "", ())}}
    return tns.TnsSelection(
        types=frozenset(chosen.get("types") or ()),
        max_mag=chosen.get("max_mag"),
        dec_min=chosen.get("dec_min"),
        dec_max=chosen.get("dec_max"),
        max_age_days=chosen.get("max_age_days"),
        names=frozenset(chosen.get("names") or ()),
    )


def harvest_tns(paths: Iterable, selection: tns.TnsSelection, now: datetime | None = None) -> HarvestReport:
    """Harvest TNS public-object CSVs (the dump or deltas): records, names, and alerts for the selection."""
    report = HarvestReport("tns")
    now = now or datetime.now(UTC)
    for path in paths:
        try:
            _, objects, errors = tns.read_tns(path)
        except (OSError, UnicodeDecodeError) as error:
            report.error(str(path), RowError(0, f"cannot read the file: {error}"))
            continue
        for row_error in errors:
            report.error(str(path), row_error)
        report.read += len(objects)
        with transaction.atomic():
            _store_tns(path, objects, selection, now, report)
    if selection.has_criteria() is False and not selection.names:
        report.notes.append("No TNS selection set: no TNS object became an alert (records are kept).")
    return report


def _store_tns(path, objects, selection, now, report) -> None:
    stored = store_records(HarvestedObject.Source.TNS, objects, report)
    index = name_index()
    unmatched = []
    for obj in objects:
        names = [(obj.name, Alias.Source.TNS)] + [(n, Alias.Source.SURVEY) for n in obj.internal_names]
        match = _named(index, names)
        if match is not None:
            _adopt(match, stored[obj.name], names, index, report)
        else:
            unmatched.append(obj)
    near = position_matches(unmatched)
    for obj in unmatched:
        names = [(obj.name, Alias.Source.TNS)] + [(n, Alias.Source.SURVEY) for n in obj.internal_names]
        record = stored[obj.name]
        if obj.name in near:
            _adopt(near[obj.name], record, names, index, report)
        elif selection.selects(obj, now):
            _create(
                obj,
                record,
                ivorn=f"ivo://tns/{obj.name}",
                url=tns.URL.format(name=obj.name),
                comment=f"TNS {obj.prefix} {obj.name}{f' ({obj.type})' if obj.type else ''}".replace(
                    "  ", " "
                ),
                published=obj.discovered,
                index=index,
                report=report,
                where=str(path),
                names=names,
            )


def harvest_gaia_index(paths: Iterable, create_alerts: bool | None = None) -> HarvestReport:
    """Harvest the Gaia Science Alerts index: records, and an alert ivo://GaiaYYxxx for each alert."""
    report = HarvestReport("gaia")
    if create_alerts is None:
        create_alerts = settings.GAIA_CREATE_ALERTS
    for path in paths:
        try:
            rows, errors = gaia.read_index(path)
        except (OSError, UnicodeDecodeError) as error:
            report.error(str(path), RowError(0, f"cannot read the file: {error}"))
            continue
        for row_error in errors:
            report.error(str(path), row_error)
        report.read += len(rows)
        with transaction.atomic():
            stored = store_records(HarvestedObject.Source.GAIA, rows, report)
            index = name_index()
            pending = []
            for row in rows:
                names = [(row.name, Alias.Source.GAIA)]
                match = _named(index, names)
                if match is not None:
                    _adopt(match, stored[row.name], names, index, report)
                else:
                    pending.append(row)
            near = position_matches(pending)
            new_rows = []
            for row in pending:
                names = [(row.name, Alias.Source.GAIA)]
                if row.name in near:
                    _adopt(near[row.name], stored[row.name], names, index, report)
                elif create_alerts:
                    new_rows.append(row)
            # The first harvest of the index makes ~26,000 alerts: in bulk, checked as create_alert checks.
            candidates = [
                NewAlert(
                    ivorn=f"ivo://{row.name}",  # the old server's form: ivo://Gaia17asv
                    ra=row.ra,
                    dec=row.dec,
                    url=gaia.URL.format(name=row.name),
                    comment=row.comment,
                    published=row.published or row.discovered,
                    aliases=((row.name, Alias.Source.GAIA),),
                )
                for row in new_rows
            ]
            _create_many(new_rows, stored, candidates, index=index, report=report, where=str(path))
    return report


def harvest_gaia_lightcurve(paths: Iterable) -> HarvestReport:
    """Store the Gaia G light curve of each file on its alert (new transits added, changed ones updated)."""
    report = HarvestReport("gaia lightcurve")
    for path in paths:
        try:
            curve, errors = gaia.read_lightcurve(path)
        except (OSError, UnicodeDecodeError) as error:
            report.error(str(path), RowError(0, f"cannot read the file: {error}"))
            continue
        for row_error in errors:
            report.error(str(path), row_error)
        if curve is None:
            continue
        alert = alert_by_name(curve.name)
        if alert is None:
            report.error(str(path), RowError(1, f"no alert named {curve.name}: harvest the Gaia index first"))
            continue
        report.read += len(curve.jd_tcb)
        if curve.skipped:
            report.notes.append(f"{path}: {curve.skipped} null/untrusted transits skipped")
        with transaction.atomic():
            _store_gaia_points(alert, curve, report)
    return report


def _store_gaia_points(alert: Alert, curve: gaia.GaiaLightCurve, report: HarvestReport) -> None:
    existing = {p.jd_tcb: p for p in GaiaPoint.objects.filter(alert=alert)}
    new, changed = [], []
    for jd, mjd, mag, err in zip(curve.jd_tcb, curve.mjd, curve.mag, curve.mag_err, strict=True):
        point = existing.get(float(jd))
        if point is None:
            new.append(
                GaiaPoint(alert=alert, jd_tcb=float(jd), mjd=float(mjd), mag=float(mag), mag_err=float(err))
            )
        elif point.mag != float(mag):
            point.mag, point.mag_err, point.mjd = float(mag), float(err), float(mjd)
            changed.append(point)
        else:
            report.unchanged += 1
    GaiaPoint.objects.bulk_create(new, batch_size=CHUNK)
    GaiaPoint.objects.bulk_update(changed, ["mag", "mag_err", "mjd"], batch_size=CHUNK)
    report.points_added += len(new)
    report.records_updated += len(changed)


def harvest_gcn_packet(data: bytes, where: str, report: HarvestReport) -> None:
    """One VOEvent notice: its record, and an alert made or refined when its error circle is small enough."""
    try:
        notice = gcn.read_notice(data)
    except RowRefused as error:
        report.error(where, RowError(1, str(error)))
        return
    report.read += 1
    if notice.role != "observation":
        report.notes.append(
            f"{where}: {notice.ivorn} is a {notice.role or 'role-less'} packet, not harvested"
        )
        return
    with transaction.atomic():
        seen = report.unchanged
        stored = store_records(HarvestedObject.Source.GCN, [_NoticeRow(notice)], report)[notice.ivorn]
        if report.unchanged > seen:
            return  # this very packet was harvested before: nothing to do
        limit = settings.GCN_MAX_ERROR_ARCMIN
        if notice.error_deg * 60 > limit:
            report.notes.append(
                f"{where}: error radius {notice.error_deg * 60:.1f}' is over {limit:g}': recorded, no alert"
            )
            return
        names = [(notice.trigger_name, Alias.Source.GCN)]
        index = {}
        alert = alert_by_name(notice.trigger_name)
        if alert is None:
            _create(
                _NoticeRow(notice),
                stored,
                ivorn=notice.ivorn,
                url="",
                comment=f"{notice.trigger_name}, packet type {notice.packet_type}",
                published=notice.time,
                index=index,
                report=report,
                where=where,
                names=names,
            )
            return
        best = min(
            (
                r.data.get("error_deg", 180.0)
                for r in alert.harvested.filter(source=HarvestedObject.Source.GCN)
            ),
            default=180.0,
        )
        _adopt(alert.pk, stored, names, {ivorn_key(notice.trigger_name): (alert.pk, True)}, report)
        if notice.error_deg < best:
            refine_position(alert, notice.ra, notice.dec)
            report.alerts_refined += 1


@dataclass(frozen=True)
class _NoticeRow:
    """A notice in the shape store_records reads (name = its IVORN, one line)."""

    notice: gcn.Notice
    line: int = 1

    def __getattr__(self, name):
        return getattr(self.notice, name)

    @property
    def name(self) -> str:
        return self.notice.ivorn

    @property
    def kind(self) -> str:
        return f"packet {self.notice.packet_type}" if self.notice.packet_type else ""


def harvest_gcn(paths: Iterable) -> HarvestReport:
    """Harvest saved VOEvent packets, one file each, in the order given (later packets refine)."""
    report = HarvestReport("gcn")
    for path in paths:
        try:
            with open(path, "rb") as handle:
                data = handle.read(gcn.MAX_PACKET + 1)
        except OSError as error:
            report.error(str(path), RowError(0, f"cannot read the file: {error}"))
            continue
        harvest_gcn_packet(data, str(path), report)
    return report
