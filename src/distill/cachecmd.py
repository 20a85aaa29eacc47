"""``distill cache verify`` and ``distill cache prune``: the user's tools for the cache.

:func:`verify` hashes every entry (the same checks a build makes when it reads one) and
removes the bad ones; :func:`prune` removes entries by age and/or to fit a size, never
one that a given lock needs (its .debs and their expanded forms). Both leave alone a
writer's temporary files (names starting with '.') and the resumable downloads in
``tmp/``. The application caches (``apps/``, ``npm/``) are checked by the app module's
:func:`distill.app.cachecheck.verify_app_cache`.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from distill.app.cachecheck import verify_app_cache
from distill.archive.cache import discard, is_digest, read_entry, sha256_file, unseal
from distill.errors import DistillError
from distill.fswalk import walk
from distill.limits import parse_size

# Directory -> what its entries are (for messages).
_KINDS = {
    "debs": "package",
    "archives": "release archive",
    "indexes": "index",
    "expanded": "expanded package",
    "layers": "layer",
    "sbom": "SBOM record",
    "blobs": "blob",
    "vuln": "vulnerability data",
    "fleet": "fleet audit",
}


@dataclass(frozen=True)
class Entry:
    """One cache entry: the files that stand or fall together."""

    kind: str
    key: str
    paths: tuple[Path, ...]

    def size(self) -> int:
        return sum(_stat(p)[0] for p in self.paths)

    def last_used(self) -> float:
        return max(_stat(p)[1] for p in self.paths)


@dataclass
class Report:
    checked: int = 0
    removed: list[tuple[Path, str]] = field(default_factory=list)  # (path, why)
    freed: int = 0


# Every name distill writes at the top of a cache (archive/cache.py, assemble/expand.py,
# oci/, app/): verify and prune remove files under some of them, so they refuse a
# directory holding anything else (a mistyped --cache-dir: a project, an OCI layout).
_CACHE_NAMES = {
    "archives",
    "blobs",
    "debs",
    "expanded",
    "indexes",
    "layers",
    "lists",
    "tmp",
    "apps",
    "npm",
    "pip",
    "vuln",
    "sbom",
    "fleet",
}


def check_root(root: Path) -> None:
    """Refuse a directory that is not a distill cache: a layout's ``blobs/`` or a
    project's ``debs/`` would otherwise be "pruned" or "verified" away."""
    try:
        names = sorted(n for n in os.listdir(root) if not n.startswith("."))
    except FileNotFoundError:
        return  # nothing to check, nothing to remove
    except OSError as exc:
        raise DistillError(f"cannot read the cache {root}: {exc.strerror}") from None
    foreign = [n for n in names if n not in _CACHE_NAMES]
    if foreign:
        raise DistillError(
            f"{root} is not a distill cache (it holds {foreign[0]!r}, which distill never writes there); "
            "refusing to remove anything from it",
            hint="--cache-dir names the cache itself (default: $XDG_CACHE_HOME/distill, ~/.cache/distill)",
        )


def _stat(p: Path) -> tuple[int, float]:
    try:
        st = p.stat()
    except OSError:
        return 0, 0.0
    return st.st_size, max(st.st_atime, st.st_mtime)


def _files(d: Path) -> list[Path]:
    try:
        # Anything but a directory: a FIFO or device in an entry's place is a bad entry
        # (verify removes it; a build would otherwise find it there).
        return sorted(p for p in d.iterdir() if not p.name.startswith(".") and not p.is_dir())
    except OSError:
        return []


