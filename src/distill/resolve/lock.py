"""The lockfile: the exact result of a resolution, per architecture.

``<spec>.lock.json`` records, for every architecture, each package's name,
version, architecture, SHA256, size, archive path, suite and component, why it is
there, and every pruned edge; plus the checksum of the spec it came from, so a
later build can tell that the spec changed since (``--locked``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from distill.archive.cache import atomic_write, is_digest
from distill.debian.packages import Package
from distill.errors import LockError
from distill.limits import read_json
from distill.resolve.solver import Resolution
from distill.upstream.nodejs import LockedArchive, archive_problem

LOCK_VERSION = 2

# Lock fields that become paths or URL pieces. A pool path: relative, segments that
# start with a letter, digit or '_' (so never '.' or '..'), no space, control
# character, '?', '#' or backslash; Debian writes an epoch's ':' as '%3a'.
_POOL_PATH = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+~%:@=-]*(/[A-Za-z0-9_][A-Za-z0-9._+~%:@=-]*)*")
# Suites and components (Debian's charset; '/' as in 'updates/main', never '..').
_ARCHIVE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+~-]*(/[A-Za-z0-9][A-Za-z0-9._+~-]*)*")
_ARCH = re.compile(r"[a-z0-9][a-z0-9-]*")
_INTS = {"size", "installed_size"}
_OPTIONAL = {"required_by"}


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
class LockedBase:
    """The image an app goes on (``from:``), pinned: as the spec names it, and the digest
    of its top document (an index or a manifest) when the lock was written."""

    image: str
    digest: str


_IMAGE_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Lock:
    spec_sha256: str
    distro: str
    suites: list[LockedSuite]
    packages: dict[str, list[LockedPackage]]  # arch -> packages
    pruned: dict[str, list[dict[str, str]]]  # arch -> edges
    layers: list[str] = field(default_factory=list)  # the chain's levels, root first
    debug: dict[str, list[LockedPackage]] = field(default_factory=dict)  # arch -> debug-variant extras
    archives: dict[str, list[LockedArchive]] = field(default_factory=dict)  # arch -> release archives
    base: LockedBase | None = None  # an app on an image: that image, by digest

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
                    **(
                        {"archives": [asdict(a) for a in self.archives[arch]]}
                        if self.archives.get(arch)
                        else {}
                    ),
                }
                for arch in self.archs
            },
        }
        if self.base is not None:
            doc["base"] = asdict(self.base)
        return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def package_problem(p: LockedPackage) -> str | None:
    """What makes a locked package unsafe to use (its field and why), or None.

    Its SHA256 names a cache file, its filename and suite a URL and its architecture
    a section of the lock: each must be what Debian writes, never a path of its own."""
    for f in fields(LockedPackage):
        value = getattr(p, f.name)
        if f.name in _INTS:
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                return f"{f.name}: not a size in bytes"
        elif not isinstance(value, str) and not (value is None and f.name in _OPTIONAL):
            return f"{f.name}: not a string"
    if not is_digest(p.sha256):
        return "sha256: not a SHA256 digest (64 lowercase hex digits)"
    if not _POOL_PATH.fullmatch(p.filename) or len(p.filename) > 1024:
        return "filename: not a relative pool path"
    for name in ("suite", "component"):
        if not _ARCHIVE_NAME.fullmatch(getattr(p, name)):
            return f"{name}: not a Debian archive name"
    if not _ARCH.fullmatch(p.architecture):
        return "architecture: not a Debian architecture name"
    return None


def locked(p: Package, res: Resolution | None, layer: str) -> LockedPackage:
    reason = res.reasons[p.name] if res is not None else None
    out = LockedPackage(
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
    problem = package_problem(out)
    if problem is not None:
        raise LockError(f"the index entry of {p.name} {p.version} ({p.suite}) is unusable: {problem}")
    return out


def lock_from(
    spec_sha256: str,
    distro: str,
    suites: list[LockedSuite],
    resolutions: dict[str, Resolution],
    layers: list[str] | None = None,
    assignment: dict[str, dict[str, str]] | None = None,
    debug: dict[str, Resolution] | None = None,
    archives: dict[str, list[LockedArchive]] | None = None,
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
    return Lock(spec_sha256, distro, suites, packages, pruned, layers, extras, archives or {})


def default_lock_path(spec_path: Path, builtin: bool, distro: str | None = None) -> Path:
    """SPEC.lock.json beside the spec (a built-in's: in the current directory); for a
    ``--distro`` other than the spec's own, SPEC.DISTRO.lock.json, so that each distro's
    lock has its own file."""
    name = spec_path.name
    stem = name[: -len(spec_path.suffix)] if spec_path.suffix in (".yaml", ".yml") else name
    directory = Path.cwd() if builtin else spec_path.parent
    return directory / (f"{stem}.{distro}.lock.json" if distro else f"{stem}.lock.json")


def write_lock(lock: Lock, path: Path) -> None:
    try:
        atomic_write(path, lock.to_json().encode())
    except OSError as exc:
        raise LockError(f"cannot write {path}: {exc.strerror}") from None


def read_lock(path: Path) -> Lock:
    if not path.exists() and not path.is_symlink():
        raise LockError(
            f"no lockfile at {path}", hint="run 'distill lock SPEC' first (with the same --distro)"
        )
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
        archives = {a: [LockedArchive(**x) for x in v.get("archives", [])] for a, v in doc["archs"].items()}
        base = LockedBase(**doc["base"]) if doc.get("base") is not None else None
        lock = Lock(
            doc["spec_sha256"],
            doc["distro"],
            suites,
            packages,
            pruned,
            list(doc["layers"]),
            debug,
            archives,
            base,
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise LockError(f"{path} is not a distill lockfile ({exc})") from None
    _check_lock(lock, path)
    return lock


def _check_lock(lock: Lock, path: Path) -> None:
    """Refuse a lock whose values would name paths or URLs of their own (a tampered lock)."""
    for arch in lock.packages:
        if not isinstance(arch, str) or not _ARCH.fullmatch(arch):
            raise LockError(f"{path}: archs.{str(arch)[:40]!r} is not a Debian architecture name")
    tables: list[tuple[str, dict[str, list[Any]], Callable[[Any], str | None]]] = [
        ("packages", lock.packages, package_problem),
        ("debug", lock.debug, package_problem),
        ("archives", lock.archives, archive_problem),
    ]
    for kind, table, check in tables:
        for arch, entries in table.items():
            for i, entry in enumerate(entries):
                problem = check(entry)
                if problem is not None:
                    raise LockError(
                        f"{path}: archs.{arch}.{kind}[{i}].{problem}",
                        hint="a lock is written by 'distill lock SPEC'; do not build from an edited one",
                    )
    if lock.base is not None:
        if not isinstance(lock.base.digest, str) or not _IMAGE_DIGEST.fullmatch(lock.base.digest):
            raise LockError(f"{path}: base.digest: not a sha256: digest")
        if not isinstance(lock.base.image, str) or not 0 < len(lock.base.image) <= 4096:
            raise LockError(f"{path}: base.image: not an image name")
    for i, s in enumerate(lock.suites):
        if not isinstance(s.suite, str) or not _ARCHIVE_NAME.fullmatch(s.suite):
            raise LockError(f"{path}: suites[{i}].suite: not a Debian archive name")
        if not is_digest(s.inrelease_sha256):
            raise LockError(f"{path}: suites[{i}].inrelease_sha256: not a SHA256 digest")


def check_current(
    lock: Lock, spec_sha256: str, path: Path, archs: list[str] | None = None, distro: str | None = None
) -> None:
    """Raise :class:`LockError` unless the lock was made from this spec, for these archs
    (and this distro: a lock for another one is said to be that, not a changed spec)."""
    if distro is not None and lock.distro != distro:
        raise LockError(
            f"{path} is the lock for {lock.distro}, not {distro}",
            hint=f"lock {distro} with 'distill lock SPEC --distro {distro}' (it writes and then reads "
            f"SPEC.{distro}.lock.json), or name another lock with --lock FILE",
        )
    if lock.spec_sha256 != spec_sha256:
        raise LockError(
            f"{path} is out of date: the spec changed since it was written",
            hint="run 'distill lock SPEC' to update it",
        )
    if lock.base is not None:
        return  # an app on an image: the architectures are the image's (checked when read)
    missing = [a for a in archs or [] if a not in lock.packages]
    if missing:
        raise LockError(
            f"{path} has no {', '.join(missing)} section",
            hint="run 'distill lock SPEC' for those architectures",
        )
