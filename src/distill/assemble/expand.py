"""Expanded packages: a .deb's data tar, decompressed once into the cache, plus an index.

The virtual root filesystem refers to file contents by (expanded tar, offset), so a
build reads exactly the bytes it writes into a layer and never extracts a file onto
the host. Expanding is the only costly step (xz); warm builds skip it.

Cache layout (beside ``debs/``)::

    expanded/<sha256>.tar    the .deb's data.tar, decompressed
    expanded/<sha256>.idx    marshal: control text, md5sums, members, ELF sonames
"""

from __future__ import annotations

import io
import marshal
import os
import re
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from distill.archive.cache import Cache, atomic_write
from distill.debian.deb import DebFormatError, open_deb
from distill.errors import BuildError
from distill.tarsafe import BoundedTarInfo, EntryBudget
from distill.tarsafe import members as tar_members

EXPAND_VERSION = 1

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
    return d / f"{sha256}.tar", d / f"{sha256}.idx"


def load_expanded(cache: Cache, sha256: str) -> Expanded | None:
    tar, idx = _paths(cache, sha256)
    try:
        with open(idx, "rb") as f:
            doc = marshal.load(f)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not isinstance(doc, dict) or doc.get("v") != EXPAND_VERSION or not tar.is_file():
        return None
    return Expanded(sha256, tar, doc["control"], doc["md5sums"], doc["members"], doc["sonames"])


def _normalise(name: str) -> str:
    return name.removeprefix("./").removeprefix("/").rstrip("/")


def expand(cache: Cache, deb_path: Path, sha256: str) -> Expanded:
    """The expanded form of a cached .deb, made (atomically) if it is not there yet."""
    found = load_expanded(cache, sha256)
    if found is not None:
        return found
    tar_path, idx_path = _paths(cache, sha256)
    tar_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        deb = open_deb(deb_path)
        control = deb.control()
        fd, tmp = tempfile.mkstemp(dir=tar_path.parent, prefix=f".{sha256}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                deb.copy_data(out)
            members, sonames = _index(Path(tmp))
            os.replace(tmp, tar_path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except DebFormatError as exc:
        raise BuildError(f"cannot read package {deb_path.name}: {exc}") from None
    doc = {
        "v": EXPAND_VERSION,
        "control": control.text,
        "md5sums": control.md5sums,
        "members": members,
        "sonames": sonames,
    }
    atomic_write(idx_path, marshal.dumps(doc))
    return Expanded(sha256, tar_path, control.text, control.md5sums, members, sonames)


def _index(tar_path: Path) -> tuple[list[Member], dict[str, str]]:
    members: list[Member] = []
    sonames: dict[str, str] = {}
    try:
        # Bounded headers and entry count (distill.tarsafe), as for every archive read.
        with tarfile.open(tar_path, "r:", tarinfo=BoundedTarInfo) as tf, open(tar_path, "rb") as raw:
            for info in tar_members(tf, EntryBudget(tar_path.name, DebFormatError)):
                path = _normalise(info.name)
                if not path:
                    continue
                kind = _KINDS.get(info.type, "?")
                link = _normalise(info.linkname) if kind == HARDLINK else info.linkname
                offset = info.offset_data if kind == FILE else 0
                members.append(
                    (path, kind, info.mode, info.uid, info.gid, int(info.mtime), info.size, link, offset)
                )
                if kind == FILE and _LIBRARY.match(path.rsplit("/", 1)[-1]):
                    soname = elf_soname(raw, offset, info.size)
                    if soname is not None:
                        # ldconfig files an object without DT_SONAME under its file name.
                        sonames[path] = soname or path.rsplit("/", 1)[-1]
    except tarfile.TarError as exc:
        raise DebFormatError(f"data.tar: {exc}") from None
    return members, sonames


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