def entries(root: Path) -> Iterator[Entry]:
    """Every entry of the cache (a name that is not one distill writes is an entry of its
    own, so verify removes it)."""
    for p in _files(root / "debs"):
        yield Entry("debs", p.name.removesuffix(".deb"), (p,))
    for p in _files(root / "archives"):  # upstream release archives (Node.js), by SHA256
        yield Entry("archives", p.name.removesuffix(".tar.xz"), (p,))
    for kind, data_suffix in (("indexes", ""), ("expanded", ".tar")):
        groups: dict[str, list[Path]] = {}
        for p in _files(root / kind):
            stem = (
                p.name.removesuffix(".idx") if p.name.endswith(".idx") else p.name.removesuffix(data_suffix)
            )
            groups.setdefault(stem, []).append(p)
        for stem, paths in sorted(groups.items()):
            yield Entry(kind, stem, tuple(paths))
    for kind in ("layers", "sbom"):
        for p in _files(root / kind):
            yield Entry(kind, p.name.removesuffix(".json"), (p,))
    for p in _files(root / "blobs" / "sha256"):
        yield Entry("blobs", p.name, (p,))
    for p in _files(root / "vuln"):
        yield Entry("vuln", p.name, (p,))
    for p in _files(root / "fleet"):
        yield Entry("fleet", p.name.removesuffix(".json"), (p,))


def _problem(root: Path, e: Entry) -> str | None:
    """Why an entry is bad, or None when it is intact."""
    if e.kind == "vuln":
        stem, _, suffix = e.key.partition(".")
        if not is_digest(stem) or suffix not in (
            "changelog",
            "candidates",
            "data",
            "index",
            "inventory",
            "url",
        ):
            return "not a name distill writes"
        if suffix == "data":
            return None if sha256_file(e.paths[0]) == stem else "does not match its SHA256"
        return None if _unsealed(e.paths[0]) is not None else "damaged (or from an older distill)"
    if e.kind == "fleet":  # a sealed audit of one image digest (distill.fleet.audit)
        if not is_digest(e.key) or not e.paths[0].name.endswith(".json"):
            return "not a name distill writes"
        return None if _unsealed(e.paths[0]) is not None else "damaged (or from an older distill)"
    if e.kind not in ("layers", "sbom") and not is_digest(e.key):
        return "not a name distill writes"
    by_name = {p.name: p for p in e.paths}
    if e.kind in ("debs", "archives"):
        return None if sha256_file(e.paths[0]) == e.key else "does not match its SHA256"
    if e.kind == "blobs":
        return None if sha256_file(e.paths[0]) == e.key else "does not match its digest"
    if e.kind == "indexes":
        data, table = by_name.get(e.key), by_name.get(f"{e.key}.idx")
        if data is not None and sha256_file(data) != e.key:
            return "does not match its SHA256"
        if table is not None and (data is None or _unsealed(table) is None):
            return "its look-up table is damaged or has no index"
        return None
    if e.kind == "expanded":
        tar, idx = by_name.get(f"{e.key}.tar"), by_name.get(f"{e.key}.idx")
        if tar is None or idx is None:
            return "incomplete (the tar or its index is missing)"
        payload = _unsealed(idx)
        try:
            doc = json.loads(payload) if payload is not None else None
        except ValueError:
            doc = None
        if not isinstance(doc, dict) or not is_digest(doc.get("tar")):
            return "its index is damaged (or from an older distill)"
        return None if sha256_file(tar) == doc["tar"] else "does not match its SHA256"
    # layers, sbom: a sealed record of a blob that must still be there
    payload = _unsealed(e.paths[0])
    try:
        doc = json.loads(payload) if payload is not None else None
    except ValueError:
        doc = None
    if not re.fullmatch(r"[0-9a-f]{64}", e.key) or not isinstance(doc, dict):
        return "damaged (or from an older distill)"
    digest = doc.get("digest")
    if not (isinstance(digest, str) and is_digest(digest.removeprefix("sha256:"))):
        return "damaged"
    if not (root / "blobs" / "sha256" / digest.removeprefix("sha256:")).is_file():
        return "its blob is gone"
    return None


def _unsealed(p: Path) -> bytes | None:
    try:
        return unseal(read_entry(p))
    except OSError:
        return None


