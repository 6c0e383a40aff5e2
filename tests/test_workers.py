"""Real worker processes on both engines: killed mid-job, Redis and PostgreSQL restarted mid-batch, poison.

The production stack (PostgreSQL, gunicorn, the real demo data) takes batches over HTTP; two
``manage.py run_worker`` processes run them, on the database engine and on RQ with a real
redis-server started here on 127.0.0.1. What the tests hold to: every frame of a batch ends
(nothing lost), each stored frame is exactly one point (nothing doubled), and a frame that
kills its worker every time ends failed with a message while the others go on.
"""

import pytest
import requests

from tests.jobs_helpers import variant, zip_of
from tests.redis_server import TemporaryRedis, find_redis
from tests.stack import missing_tool, production_stack
from tests.workers import FAST, Workers, wait_for

pytestmark = pytest.mark.live

DONE = "('succeeded', 'failed')"


@pytest.fixture(scope="module", params=["database", "rq"])
def stack(request, tmp_path_factory):
    redis = None
    # The server creates the jobs (max_attempts) and the workers run them: the same settings.
    env = {"TASKS_BACKEND": request.param, **FAST}
    if request.param == "rq":
        binary = find_redis()
        if binary is None:
            missing_tool("redis-server not found: apt-get install redis-server")
        redis = TemporaryRedis(binary).start()
        env["REDIS_URL"] = redis.url
    try:
        with production_stack(workers=2, env=env) as running:
            workers = Workers(running.server.env, tmp_path_factory.mktemp(f"workers-{request.param}")).start()
            running.workers, running.redis, running.backend = workers, redis, request.param
            try:
                yield running
            finally:
                workers.stop()
    finally:
        if redis is not None:
            redis.stop()


def submit(stack, frames: dict[str, float], **fields) -> str:
    """One batch of variants of the real catalog, one MJD each (manifest.csv); the batch's id."""
    manifest = "file,mjd\n" + "".join(f"{name},{mjd!r}\n" for name, mjd in frames.items())
    files = {name: variant(f"{name} {mjd}") for name, mjd in frames.items()}
    archive = zip_of({**files, "manifest.csv": manifest.encode()})
    answer = requests.post(
        stack.url + "/api/v1/batches/",
        data={"event_id": "ivo://gsafollowup/demo/GRB210605A-field-star", "match_dist": "2", **fields},
        files={"files": ("night.zip", archive)},
        headers={"Authorization": f"Hashtag {stack.hashtag}"},
        timeout=120,
    )
    assert answer.status_code == 202, answer.text
    assert answer.headers["Location"].endswith(f"/api/v1/batches/{answer.json()['id']}/")
    return answer.json()["id"]


def jobs_of(stack, batch: str) -> dict[str, tuple]:
    """label -> (state, attempts, worker, error_code, error_message) of the batch's jobs."""
    rows = stack.sql(
        "SELECT label, state, attempts, worker, error_code, error_message FROM jobs_job WHERE batch_id = %s",
        (batch,),
    )
    return {row[0]: row[1:] for row in rows}


def finished(stack, batch: str) -> bool:
    return not stack.sql(f"SELECT 1 FROM jobs_job WHERE batch_id = %s AND state NOT IN {DONE}", (batch,))


def wait_finished(stack, batch: str, timeout: float = 240) -> dict[str, tuple]:
    try:
        wait_for(lambda: finished(stack, batch), timeout, f"batch {batch} to finish", poll=0.3)
    except AssertionError:
        raise AssertionError(f"{jobs_of(stack, batch)}\n{stack.workers.logs()}") from None
    return jobs_of(stack, batch)


def points_between(stack, low: float, high: float) -> list[float]:
    rows = stack.sql(
        "SELECT mjd FROM calibration_followuppoint WHERE mjd >= %s AND mjd < %s AND NOT hidden ORDER BY mjd",
        (low, high),
    )
    return [row[0] for row in rows]


def running_job(stack, batch: str, label: str | None = None):
    """(label, worker pid) of a job of the batch running now on a live worker, or None."""
    query = "SELECT label, worker FROM jobs_job WHERE batch_id = %s AND state = 'running'"
    params = [batch]
    if label:
        query += " AND label = %s"
        params.append(label)
    for name, worker in stack.sql(query, tuple(params)):
        pid = int(worker.rsplit(":", 1)[1])
        if pid in stack.workers.pids():
            return name, pid
    return None


