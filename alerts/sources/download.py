"""Downloading the sources' files: the TNS public-objects dump and deltas, the Gaia alerts index and
light curves. No Django: the command passes the URLs, the credentials and the limits.

Every download streams to a file beside its final name with a size bound (an answer beyond it is
refused, not cut), retries a busy or failing server (429, 5xx, honouring Retry-After) with
backoff through urllib3's Retry, and is redone on a connection cut mid-body. A TNS dump is a zip
holding one CSV, inflated with its own bound (a zip bomb is refused) under a name of ours, never
the member's (no path from the archive is ever written).
"""

import json
import os
import re
import time
import zipfile
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

MB = 1024 * 1024
#: The TNS dump is ~40 MB zipped and ~120 MB as CSV (2025); deltas are far smaller.
TNS_MAX_ZIP = 300 * MB
TNS_MAX_CSV = 1024 * MB
#: The Gaia index is ~5 MB for ~26,000 alerts; one light curve is a few kB.
GAIA_MAX_INDEX = 64 * MB
GAIA_MAX_LIGHTCURVE = 4 * MB
CHUNK = 64 * 1024
TNS_PATH = "/system/files/tns_public_objects/"
GAIA_NAME = re.compile(r"^Gaia\d{2}[a-z]{1,4}$")


class DownloadError(Exception):
    """A download that failed or was refused; the message says why, for the curator."""