def verify(root: Path, on_removed: Callable[[Path, str], None] | None = None) -> Report:
    """Hash every entry; remove the bad ones (layers after blobs, as they point at them)."""
    check_root(root)
    report = Report()
    order = {
        "debs": 0,
        "archives": 0,
        "indexes": 1,
        "expanded": 2,
        "blobs": 3,
        "layers": 4,
        "sbom": 4,
        "vuln": 5,
        "fleet": 5,
    }
    for e in sorted(entries(root), key=lambda e: order[e.kind]):
        report.checked += 1
        try:
            why = _problem(root, e)
        except OSError as exc:
            why = f"unreadable ({exc.strerror})"
        if why is not None:
            report.freed += e.size()
            discard(*e.paths)
            for p in e.paths:
                report.removed.append((p, f"{_KINDS[e.kind]} {why}"))
                if on_removed:
                    on_removed(p, f"{_KINDS[e.kind]} {why}")
    for p in verify_app_cache(root):
        report.removed.append((p, "application dependencies damaged"))
        if on_removed:
            on_removed(p, "application dependencies damaged")
    return report


def lock_needs(lock_paths: list[Path], root: Path | None = None) -> set[str]:
    """The SHA256 of every package (debug extras included) and release archive the locks
    name, and of every blob of a locked base image the cache ``root`` holds (its
    documents, configs, layers)."""
    from distill.resolve.lock import read_lock

    keep: set[str] = set()
    for path in lock_paths:
        lock = read_lock(path)
        for table in (lock.packages, lock.debug):
            keep.update(p.sha256 for pkgs in table.values() for p in pkgs)
        keep.update(a.sha256 for items in lock.archives.values() for a in items)
        if lock.base is not None and root is not None:
            keep.update(_base_blobs(root, lock.base.digest))
    return keep


def _base_blobs(root: Path, digest: str) -> set[str]:
    """The blobs a base image's top document reaches in the blob store (what is there)."""
    from distill.errors import DistillError
    from distill.limits import MAX_OCI_JSON
    from distill.oci.image import BlobStore

    store = BlobStore(root)
    out: set[str] = set()
    todo = [digest]
    while todo and len(out) < 100_000:
        d = todo.pop()
        if d[7:] in out or not store.path(d).is_file():
            continue
        out.add(d[7:])
        if store.path(d).stat().st_size > MAX_OCI_JSON:
            continue  # a layer: nothing below it
        try:
            doc = store.read_json(d)
        except (DistillError, ValueError, OSError):
            continue
        if not isinstance(doc, dict):
            continue
        refs = [*(doc.get("manifests") or []), doc.get("config"), *(doc.get("layers") or [])]
        for r in refs:
            if isinstance(r, dict) and isinstance(r.get("digest"), str) and is_digest(r["digest"][7:]):
                todo.append(r["digest"])
    return out


def prune(
    root: Path,
    *,
    older_than_days: float | None = None,
    max_size: int | None = None,
    keep: set[str] | None = None,
    now: float | None = None,
    on_removed: Callable[[Path, str], None] | None = None,
) -> Report:
    """Remove entries unused for ``older_than_days``, then the least recently used ones
    until the cache fits ``max_size``; never the .debs (and expanded forms) in ``keep``."""
    check_root(root)
    keep = keep or set()
    now = time.time() if now is None else now
    report = Report()
    live: list[tuple[float, int, Entry]] = []
    for e in entries(root):
        report.checked += 1
        if e.kind in ("debs", "archives", "expanded", "blobs") and e.key in keep:
            continue
        live.append((e.last_used(), e.size(), e))
    live.sort(key=lambda t: (t[0], t[2].kind, t[2].key))

    def remove(e: Entry, size: int, why: str) -> None:
        discard(*e.paths)
        report.freed += size
        for p in e.paths:
            report.removed.append((p, why))
            if on_removed:
                on_removed(p, why)

    rest: list[tuple[float, int, Entry]] = []
    for used, size, e in live:
        if older_than_days is not None and now - used > older_than_days * 86400:
            remove(e, size, f"unused for {int((now - used) // 86400)} days")
        else:
            rest.append((used, size, e))
    if max_size is not None:
        total = _total(root)
        for _, size, e in rest:
            if total <= max_size:
                break
            remove(e, size, "least recently used")
            total -= size
    return report


def _total(root: Path) -> int:
    total = 0
    for dirpath, _, names in walk(root):
        for n in names:
            total += _stat(Path(dirpath) / n)[0]
    return total


__all__ = ["Entry", "Report", "entries", "lock_needs", "parse_size", "prune", "verify"]
