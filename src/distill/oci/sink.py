"""Where images go: an OCI image layout directory, or one archive ``podman load`` and
``docker load`` accept (an OCI layout plus Docker's ``manifest.json``).

Outputs are replaced atomically: a layout is built in a sibling directory and
exchanged with the old one in one ``renameat2(RENAME_EXCHANGE)`` (two renames where
the kernel lacks it); an archive is written to a temporary file and renamed. A
reader sees the old image or the new one, never a mix; a failed build leaves the
old one untouched.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from distill.archive.cache import CorruptEntryError, NotRegularError, discard, open_entry
from distill.errors import DistillError, OutputError
from distill.limits import open_regular
from distill.oci.image import BlobStore, Descriptor, canonical_json, index_document, reachable

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@dataclass(frozen=True)
class DockerEntry:
    """One image of Docker's ``manifest.json``."""

    config: str  # digest
    layers: list[str]  # digests
    tags: list[str]


_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REFERENCE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?/)?"  # a registry host[:port]
    rf"{_COMPONENT}(?:/{_COMPONENT})*"  # the repository path
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?",  # the tag
    re.ASCII,
)


def check_tag(tag: str) -> str:
    """``tag`` if it is an image reference (the OCI/docker grammar: [HOST[:PORT]/]NAME[:TAG]).
    It is written as the layout's ref.name and an archive's RepoTags: a newline or a
    second ':' there gave an image that podman and docker refuse to load, with exit 0."""
    if len(tag) > 255 or not _REFERENCE.fullmatch(tag):
        raise OutputError(
            f"--tag {tag[:80]!r} is not an image reference",
            hint="NAME[:TAG] with a lowercase NAME (e.g. team/app:1.0), optionally after HOST[:PORT]/",
        )
    return tag


def split_tag(tag: str) -> tuple[str, str]:
    """``NAME[:TAG]`` -> (full reference, tag); the tag defaults to ``latest``."""
    _, sep, t = tag.rpartition(":")
    if not sep or "/" in t:
        return f"{tag}:latest", "latest"
    return tag, t


def top_index(
    top: Descriptor, tag: str | None, per_arch: list[tuple[str, Descriptor]] | None = None
) -> bytes:
    """The layout's index.json: one entry, the image (or the multi-arch image index)
    under ``tag``, as ko, crane and apko write it, so that a reader needs no tag
    (``skopeo inspect oci:DIR``; ``syft scan oci-dir:DIR``, for an index only in Syft
    releases that choose a platform).

    ``per_arch`` (asked for with ``--per-arch-tags``) adds each platform's manifest
    under ``TAG-ARCH``, for tools that cannot choose a platform in an index themselves
    (``umoci unpack --image DIR:latest-arm64``); index.json then has several entries,
    which tag-less readers refuse."""
    if not tag:
        return canonical_json(index_document([top]))
    full, short = split_tag(tag)
    entries = [(top, full, short)]
    for arch, desc in per_arch or []:
        entries.append((desc, f"{full}-{arch}", f"{short}-{arch}"))
    return canonical_json(
        index_document(
            [
                Descriptor(
                    d.media_type,
                    d.digest,
                    d.size,
                    d.platform,
                    {"io.containerd.image.name": f, "org.opencontainers.image.ref.name": r},
                )
                for d, f, r in entries
            ]
        )
    )


def docker_manifest(entries: list[DockerEntry]) -> bytes:
    doc = [
        {
            "Config": f"blobs/sha256/{e.config.removeprefix('sha256:')}",
            "RepoTags": [split_tag(t)[0] for t in e.tags],
            "Layers": [f"blobs/sha256/{d.removeprefix('sha256:')}" for d in e.layers],
        }
        for e in entries
    ]
    return json.dumps(doc, separators=(",", ":")).encode()


def _exchange(a: Path, b: Path) -> bool:
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    try:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return bool(fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0)


def _check_parent(out: Path) -> None:
    parent = out.parent
    if not parent.is_dir():
        raise OutputError(f"cannot write {out}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {out}: {parent} is not writable")


_FICLONE = 0x40049409  # ioctl: share the source's extents (btrfs, XFS): a copy without the writes


