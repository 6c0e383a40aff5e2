"""Batches: many catalogs in one submission (several files, or a zip/tar), each frame its own job.

Archives are read in memory, member by member, with bounded reads: nothing is ever extracted
to a path an archive names, a member that expands past MAX_UPLOAD_MB or a batch past
BATCH_MAX_TOTAL_MB is refused, and so are absolute or '..' names, links and more than
BATCH_MAX_FILES frames. Fields come from the request (for every frame) and from a
``manifest.csv`` (``file, event_id, mjd, exp_time, force_filter, match_dist, comment``), whose
non-empty cells win per file. A frame whose fields are wrong becomes a job failed at once with
the message (the others go on); a refused submission stores nothing.
"""

import csv
import io
import posixpath
import stat
import tarfile
import zipfile
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from gsafollowup.errors import BadInput, DomainError, Forbidden, TooLarge
from jobs.models import Batch
from jobs.services import NewJob, create_jobs

from .forms import upload_arguments
from .uploads import Staging

MANIFEST = "manifest.csv"
MANIFEST_COLUMNS = ("file", "event_id", "mjd", "exp_time", "force_filter", "match_dist", "comment")
#: The manifest's columns under the legacy names that ``upload_arguments`` parses.
LEGACY_NAMES = {
    "event_id": "EventID",
    "mjd": "MJD",
    "exp_time": "expTime",
    "force_filter": "forceFilter",
    "match_dist": "matchDist",
    "comment": "comment",
}
#: Files archivers add that are no catalogs (macOS resource forks and folder settings).
IGNORED = ("__MACOSX/", ".DS_Store", "Thumbs.db")


@dataclass
class Member:
    """One file of the submission: its name (path inside its archive) and content."""

    name: str
    content: bytes


class Limits:
    """The running totals of one submission, checked after every member read."""

    def __init__(self):
        self.member_bytes = int(settings.MAX_UPLOAD_MB * 1024 * 1024)
        self.total_bytes = int(settings.BATCH_MAX_TOTAL_MB * 1024 * 1024)
        self.total = 0
        self.count = 0

    def read(self, name: str, stream, declared: int | None = None) -> bytes:
        """At most the member limit from ``stream``; TooLarge beyond it (whatever the header claims)."""
        if declared is not None and declared > self.member_bytes:
            raise TooLarge(
                f"{shown(name)} expands to {declared / 2**20:.0f} MB, over the "
                f"{settings.MAX_UPLOAD_MB:g} MB limit per file; the batch was refused."
            )
        content = stream.read(self.member_bytes + 1)
        if len(content) > self.member_bytes:
            raise TooLarge(
                f"{shown(name)} expands past the {settings.MAX_UPLOAD_MB:g} MB limit per "
                "file (a compression bomb?); the batch was refused."
            )
        self.total += len(content)
        if self.total > self.total_bytes:
            raise TooLarge(f"The batch expands past {settings.BATCH_MAX_TOTAL_MB:g} MB; send it in parts.")
        return content

    def count_one(self) -> None:
        self.count += 1
        if self.count > settings.BATCH_MAX_FILES + 1:  # the manifest comes on top
            raise TooLarge(
                f"The batch holds more than {settings.BATCH_MAX_FILES} files; send at most "
                f"{settings.BATCH_MAX_FILES} frames per batch."
            )


def shown(name: str) -> str:
    """A member's name as quoted in messages: printable, short."""
    text = "".join(c if c.isprintable() else "?" for c in name)
    return repr(text if len(text) <= 60 else text[:57] + "...")


def safe_name(name: str) -> str:
    """The member's path, or BadInput when it is absolute, climbs with '..' or holds control characters."""
    path = name.replace("\\", "/")
    parts = path.split("/")
    if (
        path.startswith("/")
        or (len(parts[0]) == 2 and parts[0][1] == ":")
        or ".." in parts
        or any(not c.isprintable() for c in path)
    ):
        raise BadInput(
            f"The archive holds {shown(name)}, an unsafe path (absolute or with '..'); the batch was refused."
        )
    return posixpath.normpath(path)


def ignored(path: str) -> bool:
    base = posixpath.basename(path)
    return path.startswith(IGNORED[0]) or base in IGNORED[1:] or base.startswith("._")


def zip_members(upload, limits: Limits):
    try:
        archive = zipfile.ZipFile(upload)
        entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise BadInput(f"{shown(upload.name)} is a damaged zip archive ({error}).") from None
    if len(entries) > settings.BATCH_MAX_FILES + 1:
        raise TooLarge(
            f"The archive holds {len(entries)} entries; send at most "
            f"{settings.BATCH_MAX_FILES} frames per batch."
        )
    for entry in entries:
        if entry.is_dir():
            continue
        path = safe_name(entry.filename)
        if stat.S_ISLNK(entry.external_attr >> 16):
            raise BadInput(f"The archive holds {shown(entry.filename)}, a link; the batch was refused.")
        if ignored(path):
            continue
        limits.count_one()
        try:
            with archive.open(entry) as stream:
                yield Member(path, limits.read(path, stream, entry.file_size))
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as error:
            raise BadInput(f"{shown(path)} cannot be read from the archive ({error}).") from None


