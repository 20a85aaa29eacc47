"""Deterministic gzip tar layers, hashed while they are written, and cached by recipe.

Same entries in, same bytes out: entries sorted by path, numeric owners with empty
user/group names, the mtimes the plan carries, PAX headers only where a name needs
one, and a gzip stream (ISA-L, level 1) with no file name and mtime 0. The layer's
``diff_id`` (SHA256 of the tar) and digest (of the gzip) are computed in the same
pass.

A layer's *recipe* (every header plus the identity of every file's content) is
hashed into a key; the layer cache maps that key to a blob already written, so a
rebuild with nothing changed writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from isal import isal_zlib

from distill.archive.cache import atomic_write, file_lock, is_digest, read_sealed, seal
from distill.assemble.expand import DIR, FILE, SYMLINK, check_tar
from distill.assemble.rootfs import LayerPlan
from distill.assemble.tree import Node
from distill.oci.image import BlobStore

LAYER_FORMAT = "distill-layer-1;tar=pax;gzip=isal-1"


@dataclass(frozen=True)
class LayerBlob:
    digest: str  # sha256:<hex> of the compressed blob
    diff_id: str  # sha256:<hex> of the tar
    size: int  # compressed bytes
    tar_size: int  # uncompressed bytes
    files: int


def ordered_entries(plan: LayerPlan) -> list[tuple[str, Node | None]]:
    merged: dict[str, Node | None] = {**plan.parents, **plan.entries}
    return sorted(merged.items(), key=lambda kv: kv[0].split("/"))


def recipe_key(entries: list[tuple[str, Node | None]]) -> str:
    h = hashlib.sha256(LAYER_FORMAT.encode())
    for path, node in entries:
        if node is None:
            h.update(f"\0W{path}".encode())
        else:
            h.update(
                f"\0{path}\1{node.kind}\1{node.mode}\1{node.uid}\1{node.gid}\1{node.mtime}"
                f"\1{node.size}\1{node.link}\1{node.content_id()}".encode()
            )
    return h.hexdigest()


class _GzipSink:
    """A write-only stream: tar bytes in, hashed; gzip bytes out to ``out``, hashed."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.tar_hash = hashlib.sha256()
        self.gz_hash = hashlib.sha256()
        self.tar_size = 0
        self.size = 0
        self._z = isal_zlib.compressobj(1, isal_zlib.DEFLATED, 31)

    def _emit(self, data: bytes) -> None:
        if data:
            self.gz_hash.update(data)
            self.size += len(data)
            self.out.write(data)

    def write(self, data: bytes) -> int:
        self.tar_hash.update(data)
        self.tar_size += len(data)
        self._emit(self._z.compress(data))
        return len(data)

    def finish(self) -> None:
        self._emit(self._z.flush())


def _tarinfo(path: str, node: Node) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.mode = node.mode
    info.uid, info.gid = node.uid, node.gid
    info.uname = info.gname = ""
    info.mtime = node.mtime
    if node.kind == DIR:
        info.type = tarfile.DIRTYPE
    elif node.kind == SYMLINK:
        info.type = tarfile.SYMTYPE
        info.linkname = node.link
    else:
        info.type = tarfile.REGTYPE
        info.size = node.size
    return info


def _whiteout(path: str) -> tarfile.TarInfo:
    parent, _, base = path.rpartition("/")
    info = tarfile.TarInfo(f"{parent}/.wh.{base}" if parent else f".wh.{base}")
    info.mode = 0o644
    info.uname = info.gname = ""
    return info


class _Reader:
    """Reads file contents from expanded tars with one open descriptor per tar."""

    def __init__(self) -> None:
        self.fds: dict[str, int] = {}

    def read(self, node: Node) -> bytes:
        if node.data is not None:
            return node.data
        assert node.src is not None
        fd = self.fds.get(node.src[0])
        if fd is None:
            check_tar(node.src[0])  # hash on read, once per expanded package
            fd = self.fds[node.src[0]] = os.open(node.src[0], os.O_RDONLY)
        data = os.pread(fd, node.size, node.src[1])
        if len(data) != node.size:
            raise OSError(f"expanded package {node.src[0]} is truncated")
        return data

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()


def write_layer(entries: Iterable[tuple[str, Node | None]], out: BinaryIO) -> LayerBlob:
    import io

    sink = _GzipSink(out)
    reader = _Reader()
    files = 0
    try:
        with tarfile.open(fileobj=sink, mode="w|", format=tarfile.PAX_FORMAT) as tf:  # type: ignore[call-overload]
            for path, node in entries:
                if node is None:
                    tf.addfile(_whiteout(path))
                    continue
                info = _tarinfo(path, node)
                if node.kind == FILE:
                    files += 1
                    tf.addfile(info, io.BytesIO(reader.read(node)))
                else:
                    tf.addfile(info)
    finally:
        reader.close()
    sink.finish()
    return LayerBlob(
        f"sha256:{sink.gz_hash.hexdigest()}",
        f"sha256:{sink.tar_hash.hexdigest()}",
        sink.size,
        sink.tar_size,
        files,
    )


def _valid(blob: LayerBlob) -> bool:
    return all(
        isinstance(d, str) and d.startswith("sha256:") and is_digest(d[7:])
        for d in (blob.digest, blob.diff_id)
    ) and all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0
        for n in (blob.size, blob.tar_size, blob.files)
    )


class LayerCache:
    """``layers/<recipe key>.json`` -> a blob in the store (``blobs/sha256/``)."""

    def __init__(self, root: Path, store: BlobStore) -> None:
        self.store = store
        self.index = root / "layers"
        self.locks = root / "tmp"

    def get(self, key: str) -> LayerBlob | None:
        """The cached layer of a recipe, or None. The entry is sealed (checksummed), so a
        damaged one is a miss; the blob itself is hashed when it is copied to an output."""
        payload = read_sealed(self.index / f"{key}.json", "layer record")  # CorruptEntryError when damaged
        try:
            blob = LayerBlob(**json.loads(payload)) if payload is not None else None
        except (ValueError, TypeError):
            return None
        if blob is None or not _valid(blob):
            return None
        path = self.store.path(blob.digest)
        try:
            if path.stat().st_size != blob.size:
                return None
        except OSError:
            return None
        return blob

    def build(self, plan: LayerPlan) -> tuple[LayerBlob, bool]:
        """The plan's layer blob (from the cache when its recipe is known); True if it was written now."""
        entries = ordered_entries(plan)
        key = recipe_key(entries)
        found = self.get(key)
        if found is not None:
            return found, False
        # Concurrent builds of the same layer: one compresses it, the others reuse it.
        with file_lock(self.locks / f"{key}.layer.lock"):
            found = self.get(key)
            if found is not None:
                return found, False
            return self._write(key, entries), True

    def _write(self, key: str, entries: list[tuple[str, Node | None]]) -> LayerBlob:
        self.store.dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.store.dir, prefix=".layer.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                blob = write_layer(entries, f)
            os.replace(tmp, self.store.path(blob.digest))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        atomic_write(self.index / f"{key}.json", seal(json.dumps(blob.__dict__).encode()))
        return blob
