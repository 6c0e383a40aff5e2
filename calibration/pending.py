"""Catalogs a web visitor sent but did not store yet: after a dry run or a refused form.

"Store this result" after a dry run, and a form sent back with an error, must not make the
observer send the file again. The catalog waits on disk under ``MEDIA_ROOT/pending/``, named by
its SHA-256, for ``PENDING_MINUTES``; the visitor's session lists the digests it sent, so a
session can only use its own catalogs (knowing a digest is not enough). Each session keeps at
most ``PENDING_PER_SESSION`` and the folder at most ``PENDING_TOTAL_MB``: the oldest go first.
Nothing here is a stored point: storing goes through ``followup_calibrate`` like any upload.
"""

import os
import tempfile
import time
from pathlib import Path

from django.conf import settings

from gsafollowup.errors import BadInput

from .uploads import sha256_of, storage_errors

PENDING_MINUTES = 30
PENDING_PER_SESSION = 3
PENDING_TOTAL_MB = 500
SESSION_KEY = "pending_catalogs"


def pending_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "pending"


def _path(sha256: str) -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise BadInput("Unknown kept catalog; choose the file again.")
    return pending_root() / sha256


def _expired(entry: dict, now: float) -> bool:
    return now - entry.get("at", 0) > PENDING_MINUTES * 60


def _sweep(now: float) -> None:
    """Forget files past their time, then the oldest while the folder is over its size."""
    root = pending_root()
    if not root.is_dir():
        return
    files = []
    for path in root.iterdir():
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue  # another worker swept it
        if now - stat.st_mtime > PENDING_MINUTES * 60:
            path.unlink(missing_ok=True)
        else:
            files.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in files)
    for _, size, path in sorted(files):
        if total <= PENDING_TOTAL_MB * 1024 * 1024:
            break
        path.unlink(missing_ok=True)
        total -= size


def keep_pending(session, content: bytes, filename: str, fields: dict | None = None) -> str:
    """Keep a catalog for this session; returns its SHA-256. ``fields`` are the upload's arguments."""
    now = time.time()
    sha256 = sha256_of(content)
    path = _path(sha256)
    with storage_errors():
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists():
            os.utime(path)  # another session's copy of the same bytes: keep it longer
        else:
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as handle:
                handle.write(content)
            os.replace(handle.name, path)
        _sweep(now)
    entries = {k: v for k, v in session.get(SESSION_KEY, {}).items() if not _expired(v, now)}
    entries[sha256] = {"name": filename, "size": len(content), "at": now, "fields": fields or {}}
    newest = sorted(entries.items(), key=lambda item: item[1]["at"])[-PENDING_PER_SESSION:]
    session[SESSION_KEY] = dict(newest)
    return sha256


def pending_entry(session, sha256: str) -> dict:
    """This session's kept catalog (name, size, fields and bytes as ``content``); BadInput once gone."""
    entry = session.get(SESSION_KEY, {}).get(sha256)
    path = _path(sha256)
    if entry is None or _expired(entry, time.time()) or not path.is_file():
        raise BadInput(
            f"The kept catalog is gone (kept {PENDING_MINUTES} minutes); choose the file and send it again."
        )
    content = path.read_bytes()
    if sha256_of(content) != sha256:
        raise BadInput("The kept catalog changed on the server; choose the file and send it again.")
    return {**entry, "content": content}


def forget_pending(session, sha256: str) -> None:
    """Drop the session's claim on a catalog (the file goes at the next sweep or when it expires)."""
    entries = dict(session.get(SESSION_KEY, {}))
    entries.pop(sha256, None)
    session[SESSION_KEY] = entries
