"""Reading .deb files without extracting them: ``ar`` members, control and data tars.

A .deb is an ``ar`` archive holding ``debian-binary`` (``2.0``), ``control.tar[.gz|.xz|.zst]``
and ``data.tar[.gz|.xz|.zst|.bz2]``. :func:`open_deb` indexes the members;
:meth:`Deb.control` returns the control fields and md5sums, :meth:`Deb.data` streams the
data tar's members for a virtual root filesystem. Nothing is written to disk.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import zstandard

from distill.debian.deb822 import parse_paragraph_bytes
from distill.errors import DistillError
from distill.limits import expansion_limit
from distill.tarsafe import Capped, EntryBudget, members, open_stream

_AR_MAGIC = b"!<arch>\n"
# What a damaged member raises while it is decompressed and read as tar.
_READ_ERRORS = (tarfile.TarError, OSError, EOFError, lzma.LZMAError, zstandard.ZstdError, zlib.error)
_HEADER = 60
MAX_CONTROL_MEMBER = 64 << 20  # control, md5sums or conffiles (md5sums of the largest packages: a few MB)


class DebFormatError(DistillError, ValueError):
    """The file is not a well-formed .deb."""


@dataclass(frozen=True)
class Member:
    name: str
    offset: int
    size: int


def _decompressor(name: str, raw: IO[bytes]) -> IO[bytes]:
    if name.endswith(".tar"):
        return raw
    if name.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if name.endswith(".xz"):
        return lzma.LZMAFile(raw)
    if name.endswith(".zst"):
        return zstandard.ZstdDecompressor().stream_reader(raw)
    if name.endswith(".bz2"):
        return bz2.BZ2File(raw)
    raise DebFormatError(f"unsupported compression in member {name!r}")


@dataclass(frozen=True)
class Control:
    fields: dict[str, str]
    md5sums: bytes
    conffiles: list[str]
    text: bytes = b""  # the control file as shipped (what dpkg-deb --field prints)


class Deb:
    def __init__(self, path: Path, members: dict[str, Member]) -> None:
        self.path = path
        self.members = members

    def _member(self, prefix: str) -> Member:
        for name, m in self.members.items():
            if name == prefix or name.startswith(prefix + "."):
                return m
        raise DebFormatError(f"{self.path.name} has no {prefix} member")

    def _read(self, m: Member) -> bytes:
        with open(self.path, "rb") as f:
            f.seek(m.offset)
            data = f.read(m.size)
        if len(data) != m.size:
            raise DebFormatError(f"{self.path.name}: member {m.name} is truncated")
        return data

    def _stream(self, m: Member) -> IO[bytes]:
        """The member decompressed, and stopped if it expands beyond the limits
        (distill.limits.expansion_limit: a .deb may be a decompression bomb like any archive)."""
        raw = _decompressor(m.name, io.BytesIO(self._read(m)))
        what = f"{self.path.name}: {m.name}"
        return io.BufferedReader(Capped(raw, expansion_limit(m.size), what, DebFormatError), 1 << 16)

    def _tar(self, prefix: str) -> tarfile.TarFile:
        # The compressed member is held in memory; it is decompressed and read as
        # tar incrementally, so no extracted file ever exists.
        m = self._member(prefix)
        try:
            return open_stream(self._stream(m))
        except _READ_ERRORS as exc:
            raise DebFormatError(f"{self.path.name}: {m.name}: {exc}") from None

    def control(self) -> Control:
        fields: dict[str, str] = {}
        text = b""
        md5sums = b""
        conffiles: list[str] = []
        try:
            with self._tar("control.tar") as tf:
                for info in members(tf, EntryBudget(f"{self.path.name}: control.tar", DebFormatError)):
                    name = info.name.removeprefix("./")
                    if not info.isfile() or name not in ("control", "md5sums", "conffiles"):
                        continue
                    if info.size > MAX_CONTROL_MEMBER:
                        raise DebFormatError(
                            f"{self.path.name}: control.tar: {name} is {info.size} bytes, "
                            f"more than {MAX_CONTROL_MEMBER}"
                        )
                    f = tf.extractfile(info)
                    data = f.read() if f else b""
                    if name == "control":
                        text = data
                        fields = parse_paragraph_bytes(data)
                    elif name == "md5sums":
                        md5sums = data
                    else:
                        conffiles = data.decode("utf-8", "replace").split()
        except _READ_ERRORS as exc:
            raise DebFormatError(f"{self.path.name}: control.tar: {exc}") from None
        if "Package" not in fields:
            raise DebFormatError(f"{self.path.name} has no control file")
        return Control(fields, md5sums, conffiles, text)

    def copy_data(self, out: IO[bytes], chunk: int = 1 << 20) -> int:
        """Write the decompressed data tar to ``out``; returns its size."""
        m = self._member("data.tar")
        stream = self._stream(m)
        total = 0
        try:
            while block := stream.read(chunk):
                out.write(block)
                total += len(block)
        except _READ_ERRORS as exc:
            raise DebFormatError(f"{self.path.name}: {m.name}: {exc}") from None
        return total

    def files(self, wanted: Callable[[str], bool], limit: int = MAX_CONTROL_MEMBER) -> dict[str, bytes | str]:
        """The data members whose path (without the leading ``./``) ``wanted`` accepts:
        the contents of a regular file (at most ``limit`` bytes each), the target of a
        symbolic link. Only those members are read; the rest of the tar is skipped."""
        out: dict[str, bytes | str] = {}
        try:
            with self._tar("data.tar") as tf:
                for info in members(tf, EntryBudget(f"{self.path.name}: data.tar", DebFormatError)):
                    name = info.name.removeprefix("./").rstrip("/")
                    if not wanted(name):
                        continue
                    if info.issym():
                        out[name] = info.linkname
                    elif info.isfile():
                        if info.size > limit:
                            raise DebFormatError(
                                f"{self.path.name}: data.tar: {name} is {info.size} bytes, more than {limit}"
                            )
                        f = tf.extractfile(info)
                        out[name] = f.read() if f else b""
        except _READ_ERRORS as exc:
            raise DebFormatError(f"{self.path.name}: data.tar: {exc}") from None
        return out

    def data(self) -> Iterator[tuple[tarfile.TarInfo, bytes | None]]:
        """Each data member with its contents (None for non-regular files), in archive order."""
        try:
            with self._tar("data.tar") as tf:
                for info in members(tf, EntryBudget(f"{self.path.name}: data.tar", DebFormatError)):
                    content = None
                    if info.isfile():
                        f = tf.extractfile(info)
                        content = f.read() if f else b""
                    yield info, content
        except _READ_ERRORS as exc:
            raise DebFormatError(f"{self.path.name}: data.tar: {exc}") from None


def open_deb(path: Path) -> Deb:
    """Index the ``ar`` members of a .deb (reads only the headers)."""
    members: dict[str, Member] = {}
    with open(path, "rb") as f:
        if f.read(8) != _AR_MAGIC:
            raise DebFormatError(f"{path.name} is not an ar archive")
        size_total = path.stat().st_size
        pos = 8
        while pos < size_total:
            header = f.read(_HEADER)
            if len(header) < _HEADER or header[58:60] != b"`\n":
                raise DebFormatError(f"{path.name}: malformed ar header at byte {pos}")
            name = header[:16].decode("ascii", "replace").strip().rstrip("/")
            try:
                size = int(header[48:58].decode("ascii").strip())
            except ValueError:
                raise DebFormatError(f"{path.name}: malformed ar member size at byte {pos}") from None
            start = pos + _HEADER
            if start + size > size_total:
                raise DebFormatError(f"{path.name}: member {name} runs past the end of the file")
            members[name] = Member(name, start, size)
            pos = start + size + (size & 1)
            f.seek(pos)
    if "debian-binary" not in members:
        raise DebFormatError(f"{path.name} has no debian-binary member")
    return Deb(path, members)