def assert_all_stored_once(stack, frames: dict[str, float], jobs: dict[str, tuple]) -> None:
    assert {name: row[0] for name, row in jobs.items()} == dict.fromkeys(frames, "succeeded"), jobs
    low = min(frames.values())
    assert points_between(stack, low, low + 1) == sorted(frames.values()), "each frame stored exactly once"


def test_a_worker_killed_mid_job_leaves_it_to_another_and_the_point_is_stored_once(stack):
    frames = {f"kill{i}.cat": 55000.0 + i / 100 for i in range(6)}
    batch = submit(stack, frames)
    name, pid = wait_for(lambda: running_job(stack, batch), 120, "a running job")
    stack.workers.kill(pid)
    jobs = wait_finished(stack, batch)
    assert_all_stored_once(stack, frames, jobs)
    state, attempts, worker, *_ = jobs[name]
    assert attempts >= 2 and not worker.endswith(f":{pid}"), jobs[name]
    stack.workers.replace_dead()


def test_a_database_restart_mid_batch_loses_nothing_and_doubles_nothing(stack):
    frames = {f"pg{i}.cat": 54000.0 + i / 100 for i in range(8)}
    batch = submit(stack, frames)
    wait_for(lambda: len(points_between(stack, 54000, 54001)) >= 2, 180, "the first points")
    stack.postgres.stop_server("fast")
    stack.postgres.start_server()
    stack.postgres.wait_ready()
    jobs = wait_finished(stack, batch)
    assert_all_stored_once(stack, frames, jobs)


def test_a_redis_restart_mid_batch_loses_nothing_and_doubles_nothing(stack):
    if stack.backend != "rq":
        pytest.skip("only the RQ engine uses Redis")
    frames = {f"redis{i}.cat": 53000.0 + i / 100 for i in range(8)}
    batch = submit(stack, frames)
    wait_for(lambda: len(points_between(stack, 53000, 53001)) >= 2, 180, "the first points")
    # No persistence: the messages waiting in Redis are gone with it.
    stack.redis.stop_server()
    stack.redis.start_server()
    jobs = wait_finished(stack, batch)
    assert_all_stored_once(stack, frames, jobs)


def test_a_poison_frame_that_kills_its_worker_every_time_fails_clearly_and_the_others_go_on(stack):
    frames = {"poison.cat": 52000.0, **{f"good{i}.cat": 52000.01 + i / 100 for i in range(4)}}
    batch = submit(stack, frames)
    kills = 0
    while jobs_of(stack, batch)["poison.cat"][0] not in ("succeeded", "failed"):
        found = wait_for(
            lambda: running_job(stack, batch, "poison.cat") or finished_poison(stack, batch),
            120,
            "the poison frame to run",
            poll=0.05,
        )
        if found is True:
            break
        stack.workers.kill(found[1])
        kills += 1
        stack.workers.replace_dead()
    jobs = wait_finished(stack, batch)
    state, attempts, _, code, message = jobs["poison.cat"]
    assert state == "failed" and code == "worker_lost" and kills == attempts == 4, jobs["poison.cat"]
    assert "stopped 4 times" in message
    good = {name: mjd for name, mjd in frames.items() if name != "poison.cat"}
    assert_all_stored_once(stack, good, {k: v for k, v in jobs.items() if k != "poison.cat"})
    assert points_between(stack, 52000.0, 52000.005) == []


def finished_poison(stack, batch) -> bool:
    return jobs_of(stack, batch)["poison.cat"][0] in ("succeeded", "failed")


def test_the_job_api_shows_the_stored_point(stack):
    batch = submit(stack, {"api.cat": 51000.0})
    wait_finished(stack, batch)
    headers = {"Authorization": f"Hashtag {stack.hashtag}"}
    body = requests.get(f"{stack.url}/api/v1/batches/{batch}/", headers=headers, timeout=30).json()
    job = body["jobs"][0]
    assert job["state"] == "succeeded" and job["error"] is None
    point = requests.get(stack.url + job["result"]["point_api"], timeout=30)
    assert point.status_code == 200 and point.json()["mjd"] == 51000.0
    page = requests.get(job["result_url"], timeout=30)
    assert page.status_code == 200