def tar_members(upload, limits: Limits):
    try:
        archive = tarfile.open(fileobj=upload, mode="r:*")
    except (tarfile.TarError, OSError, EOFError) as error:
        raise BadInput(f"{shown(upload.name)} is a damaged tar archive ({error}).") from None
    with archive:
        while True:
            try:
                entry = archive.next()
            except (tarfile.TarError, OSError, EOFError) as error:
                raise BadInput(f"{shown(upload.name)} is a damaged tar archive ({error}).") from None
            if entry is None:
                return
            if entry.isdir():
                continue
            path = safe_name(entry.name)
            if not entry.isfile():
                raise BadInput(
                    f"The archive holds {shown(entry.name)}, a link or device; the batch was refused."
                )
            if ignored(path):
                continue
            limits.count_one()
            try:
                yield Member(path, limits.read(path, archive.extractfile(entry), entry.size))
            except (tarfile.TarError, OSError, EOFError) as error:
                raise BadInput(f"{shown(path)} cannot be read from the archive ({error}).") from None


def is_tar(upload) -> bool:
    upload.seek(0)
    try:
        with tarfile.open(fileobj=upload, mode="r:*") as archive:
            return archive.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False
    finally:
        upload.seek(0)


def members(uploads, limits: Limits):
    """Every file of the submission: archives unpacked in memory, other files as they are."""
    for upload in uploads:
        name = posixpath.basename((upload.name or "").replace("\\", "/")) or "unnamed"
        if zipfile.is_zipfile(upload):
            upload.seek(0)
            yield from zip_members(upload, limits)
        elif is_tar(upload):
            yield from tar_members(upload, limits)
        else:
            upload.seek(0)
            limits.count_one()
            yield Member(name, limits.read(name, upload))


def read_manifest(content: bytes) -> dict[str, dict]:
    """file -> its non-empty cells; BadInput for an unreadable manifest or unknown columns."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInput("manifest.csv must be UTF-8 text.") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in reader.fieldnames or []]
    unknown = [c for c in columns if c not in MANIFEST_COLUMNS]
    if "file" not in columns or unknown:
        raise BadInput(
            f"manifest.csv needs a 'file' column and only the columns {', '.join(MANIFEST_COLUMNS)}"
            + (f"; unknown: {', '.join(unknown[:3])}" if unknown else "")
            + "."
        )
    rows = {}
    try:
        for row in reader:
            cells = {(k or "").strip(): (v or "").strip() for k, v in row.items() if isinstance(v, str)}
            name = cells.pop("file", "")
            if not name:
                continue
            if name in rows:
                raise BadInput(f"manifest.csv names {shown(name)} twice.")
            rows[name] = {k: v for k, v in cells.items() if v}
    except csv.Error as error:
        raise BadInput(f"manifest.csv is not valid CSV ({error}).") from None
    return rows


def manifest_rows(manifest: dict[str, dict], names: list[str]) -> dict[str, dict]:
    """Each frame's manifest row, matched by path in the archive or, if unique, by file name."""
    by_base: dict[str, list[str]] = {}
    for name in names:
        by_base.setdefault(posixpath.basename(name), []).append(name)
    matched = {}
    for key, row in manifest.items():
        if key in names:
            matched[key] = row
        elif len(by_base.get(posixpath.basename(key), [])) == 1:
            matched[by_base[posixpath.basename(key)][0]] = row
        else:
            raise BadInput(f"manifest.csv names {shown(key)}, which is not a file of the batch.")
    return matched


def frame_arguments(fields: dict, row: dict, dry_run: bool) -> dict:
    """The service's arguments of one frame: the manifest's cells over the request's fields."""
    legacy = {LEGACY_NAMES[k]: v for k, v in {**fields, **row}.items() if k in LEGACY_NAMES}
    legacy["dryRun"] = "1" if dry_run else "0"
    return upload_arguments(legacy)


def submit_batch(*, observatory, uploads, fields: dict, dry_run: bool = False) -> Batch:
    """Store a batch and its frames' jobs (none if refused); the workers calibrate the frames.

    ``fields`` holds the request's values under the API's names (event_id, mjd, ...), for every
    frame. Raises BadInput / TooLarge for a submission that cannot be taken as a whole.
    """
    if observatory is None:
        raise Forbidden("Only an observatory's hashtag may upload; curators use the admin.")
    staging = Staging()
    try:
        limits = Limits()
        frames: list[tuple[str, str, int]] = []  # name, sha256, size
        manifest = None
        seen = set()
        for member in members(uploads, limits):
            if member.name in seen:
                raise BadInput(f"The batch holds {shown(member.name)} twice.")
            seen.add(member.name)
            if posixpath.basename(member.name) == MANIFEST:
                if manifest is not None:
                    raise BadInput("The batch holds more than one manifest.csv.")
                manifest = read_manifest(member.content)
                continue
            frames.append((member.name, staging.add(member.content), len(member.content)))
        if not frames:
            raise BadInput("The batch holds no catalog file: attach catalogs, or a zip or tar of them.")
        rows = manifest_rows(manifest or {}, [name for name, _, _ in frames])
        new = []
        for name, sha256, size in frames:
            try:
                arguments = frame_arguments(fields, rows.get(name, {}), dry_run)
            except DomainError as error:
                new.append(NewJob("calibrate", name, {"filename": name}, error=error))
                continue
            new.append(
                NewJob("calibrate", name, {**arguments, "sha256": sha256, "filename": name, "size": size})
            )
        label = ", ".join(posixpath.basename(u.name or "") for u in uploads)[:255]
        with transaction.atomic():
            batch = Batch.objects.create(observatory=observatory, dry_run=dry_run, label=label)
            create_jobs(new, observatory=observatory, queue="interactive", batch=batch)
            # Published inside the transaction: a worker may read a frame once the jobs commit.
            staging.publish()
    except BaseException:
        if staging.folder.exists():
            staging.discard()
        raise
    return batch
