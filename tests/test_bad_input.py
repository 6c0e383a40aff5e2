"""Bad uploads (the corpus of tests/data/bad/): the right 4xx, a message to act on, nothing stored."""

import html
import re
import select
import socket
import zlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from alerts.models import Alert
from calibration.models import FollowupPoint
from tests.conftest import DATA, DECAM, STAR_DEC, STAR_RA

BAD = DATA / "bad"
IVORN = "ivo://demo/GRB210605A field star"
_ROW = re.compile(r"^\| `(?P<name>[^`]+)` \| (?P<status>\d{3}) \| (?P<words>[^|]+?) \| .* \|$")


def corpus() -> list:
    """(file name, status, words of the message) of every row of the corpus README's table."""
    rows = []
    for line in (BAD / "README.md").read_text().splitlines():
        match = _ROW.match(line)
        if match:
            rows.append(pytest.param(match["name"], int(match["status"]), match["words"], id=match["name"]))
    return rows


CORPUS = corpus()


@pytest.fixture
def field_alert(db):
    """An alert on a real star of the DECam frame (no reference stars needed: these uploads fail first)."""
    return Alert.objects.create(ivorn=IVORN, ra=STAR_RA, dec=STAR_DEC)


def media_files(media) -> list[Path]:
    """Every file under MEDIA_ROOT (lock files included: a refused upload may not even create those)."""
    root = Path(media)
    # A refused web form keeps its catalog for this session only, for 30 minutes, so the observer
    # corrects the fields without choosing the file again (calibration/pending.py): not a
    # stored upload. Everything else under MEDIA_ROOT counts.
    files = root.rglob("*") if root.exists() else []
    return sorted(p for p in files if p.is_file() and "pending" not in p.relative_to(root).parts[:1])


def fields(**extra) -> dict:
    data = {"EventID": IVORN, "MJD": "59373.1", "expTime": "60", "matchDist": "2", "forceFilter": "no"}
    data.update(extra)
    return data


def assert_nothing_stored(media) -> None:
    assert FollowupPoint.objects.count() == 0
    assert media_files(media) == []


def test_the_corpus_is_large_and_every_file_is_listed():
    listed = [param.values[0] for param in CORPUS]
    present = sorted(p.name for p in BAD.iterdir() if p.name != "README.md")
    assert sorted(listed) == present
    assert len(set(listed)) == len(listed) >= 45
    assert {param.values[1] for param in CORPUS} <= {400, 413, 422}


@pytest.mark.parametrize(("name", "status", "words"), CORPUS)
def test_legacy_endpoint(observatory, field_alert, client, media, name, status, words):
    _, hashtag = observatory
    with open(BAD / name, "rb") as handle:
        response = client.post(
            "/cgi/upload", fields(sexCat=handle, hashtag=hashtag, outputFormat="json", noPlot="1")
        )
    body = response.content.decode()
    assert response.status_code == status, body
    assert response["Content-Type"].startswith("text/plain")
    assert body.count("\n") == 1 and len(body) < 100
    assert words.lower() in body.lower(), body
    assert_nothing_stored(media)


@pytest.mark.parametrize(("name", "status", "words"), CORPUS)
def test_web_form(observatory, field_alert, client, media, name, status, words):
    _, hashtag = observatory
    client.post("/login/", {"hashtag": hashtag})
    with open(BAD / name, "rb") as handle:
        response = client.post("/upload/", fields(sexCat=handle))
    assert response.status_code == status
    page = html.unescape(response.content.decode())
    assert words.lower() in page.lower()
    assert 'id="upload-form"' in page, "the form is shown again to correct and resend"
    assert_nothing_stored(media)


@pytest.mark.parametrize(("name", "status", "words"), CORPUS)
def test_rest_api(observatory, field_alert, client, media, name, status, words):
    """The same corpus through POST /api/v1/points/: the JSON error body, nothing stored."""
    _, hashtag = observatory
    with open(BAD / name, "rb") as handle:
        response = client.post(
            "/api/v1/points/",
            {"catalog": handle, "event_id": IVORN, "mjd": "59373.1", "exp_time": "60", "match_dist": "2"},
            HTTP_AUTHORIZATION=f"Hashtag {hashtag}",
        )
    assert response.status_code == status, response.content
    error = response.json()["error"]
    assert error["code"] in {"bad_catalog", "bad_input", "too_large", "calibration_failed"}, error
    assert words.lower() in error["message"].lower(), error
    assert_nothing_stored(media)


def test_a_gzip_bomb_made_at_test_time(observatory, field_alert, client, media, tmp_path):
    """A gzip file of 260 kB expanding to 260 MB: refused at the 256 MB cap."""
    _, hashtag = observatory
    bomb = tmp_path / "bomb.cat.gz"
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = b" " * 2**20
    with open(bomb, "wb") as out:
        for _ in range(260):
            out.write(compressor.compress(block))
        out.write(compressor.flush())
    assert bomb.stat().st_size < 2**20
    with open(bomb, "rb") as handle:
        response = client.post("/cgi/upload", fields(sexCat=handle, hashtag=hashtag))
    assert response.status_code == 400
    assert "expands beyond 256 MB" in response.content.decode()
    assert_nothing_stored(media)


