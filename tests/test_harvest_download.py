"""harvest_alerts tns|gaia --download against a real HTTP server on 127.0.0.1 serving the real layouts.

The server plays TNS (the public-objects zip, POSTed with the bot's key and tns_marker
User-Agent) and the Gaia alerts site (alerts.csv, alert/NAME/lightcurve.csv); each answer can be
scripted to fail first (429/503 with Retry-After), to be cut off, or to be too large.
"""

import io
import threading
import zipfile
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO
from urllib.parse import parse_qs

import pytest
from django.core.management import CommandError, call_command

from alerts.models import Alert, GaiaPoint, HarvestedObject
from alerts.services import refresh_followup_stats
from alerts.sources import download
from tests.test_harvest import GAIA_CURVE, GAIA_INDEX, TNS_HEADER, TNS_ROWS


def tns_zip(rows=TNS_ROWS, name="tns_public_objects.csv") -> bytes:
    text = '"2024-06-01 00:00:00"\n' + TNS_HEADER + "\n" + "\n".join(rows) + "\n"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr(name, text)
    return out.getvalue()


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        """A client closing early (a refused oversized answer) is expected here."""


class SourceServer:
    """Answers by path from a script of (status, headers, body, cut): used in turn, the last repeated."""

    def __init__(self):
        self.routes: dict[str, list] = {}
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode()) if length else {}
                server.requests.append(
                    {"method": self.command, "path": self.path, "agent": self.headers.get("User-Agent", "")}
                    | {k: v[0] for k, v in form.items()}
                )
                script = server.routes.get(self.path)
                if not script:
                    self.send_error(404)
                    return
                status, headers, body, cut = script.pop(0) if len(script) > 1 else script[0]
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                # A cut answer promises more bytes than it sends, then closes the connection.
                self.send_header("Content-Length", str(len(body) * (2 if cut else 1)))
                if cut:
                    self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                if cut:
                    self.wfile.flush()
                    self.close_connection = True

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def serve(self, path: str, *answers) -> None:
        self.routes[path] = [(a[0], a[1], a[2], a[3] if len(a) > 3 else False) for a in answers]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


OK = 200
TNS_DUMP = "/system/files/tns_public_objects/tns_public_objects.csv.zip"


@pytest.fixture
def server(settings):
    running = SourceServer()
    settings.TNS_BASE_URL = running.url
    settings.GAIA_ALERTS_URL = running.url + "/alerts"
    settings.TNS_API_KEY, settings.TNS_BOT_ID, settings.TNS_BOT_NAME = "secret-key", "1234", "gsa_bot"
    settings.HARVEST_DOWNLOAD = {"timeout": 5.0, "attempts": 3, "backoff": 0.01}
    settings.TNS_SELECTION = {"names": ["2024abc"]}
    yield running
    running.stop()


