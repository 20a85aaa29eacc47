"""Bounded tar reading, shared by every reader of archives distill did not write: image
layers (audit, ``from: oci:`` builds), OCI and docker archives, a .deb's control and
data tars.

Python's :mod:`tarfile` trusts the archive in ways that cost memory and time:

* a PAX or GNU long-name header is read whole into memory, whatever size it declares
  (a 1 GB declared PAX header is a 1 GB allocation), and each one may be followed by
  another (a recursion per header);
* a ``TarFile`` keeps the header of every member it has read, even when streaming
  (millions of entries are gigabytes of ``TarInfo``);
* GNU sparse maps are read into lists as long as the archive makes them.

:class:`BoundedTarInfo` refuses special headers larger than :data:`MAX_TAR_HEADER`,
more than :data:`MAX_HEADER_CHAIN` of them in a row, and sparse entries (neither
container layers nor .debs have them); :func:`members` iterates without keeping headers
and counts entries against an :class:`EntryBudget`; :class:`Capped` stops a stream
that expands beyond its limit (see :func:`distill.limits.expansion_limit`). Go's
``archive/tar`` applies the same kind of caps.
"""

from __future__ import annotations

import io
import lzma
import sys
import tarfile
import zlib
from collections.abc import Iterator
from typing import Any

from isal import isal_zlib

from distill.limits import MiB, env_limit

MAX_TAR_HEADER = MiB  # one PAX / GNU long name header (Go's archive/tar: 1 MiB too)
MAX_HEADER_CHAIN = 16  # special headers in a row before a member
MAX_TAR_ENTRIES = 2_000_000  # entries of one archive, or of one image's layers together

_SPECIAL = {
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
}


_ISAL_ERROR: type[BaseException] = isal_zlib.error  # type: ignore[assignment]  # typed as an instance


def read_errors() -> tuple[type[BaseException], ...]:
    """What reading a damaged (compressed) tar stream raises: tarfile's errors and each
    decompressor's own. ISA-L's gzip and zstandard raise neither ``zlib.error`` nor
    ``OSError`` (a flipped bit in a gzip layer was an ``IsalError`` traceback)."""
    errors: tuple[type[BaseException], ...] = (
        tarfile.TarError,
        OSError,
        EOFError,
        ValueError,
        zlib.error,
        lzma.LZMAError,
        _ISAL_ERROR,
    )
    zstd = sys.modules.get("zstandard")  # imported only where a zstd stream is read
    return (*errors, zstd.ZstdError) if zstd is not None else errors


class TarLimitError(tarfile.TarError):
    """A tar header beyond the limits (raised inside tarfile's reading, so a TarError)."""


class BoundedTarInfo(tarfile.TarInfo):
    """tarfile's header reader, with the special headers' sizes checked before they are read."""

    def _proc_member(self, tf: tarfile.TarFile) -> Any:
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise TarLimitError(f"{self.name!r}: GNU sparse entries are not supported")
        if self.type not in _SPECIAL:
            return tarfile.TarInfo._proc_member(self, tf)  # type: ignore[attr-defined]
        if self.size > MAX_TAR_HEADER:
            raise TarLimitError(
                f"an extended header of {self.size} bytes (at byte {self.offset}); the limit is {MAX_TAR_HEADER}"
            )
        depth = getattr(tf, "_distill_chain", 0)
        if depth >= MAX_HEADER_CHAIN:
            raise TarLimitError(
                f"more than {MAX_HEADER_CHAIN} extended headers in a row (at byte {self.offset})"
            )
        tf._distill_chain = depth + 1  # type: ignore[attr-defined]
        try:
            return tarfile.TarInfo._proc_member(self, tf)  # type: ignore[attr-defined]
        finally:
            tf._distill_chain = depth  # type: ignore[attr-defined]

    def _sparse_refused(self, *args: Any) -> Any:
        raise TarLimitError(f"{self.name!r}: GNU sparse entries are not supported")

    _proc_gnusparse_00 = _sparse_refused
    _proc_gnusparse_01 = _sparse_refused
    _proc_gnusparse_10 = _sparse_refused


def open_stream(fileobj: Any) -> tarfile.TarFile:
    """A tar read front to back from ``fileobj`` (``r|``), with bounded headers."""
    return tarfile.open(fileobj=fileobj, mode="r|", tarinfo=BoundedTarInfo, bufsize=1 << 16)


class EntryBudget:
    """Entries allowed over one or more archives (``DISTILL_MAX_TAR_ENTRIES`` raises it)."""

    def __init__(self, what: str, error: type[Exception], limit: int | None = None) -> None:
        self.what = what
        self.error = error
        self.limit = limit if limit is not None else env_limit("MAX_TAR_ENTRIES", MAX_TAR_ENTRIES)
        self.count = 0

    def take(self) -> None:
        self.count += 1
        if self.count > self.limit:
            raise self.error(
                f"{self.what}: more than {self.limit} tar entries; refusing"
                " (DISTILL_MAX_TAR_ENTRIES raises the limit)"
            )


def members(tf: tarfile.TarFile, budget: EntryBudget) -> Iterator[tarfile.TarInfo]:
    """Each member in archive order, counted; tarfile keeps no list of them (it would
    hold every header ever read)."""
    while True:
        m = tf.next()
        tf.members.clear()  # type: ignore[attr-defined]
        if m is None:
            return
        budget.take()
        yield m


class Capped(io.RawIOBase):
    """A decompressed stream counted as it is read; beyond ``limit`` bytes it is refused
    as a decompression bomb."""

    def __init__(self, raw: Any, limit: int, what: str, error: type[Exception]) -> None:
        super().__init__()
        self.raw, self.limit, self.what, self.error, self.count = raw, limit, what, error, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        n = len(data)
        buffer[:n] = data
        self.count += n
        if self.count > self.limit:
            raise self.error(
                f"{self.what} expands beyond {self.limit >> 20} MiB: refusing a likely decompression bomb"
                " (DISTILL_MAX_EXPANDED_MIB and DISTILL_MAX_EXPANSION_RATIO raise the limit)"
            )
        return n


def is_tar(path: Any) -> bool:
    """Whether ``path`` starts like a (possibly compressed) tar archive; reads one header,
    bounded (``tarfile.is_tarfile`` would read a huge PAX header whole)."""
    try:
        with tarfile.open(path, "r:*", tarinfo=BoundedTarInfo):
            return True
    except TarLimitError:
        return True  # a tar, and a hostile one: its reader refuses it with the reason
    except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error, lzma.LZMAError):
        return False
