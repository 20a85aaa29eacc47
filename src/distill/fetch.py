"""Parallel, verified downloads of the .deb files a lock names."""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from distill.archive.cache import Cache
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
