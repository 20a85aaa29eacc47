"""The content-addressed cache.

Layout under the cache directory::

    lists/<key>.InRelease     last InRelease seen per suite URL (re-verified on use)
    lists/<key>.json          its HTTP validators (ETag, Last-Modified)
    indexes/<sha256>          a verified, decompressed Packages file, named by its hash
    indexes/<sha256>.idx      the parsed look-up table for it (sealed: checksummed, see below)
    debs/<sha256>.deb         verified .deb files, named by their hash
    vuln/<sha256>.changelog   the parsed changelog of a .deb (sealed; distill.vuln)
    vuln/<sha256>.data        a vulnerability data file downloaded from a URL, named by its hash
    vuln/<sha256>.index       the look-up table made from a data file (sealed)
    vuln/<sha256>.candidates  the newest candidates of a set of packages, named by the
                              suites' InRelease digests and the names (sealed)
    vuln/<sha256>.inventory   the packages of an image, named by its config and layer digests (sealed)
    vuln/<key>.url            what a data URL last gave: its hash, validators and time (sealed)
    fleet/<sha256>.json       the audit of one image digest for `distill fleet` (sealed)
    tmp/                      partial downloads (resumed by the next run) and entry locks

Every write goes to a temporary file with a name unique to its writer, in the same
directory, and is renamed into place, so readers see the old entry or the new one,
never half a file, and two concurrent builds writing the same entry both succeed.
A download is the one write that resumes across runs: it holds a per-entry lock
(``tmp/<sha256>.lock``) while it owns ``tmp/<sha256>.partial``.

The cache is input like any other: every name that comes from a lock, an index or a
manifest must be a SHA256 digest before it names a path (the path methods check it
themselves), and every entry is checked against its hash when it is read. A corrupt
entry is removed (:func:`discard`) and made again, or, when that needs the network
and the network is off, reported as one error line.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from distill.errors import IntegrityError

_DIGEST = re.compile(r"[0-9a-f]{64}")
SEAL_MAGIC = b"distill-sealed-1\n"


class CorruptEntryError(IntegrityError):
    """A cache entry does not match its hash. It has been removed; ``needs_network`` says
    whether making it again means downloading (impossible with ``--offline``)."""

    def __init__(self, message: str, *, needs_network: bool = False, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.needs_network = needs_network


def damaged_offline(what: str, path: Path) -> CorruptEntryError:
    """The error for a damaged entry that only a download could replace, under --offline."""
    return CorruptEntryError(
        f"the cached {what} ({path}) does not match its SHA256; it was removed, "
        "and --offline forbids downloading it again",
        needs_network=True,
        hint="run once without --offline",
    )


def is_digest(value: object) -> bool:
    """True for a lowercase hexadecimal SHA256 (64 characters, nothing else)."""
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def check_digest(value: object, what: str = "digest") -> str:
    """``value`` if it is a SHA256 digest; else :class:`IntegrityError` (it would name a path)."""
    if not is_digest(value):
        raise IntegrityError(f"{what} {str(value)[:80]!r} is not a SHA256 digest (64 lowercase hex digits)")
    assert isinstance(value, str)
    return value


class NotRegularError(OSError):
    """A FIFO, socket, device or directory where a cache entry (a regular file) belongs."""


def open_entry(path: Path) -> BinaryIO:
    """A cache entry opened for reading. The open does not wait (``O_NONBLOCK``) and the
    descriptor must be a regular file: a FIFO, socket or device in an entry's place is an
    :class:`OSError` (a damaged entry, made again), never a build that hangs."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except IsADirectoryError:
        raise NotRegularError(errno.EISDIR, "not a regular file", str(path)) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularError(errno.EINVAL, "not a regular file", str(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_entry(path: Path) -> bytes:
    """The bytes of a cache entry (see :func:`open_entry`)."""
    with open_entry(path) as f:
        return f.read()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open_entry(path) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def discard(*paths: Path) -> None:
    """Remove cache entries (a corrupt one and what was derived from it)."""
    for p in paths:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def seal(payload: bytes) -> bytes:
    """``payload`` prefixed with its SHA256, so a reader can tell a damaged file."""
    return SEAL_MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload


def unseal(data: bytes) -> bytes | None:
    """The payload of a :func:`seal` ed file, or None if it is damaged or not sealed."""
    head = len(SEAL_MAGIC) + 65
    if not data.startswith(SEAL_MAGIC) or len(data) < head:
        return None
    payload = data[head:]
    if data[len(SEAL_MAGIC) : head - 1] != hashlib.sha256(payload).hexdigest().encode():
        return None
    return payload


def read_sealed(path: Path, what: str) -> bytes | None:
    """The payload of a sealed cache entry; None when it is missing or from an older
    distill (made again silently); a damaged one is removed and
    :class:`CorruptEntryError` raised (the caller warns and makes it again)."""
    try:
        data = read_entry(path)
    except NotRegularError:  # a FIFO or device in its place: made again
        with contextlib.suppress(OSError):
            path.unlink()
        raise CorruptEntryError(f"the cached {what} {path} is not a regular file; it was removed") from None
    except OSError:
        return None
    if not data.startswith(SEAL_MAGIC):
        return None
    payload = unseal(data)
    if payload is None:
        discard(path)
        raise CorruptEntryError(f"the cached {what} {path} is damaged; it was removed")
    return payload


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "distill"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that no reader ever sees a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (and threads), removed again on release.

    The lock file is deleted by its holder, so a waiter may end up holding a lock on a
    file that is no longer there: it checks that the path still names the file it
    locked, and starts again if not (the usual flock-and-unlink protocol).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:
                os.close(fd)
                continue
        except BaseException:
            os.close(fd)
            raise
        break
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)


class Cache:
    """A cache directory; all of distill's persistent state outside the project."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or default_cache_dir()).expanduser()

    def _dir(self, name: str) -> Path:
        d = self.root / name
        d.mkdir(parents=True, exist_ok=True)
        return d

    @staticmethod
    def url_key(url: str) -> str:
        return hashlib.sha256(url.encode()).hexdigest()[:32]

    def inrelease_path(self, url: str) -> Path:
        return self._dir("lists") / f"{self.url_key(url)}.InRelease"

    def validators_path(self, url: str) -> Path:
        return self._dir("lists") / f"{self.url_key(url)}.json"

    def index_path(self, sha256: str) -> Path:
        return self._dir("indexes") / check_digest(sha256, "index hash")

    def index_table_path(self, sha256: str) -> Path:
        return self._dir("indexes") / f"{check_digest(sha256, 'index hash')}.idx"

    def deb_path(self, sha256: str) -> Path:
        return self._dir("debs") / f"{check_digest(sha256, 'package hash')}.deb"

    def partial_path(self, sha256: str) -> Path:
        return self._dir("tmp") / f"{check_digest(sha256, 'package hash')}.partial"

    def lock_path(self, sha256: str) -> Path:
        return self._dir("tmp") / f"{check_digest(sha256, 'package hash')}.lock"

    def vuln_path(self, key: str, kind: str) -> Path:
        """An entry of the vulnerability data (see the module docstring); ``key`` is a
        SHA256: the .deb's, the data file's, or (``url``) the URL's."""
        if kind not in ("changelog", "candidates", "data", "index", "inventory", "url"):
            raise ValueError(kind)
        return self._dir("vuln") / f"{check_digest(key, 'vulnerability data key')}.{kind}"

    def fleet_path(self, key: str) -> Path:
        """The audit of one image digest for ``distill fleet``; ``key`` is a SHA256 of the
        digest, platform and entry format (distill.fleet.audit)."""
        return self._dir("fleet") / f"{check_digest(key, 'fleet entry key')}.json"

    def has_deb(self, sha256: str) -> bool:
        return (self.root / "debs" / f"{check_digest(sha256, 'package hash')}.deb").is_file()

    def deb_is_intact(self, sha256: str) -> bool:
        """The cached .deb hashes to its name (hash on read)."""
        try:
            return sha256_file(self.deb_path(sha256)) == sha256
        except OSError:
            return False
