"""Concurrency and crashes on the production stack: PostgreSQL and gunicorn with several workers.

Every upload is the real DECam catalog of tests/data with one comment line added (so that each
is a distinct catalog) and a distinct MJD, sent by many client threads at once. What the tests
hold to: an upload the server acknowledged is stored exactly once with its catalog file; an
upload it refused left nothing; a killed worker or a restarted database never leaves a half
point behind, and the server recovers by itself. Sizes can be raised with
GSA_RELIABILITY_UPLOADS / GSA_RELIABILITY_SAME / GSA_RELIABILITY_CLIENTS (docs/reliability.md).
"""

import hashlib
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.stack import DECAM, DEMO_ALERT, production_stack

pytestmark = pytest.mark.live

UPLOADS = int(os.environ.get("GSA_RELIABILITY_UPLOADS", "200"))
SAME = int(os.environ.get("GSA_RELIABILITY_SAME", "50"))
CLIENTS = int(os.environ.get("GSA_RELIABILITY_CLIENTS", "16"))
WORKERS = 4
CATALOG = DECAM.read_bytes()
DB_DOWN = "The database is unavailable"


@pytest.fixture(scope="module")
def stack():
    with production_stack(workers=WORKERS) as running:
        yield running


def server_errors(log: str) -> str:
    """The error reports of the server's log (tracebacks), or its tail when there are none."""
    records = re.split(r"\n(?=\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ )", log)
    reports = [record for record in records if "Traceback" in record]
    return "\n".join(report[:4000] for report in reports[-3:]) or log[-3000:]


def catalog(tag: str) -> bytes:
    """The real catalog, made distinct by a trailing comment line (readers skip comments)."""
    return CATALOG + f"# reliability test upload {tag}\n".encode()


def upload(stack, content: bytes, mjd: float) -> tuple[int | None, str]:
    """One legacy upload; (status, body), or (None, error) when the connection broke."""
    data = {
        "EventID": DEMO_ALERT,
        "hashtag": stack.hashtag,
        "MJD": repr(mjd),
        "matchDist": "2",
        "noPlot": "1",
        "outputFormat": "json",
        "dryRun": "0",
    }
    try:
        response = requests.post(
            stack.url + "/cgi/upload", data=data, files={"sexCat": ("test.cat", content)}, timeout=120
        )
    except requests.ConnectionError as error:
        return None, str(error)
    return response.status_code, response.text


def rows_between(stack, low: float, high: float) -> list[tuple]:
    """(id, mjd, catalog_sha256, mag, has details) of the uploaded points with low <= MJD < high."""
    return stack.sql(
        "SELECT id, mjd, catalog_sha256, mag, details::text <> '{}' FROM calibration_followuppoint "
        "WHERE mjd >= %s AND mjd < %s AND NOT hidden AND NOT imported ORDER BY mjd",
        (low, high),
    )


def assert_kept_files_match(stack, rows) -> None:
    """Every row is whole and its kept catalog exists with the SHA-256 the row names."""
    root = Path(stack.server.media_root) / "catalogs"
    for _, mjd, sha256, mag, has_details in rows:
        assert mag is not None and has_details, f"point at MJD {mjd} is incomplete"
        path = root / sha256[:2] / sha256
        assert path.is_file(), f"point at MJD {mjd} references a missing catalog"
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256


def test_concurrent_uploads_of_distinct_points_are_all_stored_exactly_once(stack):
    base = 59000.0
    jobs = {base + i: catalog(f"distinct {i}") for i in range(UPLOADS)}
    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = dict(zip(jobs, pool.map(lambda mjd: upload(stack, jobs[mjd], mjd), jobs), strict=False))
    refused = {mjd: answer for mjd, answer in answers.items() if answer[0] != 201}
    assert refused == {}
    rows = rows_between(stack, base, base + UPLOADS)
    assert [row[1] for row in rows] == sorted(jobs), "each upload stored exactly once"
    expected = {mjd: hashlib.sha256(content).hexdigest() for mjd, content in jobs.items()}
    assert {row[1]: row[2] for row in rows} == expected
    assert_kept_files_match(stack, rows)


def test_concurrent_uploads_of_the_same_point_store_it_once(stack):
    mjd, content = 58000.5, catalog("same point")
    start = threading.Event()

    def send(_):
        start.wait()  # release the clients together, so the uploads race for real
        return upload(stack, content, mjd)

    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(send, n) for n in range(SAME)]
        start.set()
        statuses = [future.result()[0] for future in futures]
    assert statuses.count(201) == 1
    assert statuses.count(409) == SAME - 1
    rows = rows_between(stack, mjd, mjd + 0.01)
    assert len(rows) == 1
    assert_kept_files_match(stack, rows)


def running_workers(stack) -> list[int]:
    """Workers that are on a CPU right now (busy calibrating), else all of them."""
    pids = stack.server.worker_pids()
    busy = []
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] == "R":
            busy.append(pid)
    return busy or pids


