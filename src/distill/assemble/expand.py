"""Expanded packages: a .deb's data tar, decompressed once into the cache, plus an index.

The virtual root filesystem refers to file contents by (expanded tar, offset), so a
build reads exactly the bytes it writes into a layer and never extracts a file onto
the host. Expanding is the only costly step (xz); warm builds skip it.

Cache layout (beside ``debs/``)::

    expanded/<sha256>.tar    the .deb's data.tar, decompressed
    expanded/<sha256>.idx    sealed JSON (checksummed): the tar's SHA256, control text,
                             md5sums, members, ELF sonames

Hash on read: the .deb is hashed before it is expanded, and an expanded tar is hashed
against the SHA256 its index recorded the first time a process reads any content
from it (:func:`check_tar`), so a damaged entry never reaches a layer; it is removed
and made again from the .deb.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import re
import tarfile
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from distill.archive.cache import (
    Cache,
    CorruptEntryError,
    atomic_write,
    check_digest,
    discard,
    file_lock,
    is_digest,
    read_sealed,
    seal,
    sha256_file,
)
from distill.debian.deb import DebFormatError, open_deb
from distill.errors import BuildError
from distill.limits import expansion_limit
from distill.tarsafe import BoundedTarInfo, EntryBudget
from distill.tarsafe import members as tar_members

EXPAND_VERSION = 2  # 2: sealed JSON with the tar's SHA256 (1 was marshal)

# Member kinds, as in the tar type flag.
FILE, HARDLINK, SYMLINK, DIR = "0", "1", "2", "5"
_KINDS = {
    tarfile.REGTYPE: FILE,
    tarfile.AREGTYPE: FILE,
    tarfile.LNKTYPE: HARDLINK,
    tarfile.SYMTYPE: SYMLINK,
    tarfile.DIRTYPE: DIR,
    tarfile.CHRTYPE: "3",
    tarfile.BLKTYPE: "4",
    tarfile.FIFOTYPE: "6",
}
# What the dynamic linker's cache considers (ldconfig's rule: lib*.so* and ld-*.so*).
_LIBRARY = re.compile(r"^(lib|ld-).*\.so(\.[0-9.]+)?$")

# (path, kind, mode, uid, gid, mtime, size, link, offset)
Member = tuple[str, str, int, int, int, int, int, str, int]


@dataclass(frozen=True)
class Expanded:
    """One package, ready to be laid into a tree."""

    sha256: str
    tar: Path
    control_text: bytes
    md5sums: bytes
    members: list[Member]
    sonames: dict[str, str]  # path -> DT_SONAME of ELF shared objects


def _paths(cache: Cache, sha256: str) -> tuple[Path, Path]:
    d = cache.root / "expanded"
    check_digest(sha256, "package hash")
    return d / f"{sha256}.tar", d / f"{sha256}.idx"


# Expanded tars this process has hashed (path -> identity of the file hashed), and the
# hash each must have (from its sealed index).
_expected: dict[str, str] = {}
_verified: dict[str, tuple[int, int, int]] = {}
_guard = threading.Lock()


def _identity(path: str) -> tuple[int, int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_mtime_ns


def check_tar(path: str) -> None:
    """Hash on read: raise :class:`CorruptEntryError` (after removing the entry) unless the
    expanded tar at ``path`` matches the SHA256 recorded when it was made. Each file is
    hashed once per process; a layer cache hit reads nothing and hashes nothing."""
    with _guard:
        expected = _expected.get(path)
        try:
            ident = _identity(path)
        except OSError:
            ident = (0, 0, 0)
        if expected is None or _verified.get(path) == ident:
            return
    got = sha256_file(Path(path)) if ident != (0, 0, 0) else ""
    if got != expected:
        tar = Path(path)
        discard(tar, tar.with_suffix(".idx"))
        raise CorruptEntryError(f"the expanded package {tar} does not match its SHA256; it was removed")
    with _guard:
        _verified[path] = ident


def read_member(exp: Expanded, path: str, limit: int) -> bytes | None:
    """The bytes of the regular file ``path`` in an expanded package or archive (hashed on
    read as every content is); None when it has no such file or it is over ``limit``."""
    found = next((m for m in exp.members if m[0] == path and m[1] == FILE), None)
    if found is None or found[6] > limit:
        return None
    check_tar(str(exp.tar))
    with open(exp.tar, "rb") as f:
        f.seek(found[8])
        return f.read(found[6])


def _members(raw: object) -> list[Member] | None:
    if not isinstance(raw, list):
        return None
    out: list[Member] = []
    for m in raw:
        if not (isinstance(m, list) and len(m) == 9 and isinstance(m[0], str) and isinstance(m[1], str)):
            return None
        out.append(tuple(m))
    return out


def load_expanded(cache: Cache, sha256: str) -> Expanded | None:
    tar, idx = _paths(cache, sha256)
    payload = read_sealed(idx, "expanded package index")  # CorruptEntryError when damaged
    try:
        doc = json.loads(payload) if payload is not None else None
    except ValueError:
        return None
    if not isinstance(doc, dict) or doc.get("v") != EXPAND_VERSION or not tar.is_file():
        return None
    members = _members(doc.get("members"))
    tar_sha, sonames = doc.get("tar"), doc.get("sonames")
    control, md5sums = doc.get("control"), doc.get("md5sums")
    if (
        members is None
        or not is_digest(tar_sha)
        or not isinstance(sonames, dict)
        or not isinstance(control, str)
        or not isinstance(md5sums, str)
    ):
        return None
    with _guard:
        _expected[str(tar)] = str(tar_sha)
    return Expanded(sha256, tar, control.encode("latin-1"), md5sums.encode("latin-1"), members, sonames)


class _Hashing:
    """A write-only file that hashes what passes through it."""

    def __init__(self, out: io.BufferedWriter) -> None:
        self.out = out
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        return self.out.write(data)


def _normalise(name: str) -> str:
    return name.removeprefix("./").removeprefix("/").rstrip("/")


def expand(cache: Cache, deb_path: Path, sha256: str) -> Expanded:
    """The expanded form of a cached .deb, made (atomically) if it is not there yet.

    The .deb is hashed first: one that does not match its name is removed and
    :class:`CorruptEntryError` (``needs_network``) raised, so the caller fetches it again.
    """
    return _once(cache, sha256, lambda: _expand(cache, deb_path, sha256))


def _once(cache: Cache, sha256: str, make: Callable[[], Expanded]) -> Expanded:
    """The cached expansion, else ``make()``: one process expands an entry; concurrent
    builds on the same cache wait for it and take its result instead of doing the same
    (xz) work again."""
    found = load_expanded(cache, sha256)
    if found is not None:
        return found
    with file_lock(cache.root / "tmp" / f"{sha256}.expand.lock"):
        found = load_expanded(cache, sha256)
        if found is not None:
            return found
        return make()


def _expand(cache: Cache, deb_path: Path, sha256: str) -> Expanded:
    _check_source(deb_path, sha256, "package")
    try:
        deb = open_deb(deb_path)
        control = deb.control()
        return _write_expanded(cache, sha256, deb.copy_data, control.text, control.md5sums)
    except DebFormatError as exc:
        raise BuildError(f"cannot read package {deb_path.name}: {exc}") from None


def _check_source(path: Path, sha256: str, what: str) -> None:
    """Hash on read: a cached .deb or archive that does not match its name is removed."""
    try:
        intact = sha256_file(path) == sha256
    except OSError:
        intact = False
    if not intact:
        discard(path)
        raise CorruptEntryError(
            f"the cached {what} {path} does not match its SHA256; it was removed", needs_network=True
        )


def _write_expanded(
    cache: Cache,
    sha256: str,
    copy: Callable[[BinaryIO], object],
    control: bytes,
    md5sums: bytes,
    rename: Callable[[str], str | None] | None = None,
) -> Expanded:
    tar_path, idx_path = _paths(cache, sha256)
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=tar_path.parent, prefix=f".{sha256}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            sink = _Hashing(out)
            copy(sink)  # type: ignore[arg-type]
        members, sonames = _index(Path(tmp), rename)
        os.replace(tmp, tar_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    doc = {
        "v": EXPAND_VERSION,
        "tar": sink.hash.hexdigest(),
        "control": control.decode("latin-1"),
        "md5sums": md5sums.decode("latin-1"),
        "members": members,
        "sonames": sonames,
    }
    atomic_write(idx_path, seal(json.dumps(doc, separators=(",", ":")).encode()))
    with _guard:
        _expected[str(tar_path)] = doc["tar"]  # type: ignore[assignment]
        _verified[str(tar_path)] = _identity(str(tar_path))
    return Expanded(sha256, tar_path, control, md5sums, members, sonames)


def expand_tarball(cache: Cache, archive: Path, sha256: str, prefix: str) -> Expanded:
    """A release archive (``.tar.xz``: one top directory) expanded like a .deb, its paths
    moved under ``prefix`` (``node-v22.1.0-linux-x64/bin/node`` -> ``nodejs/bin/node``),
    every entry root-owned and not writable by group or others."""

    def rename(name: str) -> str | None:
        parts = name.split("/", 1)
        return f"{prefix}/{parts[1]}" if len(parts) == 2 and parts[1] else None

    def copy(sink: BinaryIO) -> None:
        with lzma.open(archive) as src:
            budget = expansion_limit(archive.stat().st_size)
            total = 0
            while chunk := src.read(1 << 20):
                total += len(chunk)
                if total > budget:
                    raise DebFormatError(f"expands past {budget} bytes")
                sink.write(chunk)

    def make() -> Expanded:
        _check_source(archive, sha256, "archive")
        try:
            return _write_expanded(cache, sha256, copy, b"", b"", rename)
        except (DebFormatError, lzma.LZMAError, EOFError) as exc:
            raise BuildError(f"cannot read archive {archive.name}: {exc}") from None

    return _once(cache, sha256, make)


def _index(
    tar_path: Path, rename: Callable[[str], str | None] | None = None
) -> tuple[list[Member], dict[str, str]]:
    members: list[Member] = []
    sonames: dict[str, str] = {}
    made: set[str] = set()  # directories listed so far
    try:
        # Bounded headers and entry count (distill.tarsafe), as for every archive read.
        with tarfile.open(tar_path, "r:", tarinfo=BoundedTarInfo) as tf, open(tar_path, "rb") as raw:
            for info in tar_members(tf, EntryBudget(tar_path.name, DebFormatError)):
                path = _normalise(info.name)
                kind = _KINDS.get(info.type, "?")
                link = _normalise(info.linkname) if kind == HARDLINK else info.linkname
                uid, gid, mode = info.uid, info.gid, info.mode
                if rename is not None:  # a release archive: its builder's ids mean nothing here
                    path = rename(path) or ""
                    if kind == HARDLINK:
                        link = rename(link) or ""
                    uid, gid, mode = 0, 0, mode & ~0o022
                if not path:
                    continue
                if rename is not None:  # an archive may list no directories: make its parents
                    _parents(path, int(info.mtime), members, made)
                offset = info.offset_data if kind == FILE else 0
                members.append((path, kind, mode, uid, gid, int(info.mtime), info.size, link, offset))
                if kind == DIR:
                    made.add(path)
                if kind == FILE and _LIBRARY.match(path.rsplit("/", 1)[-1]):
                    soname = elf_soname(raw, offset, info.size)
                    if soname is not None:
                        # ldconfig files an object without DT_SONAME under its file name.
                        sonames[path] = soname or path.rsplit("/", 1)[-1]
    except tarfile.TarError as exc:
        raise DebFormatError(f"data.tar: {exc}") from None
    return members, sonames


def _parents(path: str, mtime: int, members: list[Member], made: set[str]) -> None:
    """Directory members (root's, 0755) for the parents of ``path`` not listed yet."""
    parts = path.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        d = "/".join(parts[:i])
        if d not in made:
            made.add(d)
            members.append((d, DIR, 0o755, 0, 0, mtime, 0, "", 0))


def elf_soname(raw: BinaryIO, offset: int, size: int) -> str | None:
    """DT_SONAME of the ELF shared object at ``offset`` in ``raw`` ("" if it has none),
    or None if it is not an ELF shared object."""
    from elftools.common.exceptions import ELFError  # only needed when packages are unpacked
    from elftools.elf.dynamic import DynamicSection
    from elftools.elf.elffile import ELFFile

    raw.seek(offset)
    if raw.read(4) != b"\x7fELF":
        return None
    raw.seek(offset)
    try:
        elf = ELFFile(io.BytesIO(raw.read(size)))
        if elf["e_type"] != "ET_DYN":
            return None
        for section in elf.iter_sections():
            if isinstance(section, DynamicSection):
                for tag in section.iter_tags("DT_SONAME"):
                    return str(tag.soname)  # type: ignore[attr-defined]
        return ""
    except (ELFError, ValueError, KeyError, IndexError, OSError):
        return None