def _corrupt(src: Path, digest: str) -> CorruptEntryError:
    discard(src)
    return CorruptEntryError(f"the cached blob {src} does not match its digest {digest}; it was removed")


def copy_blob(src: Path, dst: Path, digest: str, size: int) -> None:
    """Copy a cache blob into an output, hashing it on the way (verify on copy).

    Never a hard link: an output shares no inode with the cache, so damaging one cannot
    damage the other. A reflink is used where the filesystem has one (the bytes are
    still read once, to be hashed). A blob that does not hash to its digest is removed
    from the cache and :class:`CorruptEntryError` raised; the caller makes it again.
    """
    h = hashlib.sha256()
    try:
        fin = open_entry(src)
    except NotRegularError:  # a FIFO or device in its place: never waited on
        raise _corrupt(src, digest) from None
    with fin, open(dst, "w+b") as fout:
        try:
            fcntl.ioctl(fout.fileno(), _FICLONE, fin.fileno())
            cloned = True
        except OSError:
            cloned = False
        # A clone is hashed from the output itself: what is checked is what was written.
        reader = fout if cloned else fin
        while chunk := reader.read(1 << 20):
            h.update(chunk)
            if not cloned:
                fout.write(chunk)
    if "sha256:" + h.hexdigest() != digest or dst.stat().st_size != size:
        dst.unlink(missing_ok=True)
        raise _corrupt(src, digest)


class _HashingReader:
    """A blob read for an archive, hashed on the way; checked by the caller at the end."""

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.hash = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.hash.update(data)
        return data


def _refuse_foreign_directory(out: Path) -> None:
    """An existing directory is replaced only when it is empty or an OCI image layout:
    ``-o DIR`` never deletes files the user keeps there."""
    try:
        with os.scandir(out) as it:
            names = {e.name for e in it}
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror}") from None
    if not names or ("oci-layout" in names and (out / "oci-layout").is_file()):
        return
    raise OutputError(
        f"refusing to replace {out}: it is a directory that is neither empty nor an OCI image layout",
        hint="choose another -o, or remove it yourself",
    )


def _refuse_foreign_file(out: Path) -> None:
    """An existing file is replaced only when it is empty or a tar archive holding an
    image (an OCI layout or ``docker save`` output): ``-o x.tar`` never overwrites
    anything else."""
    try:
        if out.stat().st_size == 0:
            return
        with tarfile.open(out, "r:") as tf:
            for info in tf:
                if info.name.lstrip("./") in ("oci-layout", "index.json", "manifest.json"):
                    return
    except (OSError, tarfile.TarError):
        pass
    raise OutputError(
        f"refusing to overwrite {out}: it is not an image archive",
        hint="choose another -o, or remove it yourself",
    )


def _hashes_to(f: IO[bytes], d: Descriptor) -> bool:
    h = hashlib.sha256()
    n = 0
    while chunk := f.read(1 << 20):
        h.update(chunk)
        n += len(chunk)
    return n == d.size and "sha256:" + h.hexdigest() == d.digest


def layout_is_current(out: Path, index: bytes, blobs: list[Descriptor]) -> bool:
    """Whether ``out`` already holds exactly this image: its index.json, and every blob
    hashed (a damaged blob of the right size is not "up to date"; it is written again)."""
    try:
        if (out / "index.json").read_bytes() != index:
            return False
        for d in blobs:
            with open_regular(out / "blobs" / "sha256" / d.digest[7:]) as f:
                if not _hashes_to(f, d):
                    return False
        return True
    except (OSError, DistillError):
        return False


