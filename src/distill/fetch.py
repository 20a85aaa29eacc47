"""Parallel, verified downloads of the .deb files a lock names."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from distill.archive.cache import Cache, damaged_offline, discard, file_lock
from distill.archive.repo import Archive
from distill.errors import CacheMissError, DistillError
from distill.progress import Reporter
from distill.resolve.lock import LockedPackage


@dataclass(frozen=True)
class FetchResult:
    paths: dict[str, Path]  # sha256 -> cached .deb
    downloaded: int  # files fetched this run
    bytes: int  # bytes fetched this run


def fetch_debs(
    packages: Iterable[LockedPackage],
    archive: Archive,
    cache: Cache,
    *,
    reporter: Reporter | None = None,
    jobs: int = 4,
) -> FetchResult:
    reporter = reporter or Reporter()
    unique = {p.sha256: p for p in packages}
    paths = {sha: cache.deb_path(sha) for sha in unique}
    missing = [p for sha, p in sorted(unique.items()) if not cache.has_deb(sha)]
    # What is already cached is read back and hashed: a damaged .deb is removed and
    # downloaded again (one warning), never reported as verified.
    cached = [p for sha, p in sorted(unique.items()) if cache.has_deb(sha)]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        intact = list(pool.map(lambda p: cache.deb_is_intact(p.sha256), cached))
    for p, ok in zip(cached, intact, strict=True):
        if not ok:
            discard(cache.deb_path(p.sha256))
            if archive.offline or archive.transport is None:
                raise damaged_offline(f"{p.name} {p.version}", cache.deb_path(p.sha256))
            reporter.note(
                f"warning: cached {p.name} {p.version} did not match its SHA256; downloading it again"
            )
            missing.append(p)
    if not missing:
        return FetchResult(paths, 0, 0)
    if archive.offline or archive.transport is None:
        names = ", ".join(p.name for p in missing[:5])
        raise CacheMissError(
            f"--offline, and {len(missing)} package(s) are not cached: {names}",
            hint="run once without --offline to fill the cache",
        )
    transport = archive.transport
    total = sum(p.size for p in missing)
    task = reporter.task(f"downloading {len(missing)} packages", total)

    def one(p: LockedPackage) -> None:
        url = archive.deb_url(p.suite, p.filename)
        # One writer per entry (across processes): the resumable partial file is shared
        # by name, so it is only ever touched under the entry's lock; a waiter finds the
        # finished .deb (verified before it was renamed into place) and is done.
        with file_lock(cache.lock_path(p.sha256)):
            if cache.has_deb(p.sha256):
                reporter.advance(task, p.size)
                return
            transport.download(
                url,
                cache.deb_path(p.sha256),
                sha256=p.sha256,
                size=p.size,
                partial=cache.partial_path(p.sha256),
                progress=lambda n: reporter.advance(task, n),
            )

    errors: list[DistillError] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for fut in [pool.submit(one, p) for p in missing]:
            try:
                fut.result()
            except DistillError as exc:
                errors.append(exc)
    reporter.done(task, f"downloaded {len(missing) - len(errors)} packages ({total // 1024} KiB)")
    if errors:
        raise errors[0]
    return FetchResult(paths, len(missing), total)
