"""Background jobs in process (database engine): batches, bad input, idempotence, fairness, priority.

The worker is the database engine's own (django-tasks-db), run in this process until the queue
is empty; tests/test_workers.py runs real worker processes on both engines.
"""

import io
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command

from calibration.models import FollowupPoint
from jobs.models import Batch, Job
from tests.conftest import STAR_G
from tests.jobs_helpers import drain, tar_of, variant, zip_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def in_process(settings, media):
    # One thread: the lease needs no renewal while a test drains the queue itself.
    settings.JOBS_HEARTBEAT = False
    settings.JOBS_RETRY_BACKOFF = 0


@pytest.fixture
def sender(observatory, star_alert, client):
    """POST /api/v1/batches/ as the observatory; returns the response."""
    _, hashtag = observatory

    def send(files: dict[str, bytes], **fields):
        data = {"event_id": star_alert.ivorn, "match_dist": "2", **fields}
        data["files"] = [_named(name, content) for name, content in files.items()]
        return client.post("/api/v1/batches/", data, HTTP_AUTHORIZATION=f"Hashtag {hashtag}")

    return send


def _named(name, content):
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def staged_files(media) -> list[Path]:
    root = Path(media) / "incoming"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_batch_answers_202_with_location_and_each_frame_becomes_a_point(sender, client, observatory):
    _, hashtag = observatory
    answer = sender(
        {"a.cat": variant("a"), "b.cat": variant("b"), "broken.cat": b"not a catalog\n"}, mjd="59373.1"
    )
    assert answer.status_code == 202, answer.content
    location = answer["Location"]
    assert location.endswith(f"/api/v1/batches/{answer.json()['id']}/")
    drain()
    batch = client.get(location, HTTP_AUTHORIZATION=f"Hashtag {hashtag}").json()
    assert batch["summary"]["finished"] and batch["summary"]["states"]["succeeded"] == 1
    jobs = {job["file"]: job for job in batch["jobs"]}
    broken = jobs["broken.cat"]
    assert broken["state"] == "failed" and broken["error"]["code"] == "bad_catalog", broken
    # b.cat is another catalog of the same alert, night and band: the legacy duplicate rule.
    point = FollowupPoint.objects.get()
    assert jobs["b.cat"]["error"]["code"] == "duplicate"
    assert f"follow-up {point.pk}" in jobs["b.cat"]["error"]["message"]
    stored = jobs["a.cat"]
    assert stored["result"]["point"] == point.pk and abs(stored["result"]["mag"] - STAR_G) < 0.1
    assert client.get(stored["result_url"]).status_code == 200
    one = client.get(jobs["a.cat"]["url"], HTTP_AUTHORIZATION=f"Hashtag {hashtag}").json()
    assert one["state"] == "succeeded" and one["progress"] == 1.0


def test_a_zip_with_a_manifest_sets_fields_per_file_and_a_bad_row_fails_that_frame_only(sender, client):
    manifest = "file,mjd,comment\na.cat,59373.10,first\nnight/b.cat,59373.20,second\nc.cat,yesterday,\n"
    archive = zip_of(
        {
            "a.cat": variant("a"),
            "night/b.cat": variant("b"),
            "c.cat": variant("c"),
            "manifest.csv": manifest.encode(),
        }
    )
    answer = sender({"night.zip": archive})
    assert answer.status_code == 202, answer.content
    drain()
    jobs = {job.label: job for job in Job.objects.all()}
    assert set(jobs) == {"a.cat", "night/b.cat", "c.cat"}
    assert jobs["c.cat"].state == "failed" and "MJD" in jobs["c.cat"].error_message
    assert jobs["a.cat"].state == jobs["night/b.cat"].state == "succeeded"
    stored = {p.mjd: p.comment for p in FollowupPoint.objects.all()}
    assert stored == {59373.1: "first", 59373.2: "second"}


def test_a_dry_run_batch_stores_nothing(sender):
    answer = sender({"a.cat": variant("a")}, mjd="59373.1", dry_run="true")
    assert answer.status_code == 202
    drain()
    job = Job.objects.get()
    assert job.state == "succeeded" and job.result["dry_run"] and abs(job.result["mag"] - STAR_G) < 0.1
    assert FollowupPoint.objects.count() == 0