def harvest(*args):
    out, err = StringIO(), StringIO()
    call_command("harvest_alerts", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_tns_dump_is_posted_with_the_key_and_bot_marker_then_harvested(server, db):
    server.serve(TNS_DUMP, (OK, {"Content-Type": "application/zip"}, tns_zip()))
    out, _ = harvest("tns", "--download")
    assert "tns: 4 read, 4 new" in out and "1 alerts created" in out
    assert Alert.objects.filter(ivorn="ivo://tns/2024abc").exists()
    (sent,) = server.requests
    assert sent["method"] == "POST" and sent["api_key"] == "secret-key"
    assert sent["agent"] == 'tns_marker{"tns_id": 1234, "type": "bot", "name": "gsa_bot"}'
    # The same dump again changes nothing.
    assert "0 new, 0 updated, 4 unchanged" in harvest("tns", "--download")[0]


def test_tns_deltas_since_a_day_are_each_fetched(server, db):
    today = datetime.now(UTC).date()
    days = [today - timedelta(days=2), today - timedelta(days=1)]
    assert download.tns_files(days[0], today=today) == [
        f"tns_public_objects_{d:%Y%m%d}.csv.zip" for d in days
    ]
    with pytest.raises(download.DownloadError, match="day before today"):
        download.tns_files(today, today=today)
    delta = "/system/files/tns_public_objects/tns_public_objects_{:%Y%m%d}.csv.zip"
    server.serve(delta.format(days[0]), (OK, {}, tns_zip(TNS_ROWS[:2])))
    # The second day's delta is not there (yet): nothing is harvested, not half the days.
    with pytest.raises(CommandError, match="HTTP 404"):
        harvest("tns", "--download", "--since", f"{days[0]:%Y-%m-%d}")
    assert HarvestedObject.objects.count() == 0
    server.serve(delta.format(days[1]), (OK, {}, tns_zip(TNS_ROWS[2:])))
    out, _ = harvest("tns", "--download", "--since", f"{days[0]:%Y-%m-%d}")
    assert "tns: 4 read, 4 new" in out and HarvestedObject.objects.count() == 4  # one report, both days
    assert all(r["api_key"] == "secret-key" for r in server.requests)


def test_busy_server_is_retried_after_its_retry_after(server, db):
    server.serve(
        TNS_DUMP,
        (429, {"Retry-After": "0"}, b"slow down"),
        (503, {"Retry-After": "0"}, b"busy"),
        (OK, {}, tns_zip()),
    )
    out, _ = harvest("tns", "--download")
    assert "4 new" in out and len(server.requests) == 3
    server.requests.clear()
    server.serve(TNS_DUMP, (503, {"Retry-After": "0"}, b"busy"))
    with pytest.raises(CommandError, match="kept refusing|HTTP 503"):
        harvest("tns", "--download")
    assert len(server.requests) == 3  # the configured attempts, no more


def test_cut_off_answer_is_fetched_again_and_never_harvested_half(server, db):
    server.serve(TNS_DUMP, (OK, {}, tns_zip(), True), (OK, {}, tns_zip()))
    assert "4 new" in harvest("tns", "--download")[0] and len(server.requests) == 2
    server.serve(TNS_DUMP, (OK, {}, tns_zip(), True))
    HarvestedObject.objects.all().delete()
    with pytest.raises(CommandError, match="cut off"):
        harvest("tns", "--download")
    assert HarvestedObject.objects.count() == 0


def test_oversized_answers_and_zip_bombs_are_refused(server, db, monkeypatch):
    monkeypatch.setattr(download, "TNS_MAX_ZIP", 200)
    server.serve(TNS_DUMP, (OK, {}, tns_zip()))
    with pytest.raises(CommandError, match="over the 200-byte limit"):
        harvest("tns", "--download")
    monkeypatch.setattr(download, "TNS_MAX_ZIP", 10**6)
    # 5 MB of one letter deflates to a few kB: inflating it is bounded.
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("tns_public_objects.csv", "a" * 5_000_000)
    monkeypatch.setattr(download, "TNS_MAX_CSV", 1_000_000)
    server.serve(TNS_DUMP, (OK, {}, bomb.getvalue()))
    with pytest.raises(CommandError, match="over the limit|beyond"):
        harvest("tns", "--download")
    server.serve(TNS_DUMP, (OK, {"Content-Type": "text/html"}, b"<html>Please log in</html>"))
    with pytest.raises(CommandError, match="not a readable zip"):
        harvest("tns", "--download")
    # A chunked answer with no length is stopped while streaming.
    monkeypatch.setattr(download, "GAIA_MAX_INDEX", 100)
    server.serve("/alerts/alerts.csv", (OK, {}, GAIA_INDEX.encode()))
    with pytest.raises(CommandError, match="limit"):
        harvest("gaia", "--download", "--lightcurves", "none")
    assert HarvestedObject.objects.count() == 0


def test_refused_key_and_missing_credentials_say_so(server, db, settings):
    server.serve(TNS_DUMP, (401, {}, b"Unauthorized"))
    with pytest.raises(CommandError, match="HTTP 401.*API key"):
        harvest("tns", "--download")
    settings.TNS_API_KEY = ""
    with pytest.raises(CommandError, match="Set TNS_API_KEY"):
        harvest("tns", "--download")
    settings.TNS_API_KEY, settings.TNS_BOT_ID = "k", "12 or 13"
    with pytest.raises(CommandError, match="TNS_BOT_ID"):
        harvest("tns", "--download")


def test_gaia_index_and_the_light_curves_of_observed_alerts(server, db, asassn14gy):
    server.serve("/alerts/alerts.csv", (OK, {"Content-Type": "text/csv"}, GAIA_INDEX.encode()))
    server.serve("/alerts/alert/Gaia24abc/lightcurve.csv", (OK, {}, GAIA_CURVE.encode()))
    out, err = harvest("gaia", "--download", "--lightcurves", "Gaia24abc,Gaia99zzz,../etc")
    assert "2 alerts created" in out and "2 Gaia points" in out
    alert = Alert.objects.get(ivorn="ivo://Gaia24abc")
    assert GaiaPoint.objects.filter(alert=alert).count() == 2
    assert "HTTP 404" in err and "not a Gaia alert name" in err  # per alert, the others harvested
    assert [r["path"] for r in server.requests] == [
        "/alerts/alerts.csv",
        "/alerts/alert/Gaia24abc/lightcurve.csv",
        "/alerts/alert/Gaia99zzz/lightcurve.csv",
    ]
    assert all(r["method"] == "GET" and r["agent"].startswith("gsafollowup") for r in server.requests)
    # By default only the Gaia alerts observers follow (with points) get their light curve.
    server.requests.clear()
    Alert.objects.filter(pk=alert.pk).update(nfollowup=1)
    harvest("gaia", "--download")
    assert [r["path"] for r in server.requests][1:] == ["/alerts/alert/Gaia24abc/lightcurve.csv"]
    refresh_followup_stats(alert.pk)  # no real points: back to unobserved
    server.requests.clear()
    harvest("gaia", "--download")
    assert len(server.requests) == 1


def test_files_and_download_are_exclusive(db):
    with pytest.raises(CommandError, match="not both"):
        harvest("tns", "x.csv", "--download")
    with pytest.raises(CommandError, match="listen_gcn"):
        harvest("gcn", "--download")
    with pytest.raises(CommandError, match="Give the files"):
        harvest("tns")
