"""The lockfile: the exact result of a resolution, per architecture.

``<spec>.lock.json`` records, for every architecture, each package's name,
version, architecture, SHA256, size, archive path, suite and component, why it is
there, and every pruned edge; plus the checksum of the spec it came from, so a
later build can tell that the spec changed since (``--locked``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from distill.archive.cache import atomic_write
from distill.debian.packages import Package
from distill.errors import LockError
from distill.limits import read_json
from distill.resolve.solver import Resolution

LOCK_VERSION = 2


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    architecture: str
    sha256: str
    size: int
    filename: str
    suite: str
    component: str
    source: str
    source_version: str
    installed_size: int
    required_by: str | None
    relation: str
    layer: str = ""  # the level of the spec's composition chain that brings it in


@dataclass(frozen=True)
class LockedSuite:
    url: str
    suite: str
    inrelease_sha256: str
    date: str | None


@dataclass(frozen=True)
class Lock:
    spec_sha256: str
    distro: str
    suites: list[LockedSuite]
    packages: dict[str, list[LockedPackage]]  # arch -> packages
    pruned: dict[str, list[dict[str, str]]]  # arch -> edges
    layers: list[str] = field(default_factory=list)  # the chain's levels, root first
    debug: dict[str, list[LockedPackage]] = field(default_factory=dict)  # arch -> debug-variant extras

    @property
    def archs(self) -> list[str]:
        return sorted(self.packages)

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "lockVersion": LOCK_VERSION,
            "generator": "distill",
            "spec_sha256": self.spec_sha256,
            "distro": self.distro,
            "suites": [asdict(s) for s in self.suites],
            "layers": self.layers,
            "archs": {
                arch: {
                    "packages": [asdict(p) for p in self.packages[arch]],
                    "pruned": self.pruned.get(arch, []),
                    "debug": [asdict(p) for p in self.debug.get(arch, [])],
                }
                for arch in self.archs
            },
        }
        return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def locked(p: Package, res: Resolution | None, layer: str) -> LockedPackage:
    reason = res.reasons[p.name] if res is not None else None
    return LockedPackage(
        name=p.name,
        version=p.version,
        architecture=p.architecture,
        sha256=p.sha256,
        size=p.size,
        filename=p.filename,
        suite=p.suite,
        component=p.component,
        source=p.source,
        source_version=p.source_version,
        installed_size=p.installed_size,
        required_by=reason.parent if reason else None,
        relation=reason.relation if reason else p.name,
        layer=layer,
    )


def lock_from(
    spec_sha256: str,
    distro: str,
    suites: list[LockedSuite],
    resolutions: dict[str, Resolution],
    layers: list[str] | None = None,
    assignment: dict[str, dict[str, str]] | None = None,
    debug: dict[str, Resolution] | None = None,
) -> Lock:
    """The lock of a resolution; ``assignment`` maps arch -> package -> level name."""
    layers = layers or ["image"]
    packages: dict[str, list[LockedPackage]] = {}
    pruned: dict[str, list[dict[str, str]]] = {}
    extras: dict[str, list[LockedPackage]] = {}
    for arch, res in sorted(resolutions.items()):
        where = (assignment or {}).get(arch, {})
        packages[arch] = [locked(p, res, where.get(p.name, layers[-1])) for p in res.packages]
        pruned[arch] = [asdict(e) for e in res.pruned]
        if debug and arch in debug:
            have = {p.name for p in res.packages}
            extras[arch] = [
                locked(p, debug[arch], "debug") for p in debug[arch].packages if p.name not in have
            ]
    return Lock(spec_sha256, distro, suites, packages, pruned, layers, extras)


def default_lock_path(spec_path: Path, builtin: bool) -> Path:
    name = spec_path.name
    stem = name[: -len(spec_path.suffix)] if spec_path.suffix in (".yaml", ".yml") else name
    directory = Path.cwd() if builtin else spec_path.parent
    return directory / f"{stem}.lock.json"


def write_lock(lock: Lock, path: Path) -> None:
    try:
        atomic_write(path, lock.to_json().encode())
    except OSError as exc:
        raise LockError(f"cannot write {path}: {exc.strerror}") from None


def read_lock(path: Path) -> Lock:
    if not path.exists():
        raise LockError(f"no lockfile at {path}", hint="run 'distill lock SPEC' first")
    # bounded: size, nesting, a regular file (a lock may come from someone else's repository)
    doc = read_json(path, error=LockError, what="lockfile")
    try:
        if doc.get("lockVersion") != LOCK_VERSION:
            raise LockError(
                f"{path}: unsupported lockVersion {doc.get('lockVersion')!r} (this distill writes {LOCK_VERSION})",
                hint="run 'distill lock SPEC' to rewrite it",
            )
        suites = [LockedSuite(**s) for s in doc["suites"]]
        packages = {a: [LockedPackage(**p) for p in v["packages"]] for a, v in doc["archs"].items()}
        pruned = {a: list(v.get("pruned", [])) for a, v in doc["archs"].items()}
        debug = {a: [LockedPackage(**p) for p in v.get("debug", [])] for a, v in doc["archs"].items()}
        return Lock(doc["spec_sha256"], doc["distro"], suites, packages, pruned, list(doc["layers"]), debug)
    except (KeyError, TypeError, AttributeError) as exc:
        raise LockError(f"{path} is not a distill lockfile ({exc})") from None


def check_current(lock: Lock, spec_sha256: str, path: Path, archs: list[str] | None = None) -> None:
    """Raise :class:`LockError` unless the lock was made from this spec, for these archs."""
    if lock.spec_sha256 != spec_sha256:
        raise LockError(
            f"{path} is out of date: the spec changed since it was written",
            hint="run 'distill lock SPEC' to update it",
        )
    missing = [a for a in archs or [] if a not in lock.packages]
    if missing:
        raise LockError(
            f"{path} has no {', '.join(missing)} section",
            hint="run 'distill lock SPEC' for those architectures",
        )
