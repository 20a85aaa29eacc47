"""HTTP access to mirrors: retries with backoff, resumable verified downloads.

This is the single network seam: everything distill downloads goes through a
:class:`Transport`, so tests point it at a repository served on 127.0.0.1.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from distill import http
from distill.archive.cache import sha256_file
from distill.errors import ArchiveError, IntegrityError, NetworkError, NotFoundError

OFFLINE_HINT = "check the mirror URL and the network, or use --offline to work from the cache"
# Files read whole into memory (InRelease, Packages indexes) unless the caller knows the
# size from a signed record; .debs stream to disk capped by their signed Size.
MAX_GET = 256 << 20
MAX_INRELEASE = 16 << 20  # Debian's is ~200 KiB
_RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Fetched:
    status: int  # 200, or 304 when the validators matched
    content: bytes
    etag: str | None
    last_modified: str | None


class _Retry(Exception):
    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


class Transport:
    def __init__(
        self,
        *,
        retries: int = 4,
        backoff: float = 0.5,
        timeout: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.retries = retries
        self.backoff = backoff
        self.total = http.total_timeout()  # per file, retries included (DISTILL_HTTP_TIMEOUT)
        self.client = client or http.client(
            read=timeout,
            follow_redirects=True,
            headers={"User-Agent": "distill/0.1"},
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        )

    def close(self) -> None:
        self.client.close()

    def _sleep(self, attempt: int, end: float) -> None:
        pause = self.backoff * (2**attempt) * (0.5 + random.random() / 2)
        time.sleep(max(0.0, min(pause, end - time.monotonic())))

    def _with_retries(self, url: str, attempt_fn: Callable[[], Fetched | None]) -> Fetched | None:
        last = ""
        with http.deadline(self.total) as end:
            for attempt in range(self.retries + 1):
                try:
                    return attempt_fn()
                except _Retry as exc:
                    last = exc.cause
                except (httpx.TransportError, httpx.StreamError) as exc:
                    last = _describe(exc)
                except httpx.InvalidURL as exc:  # a mirror URL httpx cannot parse: no retry helps
                    raise NetworkError(
                        f"cannot fetch {url[:200]!r}: not a valid URL ({exc})",
                        hint="check the mirror URL (--mirror, DISTILL_MIRROR or the spec's sources)",
                    ) from None
                if http.expired():
                    raise NetworkError(
                        f"cannot fetch {url}: no complete answer within {self.total:g} s ({last})",
                        hint=f"a slow or stalled mirror; {http.ENV_TIMEOUT} sets the time allowed per file",
                    )
                if attempt < self.retries:
                    self._sleep(attempt, end)
        raise NetworkError(f"cannot fetch {url}: {last}", hint=OFFLINE_HINT)

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        max_size: int = MAX_GET,
    ) -> Fetched:
        """GET a file of at most ``max_size`` bytes into memory, conditionally when
        validators are given."""
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified

        def attempt() -> Fetched:
            with self.client.stream("GET", url, headers=headers) as r:
                _check_status(url, r.status_code)
                try:
                    content = http.read_capped(r, max_size)
                except http.TooLarge as exc:
                    raise ArchiveError(
                        f"{url}: {exc}", hint="not a Debian archive file; check the mirror"
                    ) from None
                return Fetched(r.status_code, content, r.headers.get("etag"), r.headers.get("last-modified"))

        result = self._with_retries(url, attempt)
        assert result is not None
        return result

    def download(
        self,
        url: str,
        dest: Path,
        *,
        sha256: str,
        size: int,
        partial: Path,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Download ``url`` to ``dest``, verifying SHA256 and size before it appears.

        Bytes go to ``partial`` first; an interrupted transfer is resumed from there
        (HTTP Range) on the next attempt or the next run, and restarted from zero
        when the server ignores the range. A file that fails verification is deleted,
        never moved into place.
        """
        partial.parent.mkdir(parents=True, exist_ok=True)

        def attempt() -> None:
            have = partial.stat().st_size if partial.exists() else 0
            if have > size:
                partial.unlink()
                have = 0
            headers = {"Range": f"bytes={have}-"} if 0 < have < size else {}
            if have == size:
                return None
            with self.client.stream("GET", url, headers=headers) as r:
                if r.status_code == 416:  # range not satisfiable: start again
                    partial.unlink(missing_ok=True)
                    raise _Retry("server refused the resume range")
                _check_status(url, r.status_code)
                mode = "ab" if r.status_code == 206 and have else "wb"
                written = have if mode == "ab" else 0
                with open(partial, mode) as f:
                    for chunk in r.iter_bytes():  # as received, so a cut keeps its bytes
                        written += len(chunk)
                        if written > size:
                            break
                        f.write(chunk)
                        if progress:
                            progress(len(chunk))
                        if http.expired():  # kept: the next attempt or run resumes from here
                            raise httpx.ReadTimeout("the total deadline of the request passed")
                if written > size:
                    partial.unlink(missing_ok=True)
                    raise IntegrityError(
                        f"{url} is larger than the {size} bytes its index records",
                        hint="the mirror may be mid-sync; try again later",
                    )
                if written < size:
                    raise _Retry(f"transfer ended after {written} of {size} bytes")
            return None

        self._with_retries(url, attempt)
        digest = sha256_file(partial)
        if digest != sha256:
            partial.unlink(missing_ok=True)
            raise IntegrityError(
                f"{url} has SHA256 {digest}, but its signed index records {sha256}",
                hint="the mirror may be mid-sync or tampered with; nothing was cached",
            )
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, dest)


def _check_status(url: str, status: int) -> None:
    if status in (200, 206, 304):
        return
    if status == 404 or status == 410:
        raise NotFoundError(f"{url} does not exist on the mirror (HTTP {status})")
    if status in _RETRY_STATUS:
        raise _Retry(f"HTTP {status}")
    raise ArchiveError(f"cannot fetch {url}: HTTP {status}")


def _describe(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({text})"
    if isinstance(exc, httpx.TimeoutException):
        return "timed out"
    return text
