"""Downloading a source file: HTTP(S) with timeouts, retries with backoff, conditional
requests (ETag / If-Modified-Since), size limits, and local files (file://, the demo);
then opening it as one byte stream, unpacking zip and gzip on the fly.

The download goes to a temporary file on disk (a zip's directory is at its end), never
into memory; the parsers read the unpacked bytes as a stream.

Errors say what happened in words an operator can act on, and fall in two classes:
TransientError (timeouts, connection failures, HTTP 5xx/429, a damaged or truncated
file: the job is retried with backoff) and SourceError (a changed format, HTTP 4xx, a
size limit: retrying now would not help; the next scheduled fetch tries again).
"""

from __future__ import annotations

import gzip
import os
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

import httpx

DEFAULTS = {
    "timeout": 60.0,                  # seconds per connect / read of the network
    "max_seconds": 1800.0,            # a whole download, however it trickles
    "retries": 2,                     # extra attempts within one job (then the queue retries)
    "backoff": 1.0,                   # seconds before the first in-job retry, doubled each time
    "max_bytes": 2 * 1024 ** 3,       # bytes on the wire
    "max_unpacked_bytes": 8 * 1024 ** 3,
}
USER_AGENT = "pounce-collector/0.1 (+https://github.com/pounce)"


class SourceError(Exception):
    """A fetch failed in a way retrying soon would not fix (format changed, 4xx, limit)."""


class FormatError(SourceError):
    """The file does not have the documented shape any more."""


class TransientError(Exception):
    """A fetch failed in a way that may pass (network, 5xx, truncated download)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def option(options: dict, key: str):
    value = (options or {}).get(key)
    return DEFAULTS[key] if value is None else value


@dataclass
class Download:
    path: Path | None          # None: not modified since the last complete fetch
    filename: str              # the file's name (the URL's last segment), e.g. for a date in it
    etag: str | None = None
    last_modified: str | None = None
    temporary: bool = True

    def discard(self) -> None:
        if self.path is not None and self.temporary:
            _unlink(self.path)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _filename(url: str) -> str:
    return unquote(urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]) or "download"


def download(url: str, options: dict | None = None, etag: str | None = None, last_modified: str | None = None,
             client: httpx.Client | None = None, workdir: str | None = None) -> Download:
    """Fetch `url` into a temporary file (or find the local file of a file:// URL)."""
    options = options or {}
    if url.startswith("file://"):
        return _local(url, options, last_modified)
    own = client is None
    if own:
        timeout = float(option(options, "timeout"))
        client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)), follow_redirects=True,
                              headers={"User-Agent": USER_AGENT})
    try:
        retries, backoff = int(option(options, "retries")), float(option(options, "backoff"))
        for attempt in range(retries + 1):
            try:
                return _attempt(client, url, options, etag, last_modified, workdir)
            except TransientError as e:
                if attempt == retries:
                    raise
                time.sleep(min(e.retry_after or 0, 60) or backoff * 2 ** attempt)
        raise AssertionError("unreachable")
    finally:
        if own:
            client.close()


