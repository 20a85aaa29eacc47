"""What ``distill lock --update`` changed: package by package, old -> new, with the CVE
ids the new version's changelog names since the old one; packages added or removed."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from distill.archive.repo import Archive
from distill.debian.packages import Package
from distill.debian.version import version_key
from distill.errors import LockError
from distill.progress import Reporter
from distill.resolve.lock import Lock, LockedPackage
from distill.vuln.archive import Changelogs
from distill.vuln.changelog import between


@dataclass
class Change:
    name: str
    archs: list[str]
    old: LockedPackage | None
    new: LockedPackage | None
    cves: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "upgraded" if version_key(self.new.version) > version_key(self.old.version) else "downgraded"

    def to_json(self) -> dict[str, Any]:
        return {
            "package": self.name,
            "archs": self.archs,
            "change": self.kind,
            "old": self.old.version if self.old else None,
            "new": self.new.version if self.new else None,
            "cves": self.cves,
        }

    def line(self) -> str:
        archs = f" ({', '.join(self.archs)})" if len(self.archs) > 1 else ""
        if self.old is None:
            assert self.new is not None
            return f"+ {self.name} {self.new.version}{archs} (added)"
        if self.new is None:
            return f"- {self.name} {self.old.version}{archs} (removed)"
        fixed = ""
        if self.cves:
            shown = ", ".join(self.cves[:8]) + (", …" if len(self.cves) > 8 else "")
            fixed = f" (fixes {len(self.cves)} CVE{'s' if len(self.cves) > 1 else ''}: {shown})"
        return f"  {self.name}: {self.old.version} → {self.new.version}{archs}{fixed}"


def names_to_update(lock: Lock, names: list[str]) -> set[str]:
    """The locked binaries ``names`` mean (a binary or a source name each); an unknown name
    is an error."""
    every = [p for pkgs in lock.packages.values() for p in pkgs]
    out: set[str] = set()
    for n in names:
        hit = {p.name for p in every if n in (p.name, p.source)}
        if not hit:
            raise LockError(f"--update {n}: no package or source package of that name is in the lock")
        out |= hit
    return out


def prefer_for(lock: Lock, moving: set[str] | None) -> dict[str, dict[str, str]]:
    """arch -> package -> locked version, for every package that is not to move (``moving``
    None: everything moves)."""
    if moving is None:
        return {}
    return {
        arch: {p.name: p.version for p in pkgs if p.name not in moving}
        for arch, pkgs in lock.packages.items()
    }


def diff(old: Lock, new: Lock) -> list[Change]:
    rows: dict[tuple[str, str | None, str | None], Change] = {}
    for arch in sorted(set(old.packages) | set(new.packages)):
        a = {p.name: p for p in old.packages.get(arch, [])}
        b = {p.name: p for p in new.packages.get(arch, [])}
        for name in sorted(set(a) | set(b)):
            x, y = a.get(name), b.get(name)
            if x is not None and y is not None and x.version == y.version:
                continue
            key = (name, x.version if x else None, y.version if y else None)
            if key in rows:
                rows[key].archs.append(arch)
            else:
                rows[key] = Change(name, [arch], x, y)
    order = {"upgraded": 0, "downgraded": 1, "added": 2, "removed": 3}
    return sorted(rows.values(), key=lambda c: (order[c.kind], c.name))


def with_cves(
    changes: list[Change], archive: Archive, reporter: Reporter | None = None, jobs: int = 4
) -> None:
    """Fill in the CVE ids each upgrade's changelog names since the old version."""
    ups = [c for c in changes if c.kind == "upgraded" and c.new is not None and c.old is not None]
    if not ups:
        return
    getter = Changelogs(archive, reporter, jobs)
    for arch in sorted({c.archs[0] for c in ups}):
        universe = archive.universe(arch)
        mine = [c for c in ups if c.archs[0] == arch]
        pkgs: dict[str, Package] = {}
        for c in mine:
            assert c.new is not None
            hit = next((p for p in universe.candidates(c.name) if p.sha256 == c.new.sha256), None)
            if hit is not None:
                pkgs[c.name] = hit
        logs = getter.get(pkgs.values(), functools.partial(archive.universe, arch))
        for c in mine:
            p = pkgs.get(c.name)
            log = logs.get(p.sha256) if p else None
            if log is None or log.entries is None:
                continue
            assert c.old is not None and c.new is not None
            seen: dict[str, None] = {}
            for e in between(log.entries, c.old.source_version, c.new.source_version):
                for cve in e.cves:
                    seen.setdefault(cve)
            c.cves = list(seen)
