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
import io
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from distill.errors import OutputError
from distill.oci.image import BlobStore, Descriptor, canonical_json, index_document, reachable

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


@dataclass(frozen=True)
class DockerEntry:
    """One image of Docker's ``manifest.json``."""

    config: str  # digest
    layers: list[str]  # digests
    tags: list[str]


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


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def layout_is_current(out: Path, index: bytes, blobs: list[Descriptor]) -> bool:
    try:
        if (out / "index.json").read_bytes() != index:
            return False
        return all((out / "blobs" / "sha256" / d.digest[7:]).stat().st_size == d.size for d in blobs)
    except OSError:
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
    _check_parent(out.absolute())
    try:
        tmp = Path(tempfile.mkdtemp(dir=out.absolute().parent, prefix=f".{out.name}.", suffix=".tmp"))
    except OSError as exc:
        raise OutputError(f"cannot write {out}: {exc.strerror}") from None
    try:
        (tmp / "blobs" / "sha256").mkdir(parents=True)
        for d in blobs:
            _link_or_copy(store.path(d.digest), tmp / "blobs" / "sha256" / d.digest[7:])
        (tmp / "oci-layout").write_bytes(b'{"imageLayoutVersion":"1.0.0"}')
        (tmp / "index.json").write_bytes(index)
        tmp.chmod(0o755)
        if out.exists():
            if not _exchange(tmp, out):
                old = tmp.with_suffix(".old")
                os.rename(out, old)
                os.rename(tmp, out)
                tmp = old
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.rename(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot write {out}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return True


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
    if out.is_file() and _archive_is_current(out, index, manifest):
        return False
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
                with open(store.path(d.digest), "rb") as blob:
                    _add(tf, f"blobs/sha256/{d.digest[7:]}", d.size, fileobj=blob)
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


def _archive_is_current(out: Path, index: bytes, manifest: bytes) -> bool:
    try:
        with tarfile.open(out, "r:") as tf:
            found = {}
            for info in tf:
                if info.name in ("index.json", "manifest.json"):
                    f = tf.extractfile(info)
                    found[info.name] = f.read() if f else b""
            return found.get("index.json") == index and found.get("manifest.json") == manifest
    except (OSError, tarfile.TarError):
        return False
