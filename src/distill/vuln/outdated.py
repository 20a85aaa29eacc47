"""``distill outdated``: for every locked or installed Debian package, the newest candidate
in the suites, and what the changelog entries between the two name (CVE ids, urgency).

An update is a *security* update when its candidate comes from a ``-security`` suite or
its changelog entries name a CVE; the others are ordinary updates (point-release fixes,
timezone data, ...). Changelog entries are compared by *source* version (a binNMU
``+b1`` changes the binary's version, not its source's).
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field

from distill.archive.cache import CorruptEntryError, atomic_write, read_sealed, seal
from distill.archive.repo import Archive
from distill.debian.packages import Package
from distill.debian.version import version_key
from distill.progress import Reporter
from distill.vuln.archive import Changelog, Changelogs
from distill.vuln.changelog import Entry, between
from distill.vuln.model import Pkg

_FORMAT = 1
URGENCIES = ("unknown", "low", "medium", "high", "emergency", "critical")


@dataclass
class Update:
    """A newer candidate for one installed package (on one or more architectures)."""

    package: Pkg
    candidate: Package
    archs: list[str]
    entries: list[Entry] = field(default_factory=list)
    changelog: str = ""  # the binary the changelog came from, or why there is none

    @property
    def cves(self) -> list[str]:
        seen: dict[str, None] = {}
        for e in self.entries:
            for c in e.cves:
                seen.setdefault(c)
        return list(seen)

    @property
    def urgency(self) -> str:
        best = "unknown"
        for e in self.entries:
            u = e.urgency if e.urgency in URGENCIES else "unknown"
            if URGENCIES.index(u) > URGENCIES.index(best):
                best = u
        return best

    @property
    def security(self) -> bool:
        return self.candidate.suite.endswith("-security") or bool(self.cves)

    def fixed_in(self, cve: str) -> Entry | None:
        """The oldest entry (the first upload) in the update that names ``cve``."""
        hits = [e for e in self.entries if cve in e.cves]
        return min(hits, key=lambda e: version_key(e.version)) if hits else None


@dataclass
class Outdated:
    target: str
    suites: list[str]
    checked: int
    updates: list[Update]
    notes: list[str] = field(default_factory=list)
    kind: str = "lock"  # spec | lock | image | sbom

    @property
    def security(self) -> list[Update]:
        return [u for u in self.updates if u.security]

    @property
    def ordinary(self) -> list[Update]:
        return [u for u in self.updates if not u.security]


_CANDIDATE_FIELDS = ("name", "version", "architecture", "filename", "size", "sha256", "installed_size",
                     "source", "source_version", "suite", "component")  # fmt: skip


def _candidates_key(archive: Archive, installed: dict[str, list[Pkg]]) -> str:
    """What the answer depends on: the verified InRelease of every suite (which pins every
    index by its SHA256) and the names asked about."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=max(1, min(len(archive.sources), archive.jobs))) as pool:
        states = list(pool.map(archive.suite, archive.sources))  # one gpgv each, side by side
    suites = sorted(
        (st.source.base, st.source.suite, list(st.source.components), st.inrelease_sha256) for st in states
    )
    names = {arch: sorted({p.name for p in pkgs}) for arch, pkgs in sorted(installed.items())}
    return hashlib.sha256(json.dumps([_FORMAT, suites, names]).encode()).hexdigest()


def candidates(archive: Archive, installed: dict[str, list[Pkg]]) -> dict[tuple[str, str], Package]:
    """(arch, package name) -> the best candidate in the suites (the highest version).

    The answer is kept as a sealed cache entry named by the suites' InRelease digests and
    the names: a warm run verifies the InRelease files and loads no package index."""
    path = archive.cache.vuln_path(_candidates_key(archive, installed), "candidates")
    try:
        payload = read_sealed(path, "candidate table")
    except CorruptEntryError:
        payload = None
    if payload is not None:
        try:
            rows = json.loads(payload)
            return {(a, n): _package(f) for a, n, f in rows}
        except (ValueError, TypeError, KeyError):
            pass
    out: dict[tuple[str, str], Package] = {}
    universes = archive.universes(sorted(installed))
    for arch, pkgs in installed.items():
        u = universes[arch]
        for p in pkgs:
            cands = u.candidates(p.name)
            if cands:
                out[(arch, p.name)] = cands[0]
    rows_out = [[a, n, {f: getattr(p, f) for f in _CANDIDATE_FIELDS}] for (a, n), p in sorted(out.items())]
    atomic_write(path, seal(json.dumps(rows_out).encode()))
    return out


def _package(f: dict[str, object]) -> Package:
    """A candidate from the table: the fields an update needs (no relations)."""
    values = {k: f[k] for k in _CANDIDATE_FIELDS}
    if not all(isinstance(values[k], int) for k in ("size", "installed_size")):
        raise TypeError("sizes")
    if not all(isinstance(values[k], str) for k in _CANDIDATE_FIELDS if k not in ("size", "installed_size")):
        raise TypeError("fields")
    return Package(
        multi_arch="no", depends=(), pre_depends=(), conflicts=(), breaks=(), provides=(), priority="optional",
        essential=False, **values,  # type: ignore[arg-type]
    )  # fmt: skip


def find_updates(
    archive: Archive,
    installed: dict[str, list[Pkg]],
    *,
    reporter: Reporter | None = None,
    jobs: int = 4,
    best: dict[tuple[str, str], Package] | None = None,
) -> list[Update]:
    """Every installed package with a newer candidate, with the changelog entries between."""
    best = best if best is not None else candidates(archive, installed)
    rows: dict[tuple[str, str, str], Update] = {}
    for arch in sorted(installed):
        for p in installed[arch]:
            cand = best.get((arch, p.name))
            if cand is None or version_key(cand.version) <= version_key(p.version):
                continue
            key = (p.name, p.version, cand.version)
            row = rows.get(key)
            if row is None:
                rows[key] = Update(p, cand, [arch])
            else:
                row.archs.append(arch)
    if not rows:
        return []
    # One changelog per source upload: read from the smallest candidate .deb of that upload.
    reps: dict[tuple[str, str], tuple[str, Package]] = {}
    for u in rows.values():
        k = (u.candidate.source, u.candidate.source_version)
        cur = reps.get(k)
        if cur is None or u.candidate.size < cur[1].size:
            reps[k] = (u.archs[0], u.candidate)
    logs: dict[str, Changelog] = {}
    getter = Changelogs(archive, reporter, jobs)
    for arch in sorted({a for a, _ in reps.values()}):
        pkgs = [p for a, p in reps.values() if a == arch]
        logs.update(getter.get(pkgs, functools.partial(archive.universe, arch)))
    for u in rows.values():
        _, rep = reps[(u.candidate.source, u.candidate.source_version)]
        log = logs.get(rep.sha256)
        if log is None or log.entries is None:
            u.changelog = log.why if log else "no changelog"
            continue
        u.changelog = log.origin
        u.entries = between(log.entries, u.package.match_version, u.candidate.source_version)
    return sorted(rows.values(), key=lambda u: (not u.security, u.package.name))
