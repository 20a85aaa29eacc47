"""The app dependency caches are input too: every entry carries a manifest, checked on use.

``apps/python/<key>`` (pip's result) and ``apps/node/<key>`` (node_modules) are written
once into a temporary directory, a ``manifest.json`` with the sha256, size and mode of
every file (and each symlink's target, each directory) is written inside it, and the
directory is renamed into place — so an entry without a valid manifest is never
complete. Before an entry is used its tree must match the manifest exactly (no file
missing, changed or added); a damaged entry is discarded and rebuilt with one warning,
or under ``--offline`` is one error line. :func:`verify_app_cache` checks them all,
and the npm tarballs (``npm/``) against the integrity recorded beside each.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Any

from distill.archive.cache import atomic_write
from distill.errors import BuildError, DistillError
from distill.fswalk import walk
from distill.limits import read_json
from distill.progress import Reporter

MANIFEST = "manifest.json"
FORMAT = "distill-app-cache-manifest-1"
KINDS = ("python", "node")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _scan(entry: Path) -> dict[str, Any]:
    """What the entry holds: files (sha256, size, executable), symlinks, directories."""
    files: dict[str, list[Any]] = {}
    links: dict[str, str] = {}
    dirs: list[str] = []
    for directory, subdirs, names in walk(entry):
        rel_dir = os.path.relpath(directory, entry)
        for name in sorted(subdirs + names):
            full = os.path.join(directory, name)
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if rel == MANIFEST:
                continue
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                links[rel] = os.readlink(full)
            elif stat.S_ISDIR(st.st_mode):
                dirs.append(rel)
            elif stat.S_ISREG(st.st_mode):
                files[rel] = [_sha256(Path(full)), st.st_size, bool(st.st_mode & 0o111)]
            else:
                files[rel] = ["special", 0, False]  # never written by distill: fails the check
        subdirs[:] = [d for d in subdirs if not os.path.islink(os.path.join(directory, d))]
    return {"format": FORMAT, "files": files, "symlinks": links, "dirs": sorted(dirs)}


def write_manifest(entry: Path) -> None:
    """Record the entry's content; call before the entry is renamed into place."""
    atomic_write(entry / MANIFEST, json.dumps(_scan(entry), sort_keys=True).encode())


def problem(entry: Path) -> str | None:
    """Why the entry does not match its manifest, or None when it does."""
    try:
        recorded = read_json(entry / MANIFEST, error=BuildError, what="cache manifest")
    except DistillError:
        return "its manifest is missing or unreadable"
    if not isinstance(recorded, dict) or recorded.get("format") != FORMAT:
        return "its manifest is not distill's"
    actual = _scan(entry)
    for part in ("files", "symlinks", "dirs"):
        want, have = recorded.get(part), actual[part]
        if want != have:
            if isinstance(want, dict) and isinstance(have, dict):
                diff = sorted(set(want) ^ set(have)) or sorted(k for k in have if have[k] != want.get(k))
                return (
                    f"{part[:-1]} {diff[0]} differs from its manifest"
                    if diff
                    else "it differs from its manifest"
                )
            return f"its {part} differ from the manifest"
    return None


def discard(entry: Path) -> None:
    """Remove an entry so that no reader sees it half-deleted: renamed away first."""
    try:
        away = Path(tempfile.mkdtemp(dir=entry.parent, prefix=".bad-"))
        os.rename(entry, away / "entry")
    except OSError:
        return  # another run removed it already
    shutil.rmtree(away, ignore_errors=True)


def usable(entry: Path, what: str, offline: bool, reporter: Reporter) -> bool:
    """True when the cached entry exists and is intact; a damaged one is discarded
    (a warning, or with ``offline`` an error since it cannot be rebuilt)."""
    if not entry.is_dir():
        return False
    reason = problem(entry)
    if reason is None:
        return True
    discard(entry)
    if offline:
        raise BuildError(
            f"the cached {what} at {entry} is damaged ({reason}) and was removed",
            hint="build once without --offline to rebuild it",
        )
    reporter.note(f"warning: the cached {what} at {entry} is damaged ({reason}); rebuilding it")
    return False


def verify_app_cache(cache_root: Path) -> list[Path]:
    """Check every apps/ entry against its manifest, and every cached npm tarball
    (npm/) against its integrity; remove and return the bad ones."""
    from distill.app import node  # node uses this module

    bad: list[Path] = []
    for kind in KINDS:
        root = cache_root / "apps" / kind
        if not root.is_dir():
            continue
        for entry in sorted(root.iterdir()):
            if entry.name.startswith("."):
                continue  # a build's temporary directory, or one being discarded
            if not entry.is_dir() or entry.is_symlink() or problem(entry) is not None:
                if entry.is_dir() and not entry.is_symlink():
                    discard(entry)
                else:
                    entry.unlink(missing_ok=True)
                bad.append(entry)
    return bad + node.verify_tarball_cache(cache_root / "npm")
