"""Harvesting TNS, Gaia Science Alerts and GCN notices: real layouts, idempotence, bad rows per line.

TNS and Gaia files cannot be downloaded here, so the tests write small files in their exact
published layouts (the TNS dump's timestamp line and quoted header, Gaia's '#Name,...' index and
its per-alert light curve with its name line and null/untrusted values). The VOEvent packets
are real (tests/data/voevent/, from voevent-parse, BSD-2); the refined and broken ones are
made from them here.
"""

from datetime import UTC, datetime
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from alerts.harvesting import harvest_gaia_index, harvest_gaia_lightcurve, harvest_gcn, harvest_tns
from alerts.models import Alert, Alias, GaiaPoint, HarvestedObject
from alerts.services import create_alert
from alerts.sources.gaia import g_error, tcb_jd_to_utc_mjd
from alerts.sources.tns import TnsSelection
from tests.conftest import DATA

VOEVENT = DATA / "voevent"
BAT = VOEVENT / "SWIFT_bat_position_v2.0_example.xml"
XRT = VOEVENT / "SWIFT_xrt_position_v1.1_example.xml"

TNS_HEADER = (
    '"objid","name_prefix","name","ra","declination","redshift","typeid","type","reporting_groupid",'
    '"reporting_group","source_groupid","source_group","discoverydate","discoverymag","discmagfilter",'
    '"filter","reporters","time_received","internal_names","creationdate","lastmodified"'
)


def tns_row(objid, prefix, name, ra, dec, kind, date, mag, internal):
    return (
        f'"{objid}","{prefix}","{name}","{ra}","{dec}","","","{kind}","1","ZTF","1","ZTF","{date}","{mag}",'
        f'"110","r-ZTF","A. Observer","{date}","{internal}","{date}","{date}"'
    )


TNS_ROWS = [
    tns_row(
        1,
        "SN",
        "2024abc",
        "150.1",
        "2.2",
        "SN Ia",
        "2024-05-20 03:04:05.600",
        "18.1",
        "ZTF24aaaaaaa, ATLAS24bcd",
    ),
    tns_row(2, "AT", "2024abd", "200.5", "-30.0", "", "2024-05-25 00:00:00", "19.5", "Gaia24xyz"),
    tns_row(3, "SN", "2024abe", "10.0", "60.0", "SN II", "2024-01-01 00:00:00", "20.5", ""),
    tns_row(4, "AT", "2016blz", "296.0", "30.0", "", "2016-03-30 00:00:00", "17.0", "Gaia16aye"),
]