def test_a_worker_killed_during_uploads_leaves_no_half_point_and_the_server_recovers(stack):
    base, count = 57000.0, max(24, UPLOADS // 5)
    jobs = {base + i: catalog(f"killed {i}") for i in range(count)}
    answers: dict[float, tuple] = {}
    done = threading.Semaphore(0)

    def send(mjd):
        answers[mjd] = upload(stack, jobs[mjd], mjd)
        done.release()

    killed = []
    with ThreadPoolExecutor(CLIENTS) as pool:
        futures = [pool.submit(send, mjd) for mjd in jobs]
        for kill_after in (count // 4, count // 2):
            # Wait until that many uploads have finished, so that the others are in flight.
            while len(answers) < kill_after:
                done.acquire()
            victim = running_workers(stack)[0]
            stack.server.kill_worker(victim)
            killed.append(victim)
        for future in futures:
            future.result()

    told_failed = {mjd for mjd, (status, _) in answers.items() if status is not None and status >= 400}
    unanswered = {mjd for mjd, (status, _) in answers.items() if status is None}
    stored = {row[1] for row in rows_between(stack, base, base + count)}
    assert not told_failed & stored, "a point the client was told failed was stored"
    assert {mjd for mjd, (status, _) in answers.items() if status == 201} <= stored
    # The client whose connection broke does not know; sending again settles it: the point is
    # then stored (201) or was stored already (409, naming it), never twice.
    for mjd in sorted(unanswered | told_failed):
        status, body = upload(stack, jobs[mjd], mjd)
        assert status in (201, 409), body
    rows = rows_between(stack, base, base + count)
    assert [row[1] for row in rows] == sorted(jobs)
    assert_kept_files_match(stack, rows)
    # The master replaced the killed workers, and serves.
    stack.server.wait_healthy()
    assert not set(killed) & set(stack.server.worker_pids())
    assert requests.get(stack.url + "/health", timeout=30).status_code == 200


def test_a_database_restart_answers_503_then_recovers_without_restarting_gunicorn(stack):
    base = 56000.0
    counter = iter(range(1_000_000))
    lock = threading.Lock()
    results: list[tuple[float, float, float, int | None, str]] = []  # start, end, mjd, status, body
    stop = threading.Event()
    alert_id = stack.alert_id()
    lightcurve = f"{stack.url}/get_alert_lc_data?alert_id={alert_id}"

    def client():
        while not stop.is_set():
            with lock:
                i = next(counter)
            started = time.monotonic()
            if i % 2:
                try:
                    response = requests.get(lightcurve, timeout=60)
                    status, body = response.status_code, response.text[:200]
                except requests.ConnectionError as error:
                    status, body = None, str(error)
                mjd = -1.0
            else:
                mjd = base + i / 1000  # distinct, and inside [base, base + 1000)
                status, body = upload(stack, catalog(f"restart {i}"), mjd)
            results.append((started, time.monotonic(), mjd, status, body))

    def answered(condition) -> int:
        return sum(1 for r in list(results) if condition(r))

    workers = stack.server.worker_pids()
    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    try:
        while answered(lambda r: True) < 16:
            time.sleep(0.1)
        down = time.monotonic()
        stack.postgres.stop_server("fast")
        # Keep the load on until the outage has been answered a good number of times.
        deadline = time.monotonic() + 120  # a guard against hanging, not a speed goal
        while answered(lambda r: r[3] == 503) < 10 and time.monotonic() < deadline:
            time.sleep(0.2)
        stack.postgres.start_server()
        stack.postgres.wait_ready()
        up = time.monotonic()
        deadline = time.monotonic() + 120
        while answered(lambda r: r[0] > up) < 40 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        for thread in threads:
            thread.join()

    unexpected = [r for r in results if r[3] not in (200, 201, 503)]
    assert unexpected == [], server_errors(stack.server.log())
    assert [r for r in results if r[1] < down and r[3] != 201 and r[3] != 200] == []
    outage = [r for r in results if r[3] == 503]
    assert len(outage) >= 10
    assert all(DB_DOWN in r[4] for r in outage)
    # Requests sent after the restart all succeed, served by the same gunicorn workers.
    after = [r for r in results if r[0] > up]
    assert len(after) >= 40 and {r[3] for r in after} <= {200, 201}
    assert stack.server.worker_pids() == workers
    # Uploads answered 503 stored nothing; those answered 201 are stored once, with their file.
    stored = rows_between(stack, base, base + 1000)
    failed = {r[2] for r in results if r[2] >= 0 and r[3] == 503}
    acknowledged = {r[2] for r in results if r[2] >= 0 and r[3] == 201}
    assert not failed & {row[1] for row in stored}
    assert acknowledged <= {row[1] for row in stored}
    assert len({row[1] for row in stored}) == len(stored)
    assert_kept_files_match(stack, stored)