@dataclass(frozen=True)
class Fetcher:
    """HTTP with timeouts, retries and a size bound; one requests session per fetcher."""

    user_agent: str
    timeout: float = 60.0
    attempts: int = 4
    backoff: float = 2.0

    def session(self) -> requests.Session:
        retry = Retry(
            total=self.attempts - 1,
            connect=self.attempts - 1,
            read=self.attempts - 1,
            status=self.attempts - 1,
            backoff_factor=self.backoff,
            status_forcelist=(429, 500, 502, 503, 504),
            # TNS downloads are POSTs (the key is a form field); retrying them repeats a read.
            allowed_methods=frozenset({"GET", "POST"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        session = requests.Session()
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        session.headers["User-Agent"] = self.user_agent
        return session

    def fetch(self, url: str, dest: Path, *, max_bytes: int, data: dict | None = None) -> Path:
        """Download ``url`` (POST with ``data``, else GET) to ``dest``; DownloadError when it fails."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")
        with self.session() as session:
            for attempt in range(1, self.attempts + 1):
                try:
                    self._stream(session, url, partial, max_bytes=max_bytes, data=data)
                except _CutOff as error:
                    # The server closed the connection before the body ended: ask again.
                    partial.unlink(missing_ok=True)
                    if attempt == self.attempts:
                        raise DownloadError(f"{_shown(url)}: {error} ({attempt} attempts)") from None
                    time.sleep(self.backoff * 2 ** (attempt - 1))
                    continue
                except BaseException:
                    partial.unlink(missing_ok=True)
                    raise
                os.replace(partial, dest)
                return dest
        raise AssertionError("unreachable")  # pragma: no cover

    def _stream(self, session, url, partial: Path, *, max_bytes: int, data) -> None:
        method = "POST" if data is not None else "GET"
        try:
            response = session.request(method, url, data=data, stream=True, timeout=self.timeout)
        except requests.exceptions.RetryError as error:
            raise DownloadError(
                f"{_shown(url)}: the server kept refusing ({error.__class__.__name__})"
            ) from None
        except requests.Timeout:
            raise DownloadError(f"{_shown(url)}: no answer within {self.timeout:g} s") from None
        except requests.ConnectionError as error:
            raise DownloadError(f"{_shown(url)}: cannot connect ({_reason(error)})") from None
        with response:
            if response.status_code != 200:
                raise DownloadError(
                    f"{_shown(url)}: HTTP {response.status_code} {response.reason}"
                    + (" (check the API key and bot id)" if response.status_code in (401, 403) else "")
                )
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise DownloadError(
                    f"{_shown(url)}: {int(declared):,} bytes is over the {max_bytes:,}-byte limit"
                )
            size = 0
            try:
                with open(partial, "wb") as out:
                    for chunk in response.iter_content(CHUNK):
                        size += len(chunk)
                        if size > max_bytes:
                            raise DownloadError(
                                f"{_shown(url)}: the answer grows beyond the {max_bytes:,}-byte limit"
                            )
                        out.write(chunk)
            except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as error:
                raise _CutOff(f"the answer was cut off after {size:,} bytes ({_reason(error)})") from None
            except requests.Timeout:
                raise _CutOff(f"the answer stalled after {size:,} bytes") from None


class _CutOff(Exception):
    """The body ended early: retried by Fetcher.fetch."""


def _shown(url: str) -> str:
    return url.split("?", 1)[0]


def _reason(error: Exception) -> str:
    return str(error).split("(", 1)[0].strip()[:120] or error.__class__.__name__


def unzip_single_csv(archive: Path, dest: Path, *, max_bytes: int | None = None) -> Path:
    """The one CSV of a zip written to ``dest``, inflated at most ``max_bytes``; DownloadError otherwise."""
    max_bytes = TNS_MAX_CSV if max_bytes is None else max_bytes
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = [m for m in zipped.infolist() if not m.is_dir()]
            csvs = [m for m in members if m.filename.lower().endswith(".csv")]
            if len(csvs) != 1:
                raise DownloadError(f"{archive.name}: expected one CSV in the zip, found {len(csvs)}")
            member = csvs[0]
            if member.file_size > max_bytes:
                raise DownloadError(f"{archive.name}: {member.file_size:,} bytes inflated is over the limit")
            size = 0
            partial = dest.with_name(dest.name + ".part")
            try:
                # The declared size may lie: count what actually comes out.
                with zipped.open(member) as source, open(partial, "wb") as out:
                    while chunk := source.read(CHUNK):
                        size += len(chunk)
                        if size > max_bytes:
                            raise DownloadError(
                                f"{archive.name}: inflates beyond the {max_bytes:,}-byte limit"
                            )
                        out.write(chunk)
            except BaseException:
                partial.unlink(missing_ok=True)
                raise
            os.replace(partial, dest)
            return dest
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
        raise DownloadError(f"{archive.name}: not a readable zip ({error})") from None
    except NotImplementedError as error:  # an unsupported compression method
        raise DownloadError(f"{archive.name}: {error}") from None


def tns_marker(bot_id: str, bot_name: str) -> str:
    """The User-Agent TNS requires of a bot: tns_marker{"tns_id": 1234, "type": "bot", "name": "..."}."""
    text = (bot_id or "").strip()
    if not text.isascii() or not text.isdigit():
        raise DownloadError("TNS_BOT_ID must be the bot's numeric TNS id.")
    name = (bot_name or "").strip()
    if not name or not name.isprintable() or not name.isascii():
        raise DownloadError("TNS_BOT_NAME must be the bot's name as registered on TNS (printable ASCII).")
    return "tns_marker" + json.dumps({"tns_id": int(text), "type": "bot", "name": name})


def tns_files(since: date | None, today: date) -> list[str]:
    """The public-object files to fetch: the full dump, or the daily deltas from ``since`` to yesterday."""
    if since is None:
        return ["tns_public_objects.csv.zip"]
    if since >= today:
        raise DownloadError("--since must be a day before today (today's delta is published tomorrow).")
    if (today - since).days > 62:
        raise DownloadError("--since is over two months ago: download the full dump instead.")
    days = [since + timedelta(days=k) for k in range((today - since).days)]
    return [f"tns_public_objects_{day:%Y%m%d}.csv.zip" for day in days]


def download_tns(
    base_url: str,
    api_key: str,
    bot_id: str,
    bot_name: str,
    into: Path,
    *,
    since: date | None,
    today: date,
    fetcher_options: dict | None = None,
) -> list[Path]:
    """Fetch the TNS dump (or deltas) with the bot's key; the CSVs, unzipped, in order."""
    if not (api_key or "").strip():
        raise DownloadError("Set TNS_API_KEY (and TNS_BOT_ID, TNS_BOT_NAME) to download from TNS.")
    fetcher = Fetcher(user_agent=tns_marker(bot_id, bot_name), **(fetcher_options or {}))
    paths = []
    for name in tns_files(since, today):
        archive = fetcher.fetch(
            base_url.rstrip("/") + TNS_PATH + name,
            into / name,
            max_bytes=TNS_MAX_ZIP,
            data={"api_key": api_key.strip()},
        )
        paths.append(unzip_single_csv(archive, into / name.removesuffix(".zip")))
        archive.unlink()
    return paths


def download_gaia_index(base_url: str, into: Path, fetcher: Fetcher) -> Path:
    """The Gaia Science Alerts index, alerts.csv."""
    return fetcher.fetch(f"{base_url.rstrip('/')}/alerts.csv", into / "alerts.csv", max_bytes=GAIA_MAX_INDEX)


def download_gaia_lightcurves(
    base_url: str, into: Path, names: list[str], fetcher: Fetcher
) -> tuple[list[Path], list[str]]:
    """Each alert's lightcurve.csv as NAME/lightcurve.csv; the files, and one error per alert that failed."""
    curves, errors = [], []
    for name in names:
        if not GAIA_NAME.match(name):
            errors.append(f"{name[:40]!r} is not a Gaia alert name")
            continue
        url = f"{base_url.rstrip('/')}/alert/{name}/lightcurve.csv"
        try:
            curves.append(fetcher.fetch(url, into / name / "lightcurve.csv", max_bytes=GAIA_MAX_LIGHTCURVE))
        except DownloadError as error:
            errors.append(str(error))
    return curves, errors