def write_layout(
    out: Path,
    store: BlobStore,
    top: Descriptor,
    tag: str | None,
    per_arch: list[tuple[str, Descriptor]] | None = None,
) -> bool:
    """Write (or replace) an OCI image layout; False if it already held exactly this image."""
    index = top_index(top, tag, per_arch)
    blobs = reachable(store, top)
    if out.exists() and not out.is_dir():
        raise OutputError(
            f"cannot write an image layout to {out}: it is a file", hint="remove it or use -o DIR"
        )
    if layout_is_current(out, index, blobs):
        return False
    if out.is_dir():
        _refuse_foreign_directory(out)
    _check_parent(out.absolute())
    try:
        tmp = Path(tempfile.mkdtemp(dir=out.absolute().parent, prefix=f".{out.name}.", suffix=".tmp"))
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror}") from None
    try:
        (tmp / "blobs" / "sha256").mkdir(parents=True)
        for d in blobs:
            copy_blob(store.path(d.digest), tmp / "blobs" / "sha256" / d.digest[7:], d.digest, d.size)
        (tmp / "oci-layout").write_bytes(b'{"imageLayoutVersion":"1.0.0"}')
        (tmp / "index.json").write_bytes(index)
        tmp.chmod(0o755)
        if out.exists():
            if not _exchange(tmp, out):
                old = tmp.with_suffix(".old")
                os.rename(out, old)
                os.rename(tmp, out)
                tmp = old
            _remove_old(tmp)
        else:
            os.rename(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True


def _remove_old(old: Path) -> None:
    """What an exchange left at the temporary name: the old layout, or the symlink ``-o``
    named (rmtree refuses a symlink, and ignore_errors left it behind)."""
    if old.is_symlink() or not old.is_dir():
        old.unlink(missing_ok=True)
    else:
        shutil.rmtree(old, ignore_errors=True)


def _add(
    tf: tarfile.TarFile, name: str, size: int, mode: int = 0o644, fileobj: IO[bytes] | None = None
) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, 0
    info.uname = info.gname = ""
    info.type = tarfile.DIRTYPE if fileobj is None and size == 0 and name.endswith("/") else tarfile.REGTYPE
    tf.addfile(info, fileobj)


def write_archive(
    out: Path, store: BlobStore, top: Descriptor, tag: str | None, docker: list[DockerEntry]
) -> bool:
    """Write one uncompressed tar holding the layout and Docker's manifest.json."""
    index = top_index(top, tag)
    manifest = docker_manifest(docker)
    blobs = reachable(store, top)
    if out.is_dir():
        raise OutputError(f"cannot write an archive to {out}: it is a directory")
    if out.is_file() and _archive_is_current(out, index, manifest, blobs):
        return False
    if out.exists():
        _refuse_foreign_file(out)
    _check_parent(out.absolute())
    try:
        fd, tmp = tempfile.mkstemp(dir=out.absolute().parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f, tarfile.open(fileobj=f, mode="w", format=tarfile.PAX_FORMAT) as tf:
            _add(tf, "blobs/", 0, 0o755)
            _add(tf, "blobs/sha256/", 0, 0o755)
            for d in blobs:
                src = store.path(d.digest)
                try:
                    blob = open_entry(src)
                except NotRegularError:  # a FIFO or device in its place: never waited on
                    raise _corrupt(src, d.digest) from None
                with blob:
                    if os.fstat(blob.fileno()).st_size != d.size:
                        raise _corrupt(src, d.digest)
                    reader = _HashingReader(blob)
                    _add(tf, f"blobs/sha256/{d.digest[7:]}", d.size, fileobj=reader)  # type: ignore[arg-type]
                    if blob.read(1) or "sha256:" + reader.hash.hexdigest() != d.digest:
                        raise _corrupt(src, d.digest)
            for name, data in (
                ("index.json", index),
                ("manifest.json", manifest),
                ("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
            ):
                _add(tf, name, len(data), fileobj=io.BytesIO(data))
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _archive_is_current(out: Path, index: bytes, manifest: bytes, blobs: list[Descriptor]) -> bool:
    """Whether the archive ``out`` already holds exactly this image: its index.json and
    manifest.json, and every blob once, hashed (as :func:`layout_is_current`)."""
    expected = {"index.json": index, "manifest.json": manifest}
    wanted = {f"blobs/sha256/{d.digest[7:]}": d for d in blobs}
    seen: set[str] = set()
    try:
        with tarfile.open(out, "r:") as tf:
            for info in tf:
                name = info.name
                if name not in expected and name not in wanted:
                    continue
                f = tf.extractfile(info) if info.isfile() else None
                if f is None or name in seen:
                    return False
                seen.add(name)
                if name in expected:
                    if info.size != len(expected[name]) or f.read() != expected[name]:
                        return False
                elif not _hashes_to(f, wanted[name]):
                    return False
        return seen == {*expected, *wanted}
    except (OSError, tarfile.TarError):
        return False
