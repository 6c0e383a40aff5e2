"""Uploaded catalogs: the size limit while streaming, and content-addressed keeping on disk."""

import fcntl
import hashlib
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler

from gsafollowup.errors import TooLarge
from gsafollowup.middleware import upload_limit_bytes


class SizeLimitUploadHandler(FileUploadHandler):
    """Stop a streamed upload as soon as it passes the limit (bodies without Content-Length)."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > upload_limit_bytes():
            raise TooLarge(f"The upload is larger than the {settings.MAX_UPLOAD_MB:g} MB limit.")
        return raw_data

    def file_complete(self, file_size):
        return None


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


def read_kept_catalog(sha256: str) -> bytes:
    return catalog_path(sha256).read_bytes()


def forget_catalog(sha256: str) -> None:
    catalog_path(sha256).unlink(missing_ok=True)