def write_big_catalog(path: Path, megabytes: int) -> int:
    """A real catalog repeated to the given size (rows of the DECam frame); returns its size."""
    rows = DECAM.read_bytes()
    with open(path, "wb") as out:
        while out.tell() < megabytes * 2**20:
            out.write(rows)
        return out.tell()


def multipart(boundary: str, values: dict, filename: str) -> tuple[bytes, bytes]:
    """The bytes before and after the file's content in a multipart/form-data body."""
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
        for key, value in values.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="sexCat"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    )
    return "".join(parts).encode(), f"\r\n--{boundary}--\r\n".encode()


def stream_upload(url: str, path: str, head: bytes, big: Path, tail: bytes, boundary: str, cookie: str = ""):
    """Send a multipart upload over a socket, stopping as soon as the server answers.

    Returns (bytes of the file sent, raw response). The server refuses on the declared length,
    so it answers while most of the file is still on the client's disk.
    """
    host, port = urlsplit(url).hostname, urlsplit(url).port
    length = len(head) + big.stat().st_size + len(tail)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: {length}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n{cookie}Connection: close\r\n\r\n"
    ).encode()
    sent = 0
    with socket.create_connection((host, port), timeout=60) as sock, open(big, "rb") as source:
        sock.sendall(request + head)
        while True:
            answered, _, _ = select.select([sock], [], [], 0)
            chunk = source.read(2**16)
            if answered or not chunk:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        sock.shutdown(socket.SHUT_WR)
        response = b""
        while True:
            try:
                data = sock.recv(2**16)
            except ConnectionResetError:
                break
            if not data:
                break
            response += data
    return sent, response


@pytest.mark.live
@pytest.mark.parametrize("path", ["/cgi/upload", "/upload/"])
def test_a_200_mb_catalog_is_refused_before_it_is_read(
    observatory, field_alert, live_server, media, tmp_path, path
):
    _, hashtag = observatory
    big = tmp_path / "huge.cat"
    size = write_big_catalog(big, 200)
    boundary = "gsa-test-boundary-7d1f"
    head, tail = multipart(boundary, fields(hashtag=hashtag), "huge.cat")
    sent, response = stream_upload(live_server.url, path, head, big, tail, boundary)
    status_line, _, rest = response.partition(b"\r\n")
    assert status_line.split()[1] == b"413", response[:500]
    assert b"larger than the 50 MB limit" in rest
    # The answer came while at most a small part of the 200 MB had left the client.
    assert sent < size // 4, (sent, size)
    assert_nothing_stored(media)


UNUSABLE_NAMES = [".", "..", "/", "a/../..", "x/."]


def post_raw_multipart(client, path: str, values: dict, field: str, filename: str, **headers):
    """A hand-made multipart body: Django's test client refuses file names such as '.'."""
    boundary = "gsa-boundary-7c1f"
    head, tail = multipart(boundary, values, filename)
    head = head.replace(b'name="sexCat"; filename=', f'name="{field}"; filename='.encode())
    body = head + DECAM.read_bytes() + tail
    return client.generic(
        "POST", path, body, content_type=f"multipart/form-data; boundary={boundary}", **headers
    )


@pytest.mark.parametrize("filename", UNUSABLE_NAMES)
def test_a_file_name_django_cannot_use_gets_an_actionable_message(
    observatory, field_alert, client, media, filename
):
    """curl -F 'sexCat=@x;filename=.': Django drops such a part, and the form can no longer be read."""
    _, hashtag = observatory
    legacy = post_raw_multipart(
        client, "/cgi/upload", fields(hashtag=hashtag, outputFormat="json", noPlot="1"), "sexCat", filename
    )
    api = post_raw_multipart(
        client,
        "/api/v1/points/",
        {"event_id": IVORN, "mjd": "59373.1", "exp_time": "60"},
        "catalog",
        filename,
        HTTP_AUTHORIZATION=f"Hashtag {hashtag}",
    )
    client.post("/login/", {"hashtag": hashtag})
    form = post_raw_multipart(client, "/upload/", fields(), "sexCat", filename)

    expected = "the file has no usable name"
    assert legacy.status_code == 400 and expected in legacy.content.decode(), legacy.content
    assert len(legacy.content.decode()) < 100
    assert api.status_code == 400 and expected in api.json()["error"]["message"], api.content
    page = html.unescape(form.content.decode())
    assert form.status_code == 400 and expected in page, form.content
    assert 'href="/upload/"' in page and "gsafollowup" in page, "the site's page, with the way back"
    assert "header size" not in legacy.content.decode() + api.content.decode()
    assert_nothing_stored(media)
