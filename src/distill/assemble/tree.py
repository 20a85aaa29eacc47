"""The virtual root filesystem: tar headers plus references to content.

Nothing is extracted onto the host. A file's bytes are either a reference into an
expanded package (tar path, offset) or bytes distill generated. Paths are relative to
the image root, without a leading slash (``usr/bin/python3``); the root itself is "".

Every entry is checked on the way in: ``..`` components, symlinks whose target climbs
out of the root, hardlinks to nothing and device nodes are refused
(:class:`~distill.errors.UnsafeEntryError`). Parent directories are resolved through
the symlinks already in the tree, as dpkg does, so ``lib/x86_64-linux-gnu/libc.so.6``
lands in ``usr/lib/...`` on a merged-/usr image.

The tree records which entries changed since :meth:`Tree.take_changes` was last
called; each level of a spec's composition chain becomes one layer made of them.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from dataclasses import dataclass, replace
from typing import Any

from distill.assemble.expand import DIR, FILE, HARDLINK, SYMLINK, Expanded, check_tar
from distill.errors import UnsafeEntryError
from distill.spec.model import Trim

_MAX_HOPS = 40


@dataclass(frozen=True)
class Node:
    kind: str  # FILE, SYMLINK or DIR (a hardlink is laid down as a file with the same content)
    mode: int  # permission bits, including setuid/setgid/sticky
    uid: int = 0
    gid: int = 0
    mtime: int = 0
    size: int = 0
    link: str = ""  # symlink target, as written
    src: tuple[str, int] | None = None  # (expanded tar, offset) of the content
    data: bytes | None = None  # generated content
    owner: str = ""  # the package that shipped it ("" for generated entries)
    soname: str | None = None  # DT_SONAME for shared libraries
    cid: str = ""  # an explicit content identity (immutable host files, e.g. cached app dependencies)

    def read(self) -> bytes:
        if self.data is not None:
            return self.data
        if self.src is None or self.size == 0:
            return b""
        check_tar(self.src[0])  # hash on read, once per expanded package
        fd = os.open(self.src[0], os.O_RDONLY)
        try:
            return os.pread(fd, self.size, self.src[1])
        finally:
            os.close(fd)

    def content_id(self) -> str:
        """Identifies the content without reading it (for layer cache keys)."""
        if self.cid:
            return self.cid
        if self.data is not None:
            return hashlib.sha256(self.data).hexdigest()
        if self.src is not None:
            return f"{os.path.basename(self.src[0])}:{self.src[1]}"
        return ""


def file_node(data: bytes, mode: int = 0o644, mtime: int = 0, uid: int = 0, gid: int = 0) -> Node:
    return Node(FILE, mode, uid, gid, mtime, len(data), data=data)


def dir_node(mode: int = 0o755, mtime: int = 0, uid: int = 0, gid: int = 0) -> Node:
    return Node(DIR, mode, uid, gid, mtime)


def symlink_node(target: str, mtime: int = 0) -> Node:
    return Node(SYMLINK, 0o777, 0, 0, mtime, link=target)


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def check_link_target(path: str, target: str, what: str) -> None:
    """Refuse a symlink whose target, read from its own directory, leaves the root."""
    if not target:
        raise UnsafeEntryError(f"{what}: {path} is a symlink with an empty target")
    depth = 0 if target.startswith("/") else len(_parts(path)) - 1
    for part in _parts(target):
        depth += -1 if part == ".." else 1
        if depth < 0:
            raise UnsafeEntryError(f"{what}: symlink /{path} -> {target} points outside the image root")


class Trimmer:
    """Decides which package paths the image leaves out (see :class:`~distill.spec.model.Trim`)."""

    def __init__(self, trim: Trim) -> None:
        self.docs = trim.docs
        self.translations = trim.translations
        self.ca_sources = trim.ca_sources
        self.prefixes = tuple(
            prefix
            for on, prefix in (
                (trim.man, "usr/share/man/"),
                (trim.info, "usr/share/info/"),
                (trim.lintian, "usr/share/lintian/"),
                (trim.docs, "usr/share/doc-base/"),
                (trim.docs, "usr/share/bug/"),
            )
            if on
        )
        globs = [p if p.startswith("/") else "/" + p for p in trim.paths]
        self.globs = re.compile("|".join(fnmatch.translate(g) for g in globs)) if globs else None

    def drops(self, path: str) -> bool:
        if self.docs and path.startswith("usr/share/doc/"):
            rest = path[len("usr/share/doc/") :].split("/")
            # The package's doc directory (or a link to another's) and its copyright stay.
            return not (len(rest) == 1 or (len(rest) == 2 and rest[1] == "copyright"))
        if path.startswith(self.prefixes) or (path + "/") in self.prefixes:
            return True
        if self.translations and path.startswith("usr/share/locale/") and path.endswith(".mo"):
            return True
        return self.globs is not None and self.globs.match("/" + path) is not None


class Tree:
    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {"": dir_node()}
        self._changed: dict[str, Node | None] = {}
        self._committed: set[str] = {""}  # paths present when the last layer was taken
        # What generators remember across levels (e.g. certificates already bundled).
        self.memory: dict[str, Any] = {}
        # Canonical paths trimmed away since :meth:`prune_trimmed_dirs` last ran: the
        # directories they leave empty go too.
        self.trimmed: set[str] = set()

    # -- reading ---------------------------------------------------------------------------

    def get(self, path: str) -> Node | None:
        return self.nodes.get(path)

    def resolve(self, path: str, follow_last: bool = True, what: str = "image") -> str:
        """The canonical path: every symlink on the way (and the last one if asked) followed."""
        pending = _parts(path)
        out: list[str] = []
        hops = 0
        while pending:
            name = pending.pop(0)
            if name == "..":
                if not out:
                    raise UnsafeEntryError(f"{what}: /{path} resolves outside the image root")
                out.pop()
                continue
            here = "/".join([*out, name])
            node = self.nodes.get(here)
            if node is not None and node.kind == SYMLINK and (pending or follow_last):
                hops += 1
                if hops > _MAX_HOPS:
                    raise UnsafeEntryError(f"{what}: too many levels of symlinks at /{path}")
                if node.link.startswith("/"):
                    out = []
                pending = _parts(node.link) + pending
                continue
            out.append(name)
        return "/".join(out)

    def children(self, directory: str) -> list[str]:
        prefix = directory + "/" if directory else ""
        return sorted(p for p in self.nodes if p.startswith(prefix) and p and "/" not in p[len(prefix) :])

    # -- writing ---------------------------------------------------------------------------

    def put(self, path: str, node: Node) -> None:
        """Set an entry at a canonical path (parents must exist); records the change."""
        if self.nodes.get(path) != node:
            self.nodes[path] = node
            self._changed[path] = node

    def remove(self, path: str) -> None:
        """Remove an entry (and what is below it); a whiteout only where a lower layer has it."""
        node = self.nodes.get(path)
        if node is not None:
            below = [p for p in self.nodes if p.startswith(path + "/")] if node.kind == DIR else []
            for p in [path, *below]:
                del self.nodes[p]
                if p in self._committed:
                    self._changed[p] = None
                else:
                    self._changed.pop(p, None)

    def trim(self, path: str) -> None:
        """Remove an entry the image leaves out (a generator's source, e.g. a bundled
        certificate); its directory goes too if that leaves it empty."""
        if path in self.nodes:
            self.remove(path)
            self.trimmed.add(path)

    def prune_trimmed_dirs(self) -> list[str]:
        """Remove the directories that trimming left empty (deepest first, up the tree),
        and return them. A directory a package shipped empty stays: only the ancestors of
        trimmed paths are candidates, and only those made since the last layer (one that
        is in a lower layer stays as it is, so that layer stays shared)."""
        candidates: set[str] = set()
        for path in self.trimmed:
            parent = path.rpartition("/")[0]
            while parent and parent not in candidates:
                candidates.add(parent)
                parent = parent.rpartition("/")[0]
        self.trimmed = set()
        if not candidates:
            return []
        children: dict[str, int] = {}
        for p in self.nodes:
            if p:
                parent = p.rpartition("/")[0]
                children[parent] = children.get(parent, 0) + 1
        removed = []
        for d in sorted(candidates, key=lambda p: p.count("/"), reverse=True):
            node = self.nodes.get(d)
            if node is None or node.kind != DIR or children.get(d, 0) or d in self._committed:
                continue
            self.remove(d)
            removed.append(d)
            parent = d.rpartition("/")[0]
            children[parent] = children.get(parent, 0) - 1
        return removed

    def makedirs(self, path: str, mtime: int, mode: int = 0o755) -> str:
        """Create missing directories along ``path`` (through symlinks); its canonical path."""
        out = ""
        for part in _parts(path):
            here = f"{out}/{part}" if out else part
            canonical = self.resolve(here)
            node = self.nodes.get(canonical)
            if node is None:
                self.put(canonical, dir_node(mode, mtime))
            elif node.kind != DIR:
                raise UnsafeEntryError(f"/{here} is not a directory")
            out = canonical
        return out

    def place(self, path: str, what: str) -> str:
        """The canonical location for a new entry at ``path``: parents resolved, no ``..``."""
        parts = path.split("/")
        if ".." in parts or path.startswith("/"):
            raise UnsafeEntryError(f"{what}: entry {path!r} would escape the image root")
        parent, _, base = path.rpartition("/")
        canonical_parent = self.resolve(parent, what=what) if parent else ""
        return f"{canonical_parent}/{base}" if canonical_parent else base

    def take_changes(self) -> dict[str, Node | None]:
        """Entries set or removed since the last call (None: removed)."""
        changed, self._changed = self._changed, {}
        self._committed = set(self.nodes)
        return changed

    # -- packages --------------------------------------------------------------------------

    def add_package(self, pkg: str, exp: Expanded, trimmer: Trimmer, clamp: int | None) -> set[str]:
        """Lay a package's members into the tree; returns the paths trimmed away."""
        dropped: set[str] = set()
        what = f"package {pkg}"
        tar = str(exp.tar)
        for path, kind, mode, uid, gid, mtime, size, link, offset in exp.members:
            if kind not in (FILE, DIR, SYMLINK, HARDLINK):
                raise UnsafeEntryError(f"{what}: /{path} is a device, fifo or unknown entry (type {kind!r})")
            if clamp is not None and mtime > clamp:
                mtime = clamp
            where = self.place(path, what)
            if trimmer.drops(where) or trimmer.drops(path):
                if kind != DIR:
                    dropped.add(path)
                self.trimmed.add(where)
                continue
            existing = self.nodes.get(where)
            if kind == DIR:
                if existing is not None and existing.kind == SYMLINK:
                    where = self.resolve(where, what=what)
                    existing = self.nodes.get(where)
                if existing is None:
                    self.put(where, Node(DIR, mode & 0o7777, uid, gid, mtime, owner=pkg))
                elif existing.kind != DIR:
                    raise UnsafeEntryError(f"{what}: directory /{path} clashes with a file already there")
                continue
            if existing is not None and existing.kind == DIR:
                raise UnsafeEntryError(f"{what}: /{path} would replace a directory")
            if kind == FILE:
                node = Node(FILE, mode & 0o7777, uid, gid, mtime, size, src=(tar, offset), owner=pkg)
                soname = exp.sonames.get(path)
                if soname:
                    node = replace(node, soname=soname)
            elif kind == SYMLINK:
                check_link_target(where, link, what)
                node = Node(SYMLINK, 0o777, uid, gid, mtime, link=link, owner=pkg)
            else:
                if ".." in link.split("/"):
                    raise UnsafeEntryError(f"{what}: hardlink /{path} -> {link} escapes the image root")
                target = self.nodes.get(self.resolve(link, what=what))
                if target is None or target.kind != FILE:
                    raise UnsafeEntryError(f"{what}: hardlink /{path} points to {link}, which is not a file")
                node = replace(target, mode=mode & 0o7777, uid=uid, gid=gid, mtime=mtime, owner=pkg)
            self.put(where, node)
        return dropped
