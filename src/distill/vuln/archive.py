"""The Debian archive as a vulnerability source: the changelogs of candidate packages.

For a package that has a newer candidate in the suites, the candidate's .deb is fetched
(verified against its signed index and cached like any .deb), its
``usr/share/doc/NAME/changelog.Debian.gz`` read, and the parsed entries kept as a sealed
cache entry named by the .deb's SHA256 (``vuln/<sha256>.changelog``): a warm run reads
no .deb at all. When the doc directory is a symbolic link to a sibling package of the
same source (``libgcc-s1`` -> ``gcc-14-base``, as Debian policy allows), the changelog
is read from that sibling's .deb.
"""

from __future__ import annotations

import contextlib
import json
import posixpath
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from distill.archive.cache import CorruptEntryError, atomic_write, read_sealed, seal
from distill.archive.index import Universe
from distill.archive.repo import Archive
from distill.debian.deb import DebFormatError, open_deb
from distill.debian.packages import Package
from distill.fetch import fetch_debs
from distill.progress import Reporter
from distill.resolve.lock import locked
from distill.vuln.changelog import ChangelogError, Entry, decompress, parse

_FORMAT = 1


@dataclass(frozen=True)
class Changelog:
    """What a candidate .deb says about its source's history (``entries`` None: it has no
    readable changelog, and ``why`` says so)."""

    entries: list[Entry] | None
    origin: str  # the binary package whose .deb held it
    why: str = ""


def _doc_paths(name: str) -> tuple[str, ...]:
    doc = f"usr/share/doc/{name}"
    return (doc, f"{doc}/changelog.Debian.gz", f"{doc}/changelog.gz")


def _read(path_deb: Path, name: str, version: str) -> tuple[bytes | None, str | None]:
    """(changelog bytes, None) or (None, link target of the doc directory) or (None, None)."""
    doc, debian, native = _doc_paths(name)
    found = open_deb(path_deb).files(lambda p: p in (doc, debian, native))
    link = found.get(doc)
    if isinstance(link, str):
        return None, link
    # Native packages (no Debian revision) ship changelog.gz; the others changelog.Debian.gz
    # (beside the upstream changelog.gz).
    for key in (debian, native) if "-" in version else (native, debian):
        data = found.get(key)
        if isinstance(data, bytes):
            return data, None
    return None, None


class Changelogs:
    """Changelogs of candidate packages, from the cache or their .debs."""

    def __init__(self, archive: Archive, reporter: Reporter | None = None, jobs: int = 4) -> None:
        self.archive = archive
        self.cache = archive.cache
        self.reporter = reporter or Reporter()
        self.jobs = jobs

    def _cached(self, p: Package) -> Changelog | None:
        path = self.cache.vuln_path(p.sha256, "changelog")
        try:
            payload = read_sealed(path, "changelog")
        except CorruptEntryError as exc:
            self.reporter.note(f"warning: {exc.message}; reading it again")
            return None
        if payload is None:
            return None
        try:
            doc = json.loads(payload)
            if doc.get("format") != _FORMAT:
                return None
            raw = doc["entries"]
            entries = None if raw is None else [Entry.from_json(e) for e in raw]
            return Changelog(entries, str(doc["origin"]), str(doc.get("why", "")))
        except (ValueError, KeyError, TypeError, AttributeError):
            with contextlib.suppress(OSError):
                path.unlink()
            return None

    def _store(self, p: Package, log: Changelog) -> None:
        doc = {
            "format": _FORMAT,
            "package": f"{p.name} {p.version} {p.architecture}",
            "origin": log.origin,
            "why": log.why,
            "entries": None if log.entries is None else [e.to_json() for e in log.entries],
        }
        atomic_write(self.cache.vuln_path(p.sha256, "changelog"), seal(json.dumps(doc).encode()))

    def get(self, packages: Iterable[Package], universe: Callable[[], Universe]) -> dict[str, Changelog]:
        """sha256 of each package -> its changelog (``universe`` is asked for only when a
        doc directory links to a sibling whose changelog is not cached)."""
        out: dict[str, Changelog] = {}
        missing: dict[str, Package] = {}
        for p in packages:
            got = self._cached(p)
            if got is not None:
                out[p.sha256] = got
            else:
                missing[p.sha256] = p
        if not missing:
            return out
        todo = sorted(missing.values(), key=lambda p: p.name)
        paths = fetch_debs(
            [locked(p, None, "") for p in todo],
            self.archive,
            self.cache,
            reporter=self.reporter,
            jobs=self.jobs,
        ).paths
        task = self.reporter.task(f"reading {len(todo)} changelogs", len(todo))

        def one(p: Package) -> tuple[Package, bytes | None, str | None, str]:
            try:
                data, link = _read(paths[p.sha256], p.name, p.version)
            except DebFormatError as exc:
                return p, None, None, exc.message
            self.reporter.advance(task, 1)
            return p, data, link, ""

        with ThreadPoolExecutor(max_workers=max(1, self.jobs)) as pool:
            results = list(pool.map(one, todo))
        # Doc directories that are links: the changelog is in a sibling of the same source.
        siblings: dict[str, tuple[Package, Package]] = {}
        for p, data, link, why in results:
            if data is not None:
                out[p.sha256] = self._parse(p, p.name, data)
            elif link is not None:
                target = posixpath.basename(posixpath.normpath(link))
                sib = _sibling(universe(), p, target)
                if sib is None:
                    out[p.sha256] = Changelog(
                        None, p.name, f"its doc directory links to {target}, not in the suites"
                    )
                else:
                    siblings[p.sha256] = (p, sib)
            else:
                out[p.sha256] = Changelog(None, p.name, why or "its .deb has no changelog.Debian.gz")
        if siblings:
            sib_paths = fetch_debs(
                [locked(s, None, "") for _, s in siblings.values()],
                self.archive,
                self.cache,
                reporter=self.reporter,
                jobs=self.jobs,
            ).paths
            for p, s in siblings.values():
                why = "its .deb has no changelog.Debian.gz"
                try:
                    data, _ = _read(sib_paths[s.sha256], s.name, s.version)
                except DebFormatError as exc:
                    data, why = None, exc.message
                if data is not None:
                    out[p.sha256] = self._parse(p, s.name, data)
                else:
                    out[p.sha256] = Changelog(None, s.name, why)
        self.reporter.done(task, f"read {len(todo)} changelogs")
        for sha, log in out.items():
            if sha in missing:
                self._store(missing[sha], log)
        return out

    def _parse(self, p: Package, origin: str, data: bytes) -> Changelog:
        what = f"{origin} {p.version}: changelog"
        try:
            return Changelog(parse(decompress(data, what), what), origin)
        except ChangelogError as exc:
            return Changelog(None, origin, exc.message)


def _sibling(universe: Universe, p: Package, name: str) -> Package | None:
    """The binary ``name`` built from the same source upload as ``p``."""
    for q in universe.candidates(name):
        if q.source == p.source and q.source_version == p.source_version:
            return q
    return None
