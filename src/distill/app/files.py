"""Host files as image entries: an application's code (read now, so the layer's
recipe follows its content) or a cached dependency tree (immutable, referenced).

Everything lands owned by root and read-only: files 0644, or 0755 where the host
file is executable; directories 0755. Symlinks are kept when they stay inside the
tree they belong to.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

from distill.assemble.expand import DIR, FILE, SYMLINK
from distill.assemble.tree import Node, check_link_target
from distill.errors import SpecError
from distill.fswalk import walk
from distill.limits import read_text

# Never application code: version control, caches, virtualenvs, dependency trees
# distill installs itself, and distill's own lockfiles.
ALWAYS_EXCLUDED = [
    ".git", ".hg", ".svn", "__pycache__", "*.pyc", ".venv", "venv", ".tox", ".nox",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", "node_modules", ".DS_Store", "*.lock.json",
]  # fmt: skip


# Exclude patterns (.dockerignore and app.exclude together) per app: every file is
# matched against each, so a .dockerignore of a repository one did not write must not
# hold hundreds of thousands (within the 4 MiB text limit: an hour for a small project).
MAX_EXCLUDE_PATTERNS = 4096


@functools.lru_cache(maxsize=2 * MAX_EXCLUDE_PATTERNS)
def _matcher(pattern: str) -> Callable[[str], object]:
    # fnmatch's own cache holds 32768 patterns: beyond, each match compiled again.
    return re.compile(fnmatch.translate(pattern)).match


def check_patterns(patterns: list[str], what: str) -> None:
    if len(patterns) > MAX_EXCLUDE_PATTERNS:
        raise SpecError(
            f"{what}: more than {MAX_EXCLUDE_PATTERNS} exclude patterns (.dockerignore, app.exclude "
            "and the built-in ones together)"
        )


def excluded(rel: str, patterns: list[str]) -> bool:
    """A pattern without '/' matches any path component; one with a '/' (or starting
    with one) the path relative to the source, or a directory above it."""
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        p = pattern.strip("/")
        if not p:
            continue
        if pattern.startswith("/") or "/" in p:
            forms = [p, p[3:]] if p.startswith("**/") else [p]
            if any(_matcher(f)(x) for x in prefixes for f in forms):
                return True
        elif any(_matcher(p)(x) for x in parts):
            return True
    return False


def dockerignore(source: Path) -> list[str]:
    """The patterns of a .dockerignore beside the code (anchored at the source, as
    Docker reads them); '!' exceptions are not supported and are skipped."""
    path = source / ".dockerignore"
    if not os.path.lexists(path):
        return []
    text = read_text(path, error=SpecError)  # a FIFO or device is refused, not waited on
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            out.append("/" + line.removeprefix("./").lstrip("/"))
    return out


def _mode(st: os.stat_result) -> int:
    return 0o755 if st.st_mode & 0o111 else 0o644


def collect(
    root: Path,
    dest: str,
    *,
    exclude: list[str] | None = None,
    cid: str | None = None,
    what: str = "app",
    skip: tuple[Path, ...] = (),
) -> list[tuple[str, Node]]:
    """Entries for everything below ``root``, placed under ``dest`` (an image path).

    With ``cid`` (the identity of an immutable cached tree) files are referenced,
    not read; otherwise their bytes are read now. ``skip`` paths (distill's own
    output) and OCI image layouts are never application files.
    """
    skipped = {os.path.realpath(p) for p in skip}
    base = dest.strip("/")
    out: list[tuple[str, Node]] = []
    patterns = exclude or []
    check_patterns(patterns, f"{what}: {root}")
    for directory, dirs, files in walk(root):
        rel_dir = os.path.relpath(directory, root)
        rel_dir = "" if rel_dir == "." else rel_dir
        kept_dirs = []
        for name in sorted(dirs):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if patterns and excluded(rel, patterns):
                continue
            full = os.path.join(directory, name)
            if os.path.islink(full):
                files.append(name)  # a link to a directory: kept as a link
                continue
            if cid is None and (
                os.path.realpath(full) in skipped or os.path.exists(os.path.join(full, "oci-layout"))
            ):
                continue
            kept_dirs.append(name)
            out.append((f"{base}/{rel}", Node(DIR, 0o755)))
        dirs[:] = kept_dirs
        for name in sorted(files):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if patterns and excluded(rel, patterns):
                continue
            full = os.path.join(directory, name)
            if skipped and os.path.realpath(full) in skipped:
                continue
            if cid is None and _beside_an_output(directory, name):
                continue
            st = os.lstat(full)
            path = f"{base}/{rel}"
            if stat.S_ISLNK(st.st_mode):
                target = os.readlink(full)
                if target.startswith("/"):
                    raise SpecError(f"{what}: {full} is a symlink to an absolute path ({target})")
                # It must stay inside the tree being copied.
                check_link_target(rel, target, f"{what}: {root}")
                out.append((path, Node(SYMLINK, 0o777, link=target)))
            elif stat.S_ISREG(st.st_mode):
                if cid is not None:
                    out.append(
                        (path, Node(FILE, _mode(st), size=st.st_size, src=(full, 0), cid=f"{cid}/{rel}"))
                    )
                else:
                    data = Path(full).read_bytes()
                    out.append((path, Node(FILE, _mode(st), size=len(data), data=data)))
            # Sockets, fifos and devices in a source tree are not application files.
    return out


def one_file(path: Path, image_path: str, mode: int | None = None) -> tuple[str, Node]:
    data = path.read_bytes()
    m = mode if mode is not None else _mode(path.stat())
    return image_path.strip("/"), Node(FILE, m, size=len(data), data=data)


_SBOM_SUFFIXES = (".spdx.json", ".cdx.json")


def _beside_an_output(directory: str, name: str) -> bool:
    """Whether ``name`` is an SBOM ``distill build`` wrote beside an earlier output in
    the app's source (``out.spdx.json`` beside the layout ``out/``, ``app-amd64.cdx.json``
    beside ``app.tar``): a layout in the source is never part of the app, nor are they,
    so that building twice in the project gives the same image."""
    for suffix in _SBOM_SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            stem = name[: -len(suffix)]
            stems = [stem]
            if "-" in stem:
                stems.append(stem.rsplit("-", 1)[0])  # NAME-ARCH, per platform
            for s in stems:
                for candidate in (s, f"{s}.oci"):
                    if os.path.exists(os.path.join(directory, candidate, "oci-layout")):
                        return True
                if os.path.isfile(os.path.join(directory, f"{s}.tar")):
                    return True
    return False