def bomb() -> bytes:
    """A zip whose one member is 1 GiB of zeros (about 1 MB compressed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("zeros.cat", "w", force_zip64=True) as member:
            block = bytes(2**20)
            for _ in range(1024):
                member.write(block)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "make", "status", "words"),
    [
        ("bomb.zip", bomb, 413, "limit per file"),
        (
            "up.zip",
            lambda: zip_of({"../../etc/evil.cat": variant("x"), "a.cat": variant("a")}),
            400,
            "unsafe path",
        ),
        ("abs.tar.gz", lambda: tar_of({"/tmp/evil.cat": variant("x")}), 400, "unsafe path"),
        ("link.tar.gz", lambda: tar_of({"a.cat": variant("a")}, links={"b.cat": "/etc/passwd"}), 400, "link"),
        ("many.zip", lambda: zip_of({f"f{i}.cat": b"x" for i in range(10_000)}), 413, "at most 1000 frames"),
        ("empty.zip", lambda: zip_of({}), 400, "no catalog"),
        (
            "bad-manifest.zip",
            lambda: zip_of({"a.cat": variant("a"), "manifest.csv": b"name,mjd\n"}),
            400,
            "manifest",
        ),
        (
            "stray.zip",
            lambda: zip_of({"a.cat": variant("a"), "manifest.csv": b"file\nb.cat\n"}),
            400,
            "not a file",
        ),
    ],
)
def test_bad_archives_are_refused_whole_and_leave_nothing(sender, media, name, make, status, words):
    answer = sender({name: make()}, mjd="59373.1")
    assert answer.status_code == status, answer.content
    assert words in answer.json()["error"]["message"]
    assert Batch.objects.count() == Job.objects.count() == 0
    assert staged_files(media) == []


def test_a_job_delivered_again_after_its_point_was_stored_stores_nothing_more(sender):
    sender({"a.cat": variant("a")}, mjd="59373.1")
    drain()
    job = Job.objects.get()
    point = FollowupPoint.objects.get()
    # As if the worker died after the point's commit and before recording the job's end: the
    # lease lapses, the job is queued again and another worker runs it.
    Job.objects.filter(pk=job.pk).update(state=Job.QUEUED, result={}, result_url="")
    from calibration.tasks import calibrate_frame

    calibrate_frame.enqueue(str(job.pk))
    drain()
    job.refresh_from_db()
    assert job.state == "succeeded" and job.attempts == 2 and job.result["point"] == point.pk
    assert FollowupPoint.objects.count() == 1


def test_a_lapsed_lease_runs_the_job_again_and_spent_attempts_fail_it_clearly(sender, settings):
    sender({"a.cat": variant("a"), "b.cat": variant("b")}, mjd="59373.1")
    from django.utils import timezone

    from jobs.services import requeue_lapsed

    past = timezone.now() - timezone.timedelta(seconds=1)
    first, second = Job.objects.order_by("label")
    Job.objects.filter(pk=first.pk).update(state=Job.RUNNING, attempts=1, lease_until=past, worker="gone:1")
    Job.objects.filter(pk=second.pk).update(state=Job.RUNNING, attempts=5, lease_until=past, worker="gone:2")
    assert requeue_lapsed() == 2
    first.refresh_from_db(), second.refresh_from_db()
    assert first.state == Job.PENDING and first.history[-1]["worker"] == "gone:1"
    assert second.state == Job.FAILED and second.error_code == "worker_lost"
    assert "stopped 5 times" in second.error_message


def test_one_observatorys_500_frames_do_not_hold_back_another(make_observatory, star_alert, client, settings):
    settings.JOBS_QUEUED_PER_OBSERVATORY = 2
    (_, busy), (_, other) = make_observatory("BUSY"), make_observatory("OTHER")

    def send(hashtag, files):
        data = {"event_id": star_alert.ivorn, "match_dist": "2", "mjd": "59373.1", "dry_run": "true"}
        data["files"] = [_named(n, c) for n, c in files.items()]
        assert (
            client.post("/api/v1/batches/", data, HTTP_AUTHORIZATION=f"Hashtag {hashtag}").status_code == 202
        )

    send(busy, {f"busy{i:02}.cat": variant(f"busy {i}") for i in range(12)})
    send(other, {"other.cat": variant("other")})
    assert Job.objects.filter(state=Job.QUEUED, observatory__prefix="BUSY").count() == 2
    assert Job.objects.get(label="other.cat").state == Job.QUEUED
    drain()
    order = list(Job.objects.order_by("started_at").values_list("label", flat=True))
    assert order.index("other.cat") <= 2, order


def test_recalibrate_all_fans_out_as_bulk_jobs_that_run_after_uploads(sender, observatory, star_alert):
    sender({"a.cat": variant("a")}, mjd="59373.1")
    drain()
    point = FollowupPoint.objects.get()
    FollowupPoint.objects.filter(pk=point.pk).update(mag=99.0)
    out = io.StringIO()
    call_command("recalibrate", "--all", stdout=out)
    assert "1 recalibration jobs queued" in out.getvalue()
    sender({"b.cat": variant("b")}, mjd="59373.2")
    drain()
    recalibration = Job.objects.get(kind="recalibrate")
    upload = Job.objects.get(label="b.cat")
    assert upload.started_at < recalibration.started_at
    point.refresh_from_db()
    assert recalibration.state == "succeeded" and abs(point.mag - STAR_G) < 0.1
    assert point.details["history"][-1]["job"] == str(recalibration.pk)


def test_jobs_and_batches_are_only_shown_to_their_observatory(sender, make_observatory, client):
    answer = sender({"a.cat": variant("a")}, mjd="59373.1", dry_run="true")
    _, stranger = make_observatory("STRANGER")
    job = Job.objects.get()
    assert client.get(f"/api/v1/jobs/{job.pk}/", HTTP_AUTHORIZATION=f"Hashtag {stranger}").status_code == 404
    assert client.get(answer["Location"], HTTP_AUTHORIZATION=f"Hashtag {stranger}").status_code == 404
    assert client.get(f"/api/v1/jobs/{job.pk}/").status_code == 401


def test_the_web_form_leads_to_the_batch_page_with_its_progress_bars(observatory, star_alert, client):
    _, hashtag = observatory
    client.post("/login/", {"hashtag": hashtag})
    form = {"event_id": star_alert.ivorn, "mjd": "59373.1", "match_dist": "2", "dry_run": "on"}
    form["files"] = [_named("a.cat", variant("a")), _named("b.cat", variant("b"))]
    answer = client.post("/batches/new/", form)
    assert answer.status_code == 302 and "/batches/" in answer["Location"]
    page = client.get(answer["Location"]).content.decode()
    assert page.count("<progress") == 3 and "js/progress.js" in page and "a.cat" in page
    drain()
    job = Job.objects.order_by("label").first()
    assert "progress" in client.get(f"/jobs/{job.pk}/").content.decode()
    refused = client.post("/batches/new/", {**form, "mjd": "soon", "files": [_named("a.cat", variant("a"))]})
    assert refused.status_code == 400 and "MJD" in refused.content.decode()