def _attempt(client: httpx.Client, url: str, options: dict, etag: str | None, last_modified: str | None,
             workdir: str | None) -> Download:
    headers = {"Accept-Encoding": "gzip"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    method = str(options.get("method") or "GET").upper()
    body = options.get("body")
    max_bytes, max_seconds = int(option(options, "max_bytes")), float(option(options, "max_seconds"))
    started = time.monotonic()
    try:
        with client.stream(method, url, headers=headers,
                           content=None if body is None else str(body).encode()) as response:
            if response.status_code == 304:
                return Download(None, _filename(url), etag, last_modified)
            if response.status_code == 429 or response.status_code >= 500:
                raise TransientError(f"HTTP {response.status_code} from {url}",
                                     _retry_after(response.headers.get("Retry-After")))
            if response.status_code >= 400:
                raise SourceError(f"HTTP {response.status_code} from {url}")
            if response.status_code != 200:
                raise SourceError(f"unexpected HTTP {response.status_code} from {url}")
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise SourceError(f"file too large: Content-Length {int(length):,} bytes exceeds the limit "
                                  f"of {max_bytes:,} (options.max_bytes)")
            fd, name = tempfile.mkstemp(prefix="pounce-source-", dir=workdir)
            path = Path(name)
            try:
                with os.fdopen(fd, "wb") as out:
                    for chunk in response.iter_bytes(1 << 16):
                        if response.num_bytes_downloaded > max_bytes:
                            raise SourceError(f"file too large: more than {max_bytes:,} bytes "
                                              f"(options.max_bytes); download stopped")
                        if time.monotonic() - started > max_seconds:
                            raise TransientError(f"download of {url} took longer than {max_seconds:.0f} s")
                        out.write(chunk)
            except BaseException:
                _unlink(path)
                raise
            return Download(path, _filename(str(response.url)), response.headers.get("ETag"),
                            response.headers.get("Last-Modified"))
    except httpx.TimeoutException as e:
        raise TransientError(f"timed out fetching {url} ({type(e).__name__}, timeout "
                             f"{option(options, 'timeout')} s)") from None
    except httpx.TransportError as e:
        raise TransientError(f"fetching {url} failed: {type(e).__name__}: {e}") from None


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def _local(url: str, options: dict, last_modified: str | None) -> Download:
    path = Path(unquote(urlsplit(url).path))
    try:
        stat = path.stat()
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror}") from None
    max_bytes = int(option(options, "max_bytes"))
    if stat.st_size > max_bytes:
        raise SourceError(f"file too large: {stat.st_size:,} bytes exceeds the limit of {max_bytes:,}")
    stamp = formatdate(stat.st_mtime, usegmt=True)
    if last_modified == stamp:
        return Download(None, path.name, None, stamp, temporary=False)
    return Download(path, path.name, None, stamp, temporary=False)


# =============================================================================
# Unpacking
# =============================================================================

class LimitedReader:
    """A read-only stream that refuses to give more than `limit` bytes (zip bombs) and
    turns the unpackers' damage errors into one TransientError."""

    def __init__(self, raw: BinaryIO, limit: int):
        self.raw, self.limit, self.count = raw, limit, 0

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        try:
            data = self.raw.read(n)
        except (EOFError, zlib.error, zipfile.BadZipFile, gzip.BadGzipFile) as e:
            raise TransientError(f"the file is damaged or truncated ({type(e).__name__}: {e})") from None
        self.count += len(data)
        if self.count > self.limit:
            raise SourceError(f"unpacked data exceeds the limit of {self.limit:,} bytes (options.max_unpacked_bytes)")
        return data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self.raw.close()

    @property
    def closed(self) -> bool:
        return False


@contextmanager
def open_unpacked(path: Path, filename: str, options: dict | None = None) -> Iterator[tuple[BinaryIO, str]]:
    """The file's bytes as a stream, unzipped (the archive's one file, or its first) or
    gunzipped, with the name of what is inside (for dates in file names)."""
    limit = int(option(options or {}, "max_unpacked_bytes"))
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] == b"PK":
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as e:
            raise TransientError(f"the zip file is damaged or truncated ({e})") from None
        with archive:
            members = [m for m in archive.infolist() if not m.is_dir()]
            if not members:
                raise FormatError("the zip file contains no file")
            member = members[0]
            if member.file_size > limit:
                raise SourceError(f"{member.filename} unpacks to {member.file_size:,} bytes, more than the limit "
                                  f"of {limit:,} (options.max_unpacked_bytes)")
            with archive.open(member) as raw:
                yield LimitedReader(raw, limit), member.filename
    elif magic[:2] == b"\x1f\x8b":
        with gzip.open(path, "rb") as raw:
            yield LimitedReader(raw, limit), filename[:-3] if filename.endswith(".gz") else filename
    else:
        with open(path, "rb") as raw:
            yield LimitedReader(raw, limit), filename
