"""`manage.py check_catalogs`: kept catalog files against the points that name them."""

import os
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from calibration.models import FollowupPoint
from calibration.uploads import catalog_path, keep_catalog, sha256_of
from tests.test_upload import upload

HOUR = 3600


def check(*args) -> str:
    out = StringIO()
    call_command("check_catalogs", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def backdate(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


@pytest.fixture
def stored(observatory, star_alert, client, media):
    """One real stored upload with its kept catalog."""
    response = upload(client, observatory[1])
    assert response.status_code == 201, response.content
    return FollowupPoint.objects.get(pk=response.json()["followup_id"])


def test_a_clean_store_has_nothing_to_report(stored):
    out = check("--verify")
    assert "1 kept catalogs" in out and "orphan" not in out
    assert "No catalog is missing. Every file matches its SHA-256." in out


def test_an_orphan_left_by_a_killed_worker_is_removed_once_old_enough(stored):
    # A worker killed after writing the file and before committing its row leaves this.
    content = b"# 1 NUMBER\n1\n"
    sha = sha256_of(content)
    assert keep_catalog(content, sha)
    orphan = catalog_path(sha)
    incoming = orphan.parent / ".incoming-abc123"
    incoming.write_bytes(b"half a catal")

    # Young files may belong to an upload in progress: not counted, not removed.
    out = check("--delete")
    assert "orphan (" not in out and "0 files removed" in out and orphan.exists() and incoming.exists()

    backdate(orphan, 2 * HOUR)
    backdate(incoming, 2 * HOUR)
    out = check()
    assert f"orphan (no follow-up point names it): {orphan}" in out
    assert f"interrupted write: {incoming}" in out
    assert "2 files to remove: run with --delete." in out and orphan.exists()

    out = check("--delete")
    assert "2 files removed." in out
    assert not orphan.exists() and not incoming.exists()
    assert catalog_path(stored.catalog_sha256).exists()


def test_a_hidden_points_catalog_is_not_an_orphan(stored):
    stored.hidden = True
    stored.save()
    backdate(catalog_path(stored.catalog_sha256), 2 * HOUR)
    out = check("--delete")
    assert "orphan (" not in out and "0 files removed." in out
    assert catalog_path(stored.catalog_sha256).exists()


def test_a_missing_file_names_its_point_and_fails(stored):
    catalog_path(stored.catalog_sha256).unlink()
    err = StringIO()
    with pytest.raises(CommandError, match="1 kept catalogs missing or damaged"):
        call_command("check_catalogs", stdout=StringIO(), stderr=err)
    assert f"missing file {stored.catalog_sha256} of follow-up {stored.pk}" in err.getvalue()


def test_verify_finds_a_changed_file(stored):
    path = catalog_path(stored.catalog_sha256)
    path.write_bytes(path.read_bytes() + b"\n")
    assert "No catalog is missing." in check()  # without --verify the content is not read
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("check_catalogs", "--verify", stdout=StringIO(), stderr=err)
    assert f"content changed: {stored.catalog_sha256}" in err.getvalue()


def test_a_negative_age_is_refused(db, media):
    with pytest.raises(CommandError, match="--min-age must be 0 or more"):
        check("--min-age", "-1")
