"""Uploaded catalogs: the size limit while streaming, and content-addressed keeping on disk."""

import errno
import fcntl
import hashlib
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler

from gsafollowup.errors import InsufficientStorage, TooLarge
from gsafollowup.middleware import limit_mb, upload_limit_bytes


class SizeLimitUploadHandler(FileUploadHandler):
    """Stop a streamed upload as soon as it passes the limit (bodies without Content-Length)."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > upload_limit_bytes(self.request):
            raise TooLarge(f"The upload is larger than the {limit_mb(self.request):g} MB limit.")
        return raw_data

    def file_complete(self, file_size):
        return None


#: Write failures that come from the storage itself, not from the upload: full, read-only, denied.
STORAGE_ERRNOS = {
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EFBIG,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.ENOTDIR,
    errno.EIO,
}


@contextmanager
def storage_errors():
    """Turn a failed write under MEDIA_ROOT into InsufficientStorage (507), answered in the route's format."""
    try:
        yield
    except OSError as error:
        if error.errno not in STORAGE_ERRNOS:
            raise
        raise InsufficientStorage(
            "The server cannot store the catalog now (its storage is full or read-only); try again later."
        ) from error


def catalog_root() -> Path:
    return Path(settings.MEDIA_ROOT) / "catalogs"


def catalog_path(sha256: str) -> Path:
    """Where the catalog with this SHA-256 is kept: catalogs/ab/abcdef..."""
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("not a SHA-256 hex digest")
    return catalog_root() / sha256[:2] / sha256


def sha256_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


@contextmanager
def catalog_lock(sha256: str):
    """Serialise writers of one content (across processes) so cleanup never removes a file in use."""
    locks = catalog_root() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{sha256[:2]}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def keep_catalog(content: bytes, sha256: str) -> bool:
    """Write the catalog at its content address (atomically); True if this call created the file."""
    path = catalog_path(sha256)
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def staging_root() -> Path:
    """Frames of batches waiting for a worker (MEDIA_ROOT is shared by every worker machine)."""
    return Path(settings.MEDIA_ROOT) / "incoming"


def staged_path(sha256: str) -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("not a SHA-256 hex digest")
    return staging_root() / sha256[:2] / sha256


class Staging:
    """Write a submission's files into a private folder, then publish them all or none.

    Until ``publish`` nothing is at a content address, so a refused batch leaves nothing but
    this folder, which ``discard`` removes; published files are content-addressed, so two
    batches holding one file share it.
    """

    def __init__(self):
        staging_root().mkdir(parents=True, exist_ok=True)
        self.folder = Path(tempfile.mkdtemp(dir=staging_root(), prefix=".batch-"))
        self.files: list[str] = []

    def add(self, content: bytes) -> str:
        """Keep one file; its SHA-256."""
        sha256 = sha256_of(content)
        path = self.folder / sha256
        if not path.exists():
            path.write_bytes(content)
            self.files.append(sha256)
        return sha256

    def publish(self) -> None:
        for sha256 in self.files:
            target = staged_path(sha256)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.folder / sha256, target)
        self.discard()

    def discard(self) -> None:
        for path in self.folder.iterdir():
            path.unlink(missing_ok=True)
        self.folder.rmdir()


def read_staged(sha256: str) -> bytes:
    return staged_path(sha256).read_bytes()


def read_kept_catalog(sha256: str) -> bytes:
    return catalog_path(sha256).read_bytes()


def forget_catalog(sha256: str) -> None:
    catalog_path(sha256).unlink(missing_ok=True)


@dataclass
class CatalogSweep:
    """What ``sweep_catalogs`` found under MEDIA_ROOT/catalogs (SHA-256 values and paths)."""

    kept: int = 0
    orphans: list[Path] = field(default_factory=list)
    leftovers: list[Path] = field(default_factory=list)
    missing: dict[str, list[int]] = field(default_factory=dict)
    corrupt: list[str] = field(default_factory=list)
    removed: int = 0


def _older_than(path: Path, seconds: float) -> bool:
    try:
        return time.time() - path.stat().st_mtime >= seconds
    except FileNotFoundError:
        return False


def sweep_catalogs(
    referenced: dict[str, list[int]], *, min_age: float, verify: bool, delete: bool
) -> CatalogSweep:
    """Compare the kept files with the rows that name them (``referenced``: SHA-256 -> point ids).

    Orphans are files no row names: left by a worker killed between writing the file and
    committing its row. Leftovers are ``.incoming-`` files of an interrupted write. Both count
    only once older than ``min_age`` seconds, so an upload in progress is never touched, and
    an orphan is removed under the content's lock after checking again that no row names it.
    Missing files (rows whose catalog is gone) and, with ``verify``, files whose content no
    longer has their SHA-256 are reported; nothing can repair them here.
    """
    from .models import FollowupPoint

    found = CatalogSweep()
    on_disk = set()
    for folder in sorted(catalog_root().glob("[0-9a-f][0-9a-f]")):
        for path in sorted(folder.iterdir()):
            name = path.name
            if name.startswith(".incoming-"):
                if _older_than(path, min_age):
                    found.leftovers.append(path)
                continue
            if len(name) != 64 or name[:2] != folder.name or not path.is_file():
                continue
            on_disk.add(name)
            if name not in referenced:
                if _older_than(path, min_age):
                    found.orphans.append(path)
                continue
            found.kept += 1
            if verify and sha256_of(path.read_bytes()) != name:
                found.corrupt.append(name)
    found.missing = {sha: ids for sha, ids in referenced.items() if sha not in on_disk}
    if delete:
        for path in found.leftovers:
            path.unlink(missing_ok=True)
            found.removed += 1
        for path in found.orphans:
            with catalog_lock(path.name):
                if not FollowupPoint.objects.filter(catalog_sha256=path.name).exists():
                    path.unlink(missing_ok=True)
                    found.removed += 1
    return found