def tns_file(tmp_path, rows=TNS_ROWS, header=TNS_HEADER, name="tns_public_objects.csv"):
    path = tmp_path / name
    path.write_text('"2024-06-01 00:00:00"\n' + header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


NOW = datetime(2024, 6, 1, tzinfo=UTC)
SN_BRIGHT = TnsSelection(types=frozenset({"SN Ia", "SN II"}), max_mag=19.0)


def test_tns_selection_aliases_and_idempotence(tmp_path, alert):
    path = tns_file(tmp_path)
    report = harvest_tns([path], SN_BRIGHT, now=NOW)
    assert report.errors == [] and report.read == 4
    assert HarvestedObject.objects.filter(source="tns").count() == 4
    # Only the bright SN Ia is selected; 2016blz is Gaia16aye already, so it is linked, not created.
    created = Alert.objects.get(ivorn="ivo://tns/2024abc")
    assert set(created.aliases.values_list("name", "source")) == {
        ("2024abc", "tns"),
        ("ZTF24aaaaaaa", "survey"),
        ("ATLAS24bcd", "survey"),
    }
    assert created.url == "https://www.wis-tns.org/object/2024abc" and created.published.year == 2024
    assert set(alert.aliases.values_list("name", flat=True)) == {"2016blz"}
    assert HarvestedObject.objects.get(name="2016blz").alert == alert
    assert Alert.objects.count() == 2
    again = harvest_tns([path], SN_BRIGHT, now=NOW)
    assert again.changed == 0 and again.unchanged == 4 and Alert.objects.count() == 2


def test_tns_without_selection_creates_no_alert_and_names_pick_objects(tmp_path, db):
    path = tns_file(tmp_path)
    report = harvest_tns([path], TnsSelection(), now=NOW)
    assert report.alerts_created == 0 and "No TNS selection" in report.notes[-1]
    harvest_tns([path], TnsSelection(names=frozenset({"2024abe"})), now=NOW)
    assert list(Alert.objects.values_list("ivorn", flat=True)) == ["ivo://tns/2024abe"]
    by_age = harvest_tns([path], TnsSelection(max_age_days=10, dec_max=0), now=NOW)
    assert by_age.alerts_created == 1 and Alert.objects.filter(ivorn="ivo://tns/2024abd").exists()


def test_tns_bad_rows_are_reported_by_line_and_loaded_nowhere(tmp_path, db):
    rows = [
        TNS_ROWS[0],
        tns_row(5, "SN", "2024abf", "400", "2.2", "SN Ia", "2024-05-20", "18", ""),  # line 4: RA
        tns_row(6, "SN", "<script>", "1", "2", "SN Ia", "2024-05-20", "18", ""),  # line 5: hostile name
        tns_row(7, "SN", "2024abg", "1", "2", "SN Ia", "2024-05-20", "18", "ZTF\u202e24"),  # line 6: bidi
        tns_row(8, "SN", "2024abh", "1", "2", "SN Ia", "yesterday", "18", ""),  # line 7: date
        '"9","SN","2024abi","1.0","2.0"',  # line 8: truncated row
    ]
    report = harvest_tns([tns_file(tmp_path, rows)], SN_BRIGHT, now=NOW)
    lines = [error.split(": line ", 1)[1].split(":")[0] for error in report.errors]
    assert lines == ["4", "5", "6", "7", "8"], report.errors
    assert "ra 400 is out of range" in report.errors[0] and "not a TNS name" in report.errors[1]
    assert "U+202E" in report.errors[2] and "truncated" in report.errors[4]
    assert list(HarvestedObject.objects.values_list("name", flat=True)) == ["2024abc"]


def test_tns_renamed_column_or_cut_file_loads_nothing(tmp_path, db):
    renamed = tns_file(tmp_path, header=TNS_HEADER.replace('"declination"', '"dec"'), name="renamed.csv")
    report = harvest_tns([renamed], SN_BRIGHT, now=NOW)
    assert report.read == 0 and "missing column(s) declination" in report.errors[0]
    cut = tmp_path / "cut.csv"
    cut.write_text(tns_file(tmp_path).read_text()[:-60])  # in the middle of the last row's quotes
    report = harvest_tns([cut], SN_BRIGHT, now=NOW)
    assert report.read == 3 and "line 6" in report.errors[0]
    assert not HarvestedObject.objects.filter(name="2016blz").exists()
    with pytest.raises(CommandError, match="Nothing could be read"):
        call_command("harvest_alerts", "tns", str(renamed), stdout=StringIO(), stderr=StringIO())


GAIA_INDEX = """#Name,Date,RaDeg,DecDeg,AlertMag,HistoricMag,HistoricStdDev,Class,Published,Comment,TNSid
Gaia16aye,2016-08-05 10:05:09,295.79574,30.07638,15.54,16.51,0.09,unknown,2016-08-09 09:20:09,"Star, ulens?",
Gaia24abc,2024-05-01 01:02:03,12.5,-45.25,18.9,,,SN,2024-05-02 00:00:00,candidate SN,
Gaia24abd,2024-05-03 01:02:03,,-45.25,18.9,,,SN,2024-05-04 00:00:00,no RA,
"""
GAIA_CURVE = """Gaia24abc
#Date,JD(TCB),averagemag.
2024-05-01 01:02:03,2460431.54309,18.90
2024-05-01 07:10:00,2460431.79861,null
2024-05-01 07:16:00,2460431.80278,untrusted
2024-05-28 11:00:00,2460458.95833,18.45
2024-05-28 11:06:00,2460458.96250,bright
"""


def test_gaia_index_by_header_name_with_empty_values(tmp_path, alert):
    index = tmp_path / "alerts.csv"
    index.write_text(GAIA_INDEX)
    report = harvest_gaia_index([index])
    assert report.read == 2 and len(report.errors) == 1 and "line 4: RaDeg is empty" in report.errors[0]
    # Gaia16aye is the existing alert (by its IVORN's name); Gaia24abc is new, in the old server's form.
    new = Alert.objects.get(ivorn="ivo://Gaia24abc")
    assert (new.ra, new.dec, new.comment) == (12.5, -45.25, "candidate SN")
    assert new.url == "https://gsaweb.ast.cam.ac.uk/alerts/alert/Gaia24abc/"
    assert HarvestedObject.objects.get(name="Gaia16aye").alert == alert
    assert Alert.objects.filter(ivorn="ivo://Gaia16aye").get().ra == 296.0  # a curator's position stays
    assert harvest_gaia_index([index]).changed == 0


def test_gaia_lightcurve_is_its_own_series_in_utc(tmp_path, db):
    index = tmp_path / "alerts.csv"
    index.write_text(GAIA_INDEX)
    harvest_gaia_index([index])
    curve = tmp_path / "lightcurve.csv"
    curve.write_text(GAIA_CURVE)
    report = harvest_gaia_lightcurve([curve])
    assert report.points_added == 2 and "line 7" in report.errors[0] and "2 null/untrusted" in report.notes[0]
    points = list(GaiaPoint.objects.order_by("mjd"))
    assert [p.mag for p in points] == [18.90, 18.45] and all(p.err_approximate for p in points)
    # TCB -> UTC independently: TCB - TT = L_B (JD - 2443144.5003725) days, TT - UTC = 32.184 + 37 s in 2024.
    jd = 2460431.54309
    expected = jd - 2400000.5 - (1.550519768e-8 * (jd - 2443144.5003725) * 86400 + 69.184) / 86400
    assert abs(points[0].mjd - expected) * 86400 < 0.01
    assert not Alert.objects.get(ivorn="ivo://Gaia24abc").followups.exists()  # never a follow-up point
    assert harvest_gaia_lightcurve([curve]).changed == 0


def test_gaia_error_approximation():
    assert np.allclose(
        g_error([12.0, 15.0, 18.0]), [10 ** (0.2 * 13.5 - 5.3), 10 ** (-2.3), 10 ** (0.2625 * 18 - 6.3625)]
    )
    assert abs(tcb_jd_to_utc_mjd([2457500.5])[0] - 57500.0) * 86400 == pytest.approx(87.4, abs=0.5)


def test_gcn_notice_creates_then_a_later_packet_refines(tmp_path, db, settings):
    report = harvest_gcn([BAT])
    alert = Alert.objects.get(ivorn="ivo://nasa.gsfc.gcn/SWIFT#BAT_GRB_Pos_532871-729")
    assert (alert.ra, alert.dec) == (74.7412, -9.3137) and alert.published == datetime(
        2012, 9, 7, 0, 24, 23, 80000, tzinfo=UTC
    )
    assert list(alert.aliases.values_list("name", flat=True)) == ["GCN SWIFT 532871"]
    assert report.alerts_created == 1
    # The XRT packet of the same trigger (the real XRT example, given this trigger): 3" error, refines.
    refined = tmp_path / "xrt-532871.xml"
    refined.write_bytes(
        XRT.read_bytes()
        .replace(b'value="644259"', b'value="532871"')
        .replace(b"XRT_Pos_644259-941", b"XRT_Pos_532871-942")
        .replace(b"314.7162", b"74.7398")
        .replace(b"-53.3930", b"-9.3100")
    )
    report = harvest_gcn([refined])
    alert.refresh_from_db()
    assert report.alerts_refined == 1 and (alert.ra, alert.dec) == (74.7398, -9.31)
    assert HarvestedObject.objects.filter(source="gcn", alert=alert).count() == 2
    # The wide BAT circle afterwards does not undo the refinement; the same packets change nothing.
    assert harvest_gcn([BAT, refined]).changed == 0
    alert.refresh_from_db()
    assert (alert.ra, alert.dec) == (74.7398, -9.31)


def test_gcn_bad_packets_are_refused_one_by_one(tmp_path, db, settings):
    settings.GCN_MAX_ERROR_ARCMIN = 1.0
    packet = BAT.read_bytes()
    start, end = packet.index(b"<WhereWhen>"), packet.index(b"</WhereWhen>") + len(b"</WhereWhen>")
    files = {
        "nopos.xml": packet[:start] + packet[end:],
        "notxml.xml": b"<VOEvent ivorn='ivo://x'",
        "entity.xml": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
        "test.xml": packet.replace(b'role="observation"', b'role="test"').replace(b"-729", b"-730"),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    report = harvest_gcn([tmp_path / name for name in files] + [BAT])
    assert len(report.errors) == 3
    assert (
        "no position" in report.errors[0]
        and "not XML" in report.errors[1]
        and "not a VOEvent" in report.errors[2]
    )
    assert "test packet" in report.notes[0] and "is over 1'" in report.notes[1]
    assert (
        not Alert.objects.exists() and HarvestedObject.objects.count() == 1
    )  # the wide BAT notice, recorded


def test_listen_gcn_feeds_saved_packets_through_the_harvester(db, monkeypatch):
    from alerts.management.commands import listen_gcn

    class Message:
        def __init__(self, value, error=None):
            self._value, self._error = value, error

        def value(self):
            return self._value

        def error(self):
            return self._error

        def topic(self):
            return "gcn.classic.voevent.SWIFT_BAT_GRB_POS_ACK"

    class Consumer:
        def __init__(self, **config):
            self.config = config
            self.batches = [[Message(BAT.read_bytes()), Message(b"garbage")]]

        def subscribe(self, topics):
            self.topics = topics

        def consume(self, timeout):
            return self.batches.pop() if self.batches else []

        def close(self):
            pass

    monkeypatch.setattr(listen_gcn, "Consumer", Consumer)
    monkeypatch.delenv("GCN_KAFKA_CLIENT_ID", raising=False)
    with pytest.raises(CommandError, match="GCN_KAFKA_CLIENT_ID"):
        call_command("listen_gcn", "--max-polls", "1")
    monkeypatch.setenv("GCN_KAFKA_CLIENT_ID", "id")
    monkeypatch.setenv("GCN_KAFKA_CLIENT_SECRET", "secret")
    out, err = StringIO(), StringIO()
    call_command("listen_gcn", "--max-polls", "2", stdout=out, stderr=err)
    assert Alert.objects.filter(ivorn__contains="532871").exists()
    assert "not XML" in err.getvalue()


def test_harvest_command_reports_and_is_idempotent(tmp_path, db):
    index = tmp_path / "alerts.csv"
    index.write_text(GAIA_INDEX)
    (tmp_path / "Gaia24abc").mkdir()
    curve = tmp_path / "Gaia24abc" / "lightcurve.csv"
    curve.write_text(GAIA_CURVE.split("\n", 1)[1])  # no name line: the folder names the alert
    out, err = StringIO(), StringIO()
    call_command("harvest_alerts", "gaia", str(index), str(curve), stdout=out, stderr=err)
    assert "2 alerts created" in out.getvalue() and "2 Gaia points" in out.getvalue()
    assert "refused" in err.getvalue() and "line 4" in err.getvalue()
    out = StringIO()
    call_command("harvest_alerts", "gaia", str(index), str(curve), stdout=out, stderr=StringIO())
    assert "0 new, 0 updated, 2 unchanged; 0 alerts created" in out.getvalue()


def test_new_event_by_name_takes_the_harvested_position(tmp_path, observatory, client):
    _, hashtag = observatory
    harvest_tns([tns_file(tmp_path)], TnsSelection(), now=NOW)
    response = client.post(
        "/cgi/newevent", {"EventID": "SN 2024abe", "hashtag": hashtag, "outputFormat": "json"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["ra"], body["dec"]) == (10.0, 60.0) and body["position_from"].startswith("TNS 2024abe")
    alert = Alert.objects.get(pk=body["id"])
    assert "2024abe" in alert.aliases.values_list("name", flat=True)
    api = client.post(
        "/api/v1/alerts/", {"ivorn": "2024abd"}, "application/json", HTTP_AUTHORIZATION=f"Hashtag {hashtag}"
    )
    assert api.status_code == 201 and api.json()["position_from"].startswith("TNS 2024abd")
    unknown = client.post("/cgi/newevent", {"EventID": "2024zzz", "hashtag": hashtag})
    assert unknown.status_code == 400 and b"no harvested TNS or Gaia object" in unknown.content
    # The web form says where the position came from.
    client.post("/login/", {"hashtag": hashtag})
    harvest_gaia_index_file = tmp_path / "alerts.csv"
    harvest_gaia_index_file.write_text(GAIA_INDEX)
    harvest_gaia_index([harvest_gaia_index_file], create_alerts=False)
    page = client.post("/newevent/", {"EventID": "Gaia24abc"}, follow=True)
    assert b"at the position of Gaia Science Alerts Gaia24abc" in page.content


def test_alias_refused_in_a_harvest_is_a_note_not_a_wrong_link(tmp_path, db):
    create_alert(ivorn="ivo://tns/2024abc", ra=150.1, dec=2.2)
    other = create_alert(ivorn="ivo://other", ra=5, dec=5)
    Alias.objects.create(alert=other, name="ATLAS24bcd")
    report = harvest_tns([tns_file(tmp_path)], SN_BRIGHT, now=NOW)
    assert any("ATLAS24bcd" in note and "merge" in note for note in report.notes)
    assert Alias.objects.get(name="ATLAS24bcd").alert == other


GAIA_HEADER = "#Name,Date,RaDeg,DecDeg,AlertMag,HistoricMag,HistoricStdDev,Class,Published,Comment\n"


def gaia_line(name, ra, dec, published="2020-01-02 00:00:00", comment=""):
    return f"{name},2020-01-01 00:00:00,{ra},{dec},18.5,,,unknown,{published},{comment}\n"


# Each row tests one of create_alert's checks, in memory in the bulk path.
BULK_ROWS = [
    gaia_line("Gaia20aaa", "10.0", "20.0"),
    gaia_line("Gaia20aab", "10.0002", "20.0"),  # 0.68" from Gaia20aaa, created just before it
    gaia_line("Gaia20aac", "359.99998", "0.0"),  # across RA 0 from Gaia20aad: 0.14" apart
    gaia_line("Gaia20aad", "0.00002", "0.0"),
    gaia_line("Gaia20aae", "123.0", "89.99995"),  # at the pole, 0.36" from Gaia20aaf
    gaia_line("Gaia20aaf", "303.0", "89.99995"),
    gaia_line("Gaia20aag", "50.0", "-10.0", published="2999-01-01 00:00:00"),  # in the future
    gaia_line("Gaia20aah", "296.0003", "30.0"),  # 0.94" from the existing alert Gaia16aye
    gaia_line("Gaia20aai", "80.0", "5.0"),  # its IVORN is the twin of an existing alert's
    gaia_line("Gaia20aaj", "10.0", "20.0009"),  # 3.2" from Gaia20aaa: another object
]


def one_by_one(rows):
    """What create_alert says of each row, called in order (the reference the bulk path must equal)."""
    from gsafollowup.errors import BadInput, Duplicate, NearbyAlert

    outcome = {}
    for line in rows:
        name, _, ra, dec, *_, published, _ = line.strip().split(",")
        try:
            create_alert(
                ivorn=f"ivo://{name}", ra=ra, dec=dec, published=datetime.fromisoformat(published + "+00:00")
            )
            outcome[name] = "created"
        except (Duplicate, NearbyAlert) as error:
            outcome[name] = Alert.objects.get(pk=error.existing_id).ivorn
        except BadInput:
            outcome[name] = "refused"
    return outcome


def test_gaia_bulk_harvest_checks_every_row_as_create_alert_does(tmp_path, alert):
    from django.db import transaction

    Alert.objects.create(ivorn="ivo://GAIA20AAI", ra=200.0, dec=-50.0)
    with transaction.atomic():
        expected = one_by_one(BULK_ROWS)
        transaction.set_rollback(True)
    assert list(expected.values()).count("created") == 4  # the reference is not trivial
    index = tmp_path / "alerts.csv"
    index.write_text(GAIA_HEADER + "".join(BULK_ROWS))
    report = harvest_gaia_index([index])
    found = {}
    for record in HarvestedObject.objects.filter(source="gaia").select_related("alert"):
        if record.alert is None:
            found[record.name] = "refused"
        elif record.alert.ivorn == f"ivo://{record.name}":
            found[record.name] = "created"
        else:
            found[record.name] = record.alert.ivorn
    assert found == expected
    assert report.alerts_created == 4
    assert len(report.errors) == 1 and "line 8" in report.errors[0] and "future" in report.errors[0]
    # The neighbour adopted the row: the Gaia name is now an alias of that alert.
    assert Alias.objects.get(name="Gaia20aab").alert.ivorn == "ivo://Gaia20aaa"
    assert Alias.objects.get(name="Gaia20aah").alert == alert
    assert Alias.objects.get(name="Gaia20aaa").source == "gaia"
    assert harvest_gaia_index([index]).changed == 0


def test_gaia_bulk_harvest_batches_its_queries(tmp_path, db, django_assert_max_num_queries):
    rows = [
        gaia_line(f"Gaia21{chr(97 + k // 676)}{chr(97 + k // 26 % 26)}{chr(97 + k % 26)}", k * 0.1, 0)
        for k in range(3000)
    ]
    index = tmp_path / "alerts.csv"
    index.write_text(GAIA_HEADER + "".join(rows))
    # Batched inserts (SQLite takes ~80 rows per INSERT), not the ten queries per alert of
    # create_alert called one by one (30,000 here).
    with django_assert_max_num_queries(300):
        report = harvest_gaia_index([index])
    assert report.alerts_created == 3000 and report.aliases_added == 3000 and report.errors == []
    assert Alert.objects.count() == 3000 and HarvestedObject.objects.filter(alert=None).count() == 0


def test_gaia_bulk_chunk_meeting_a_concurrent_alert_is_redone_one_by_one(tmp_path, db, monkeypatch):
    from alerts import services

    # Another writer created ivo://Gaia20aab after the in-memory check read the names.
    raced = Alert.objects.create(ivorn="ivo://Gaia20aab", ra=100.0, dec=0.0)
    monkeypatch.setattr(services, "known_names", lambda: {})
    index = tmp_path / "alerts.csv"
    index.write_text(GAIA_HEADER + gaia_line("Gaia20aaa", "1", "1") + gaia_line("Gaia20aab", "2", "2"))
    report = harvest_gaia_index([index])
    assert report.alerts_created == 1 and report.errors == []
    assert HarvestedObject.objects.get(name="Gaia20aab").alert == raced
    assert Alert.objects.get(ivorn="ivo://Gaia20aaa").aliases.get().name == "Gaia20aaa"


def test_position_by_name_answers_json_for_the_form(tmp_path, db, client):
    harvest_tns([tns_file(tmp_path)], TnsSelection(), now=NOW)
    body = client.get("/newevent/position", {"name": "AT2024abd"}).json()
    assert (body["name"], body["ra"], body["dec"]) == ("2024abd", 200.5, -30.0)
    assert body["position_from"].startswith("TNS 2024abd, harvested ")
    missing = client.get("/newevent/position", {"name": "2024zzz"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert client.get("/newevent/position").status_code == 400
    assert client.post("/newevent/position", {"name": "2024abd"}).status_code == 405
    assert not Alert.objects.exists()
