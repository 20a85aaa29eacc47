"""Reading an image's filesystem: a :class:`~distill.assemble.tree.Tree` of headers
streamed through the layers of an :class:`~distill.oci.source.Image` from any
source (whiteouts applied, nothing extracted to disk) — the base of an app built
``from:`` an image.

Only what checks need is kept of the content: the dpkg databases (status.d and
status, for the package list), the dynamic linker's configuration and the SONAME
of every shared library. With a blob store, each layer is kept in it on the way
(the build reuses the base's layers as they are), and only once it has been found
whole: its digest, its size and the config's diff_id.
"""

from __future__ import annotations

import io
import os
from contextlib import AbstractContextManager
from typing import IO, Any, Protocol

from isal import igzip

from distill.assemble.expand import DIR, FILE, SYMLINK, elf_soname
from distill.assemble.tree import Node, Tree
from distill.errors import ImageError
from distill.limits import expansion_limit
from distill.oci.image import BlobStore
from distill.oci.source import Image, Source, Verified, pull_blob
from distill.tarsafe import Capped, EntryBudget, members, open_stream, read_errors

_KEEP_CONTENT = ("var/lib/dpkg/status", "etc/ld.so.conf")
MAX_KEPT = 64 << 20  # content kept for checks, at most (a dpkg status of a big image is a few MB)


class Keeper(Protocol):
    """What else a reader keeps of the files it streams (an SBOM's package metadata):
    :meth:`wants` is asked for every regular file; for those it wants, :meth:`keep`
    reads the file and returns what the tree's node holds as its data (the bytes, or a
    summary of them), so that a later layer's whiteout removes it with the file."""

    def wants(self, path: str, size: int) -> bool: ...

    def keep(self, path: str, f: IO[bytes], size: int) -> bytes: ...


def check_reusable(image: Image) -> None:
    """The base's layers are reused as they are: their descriptors must be whole."""
    for i, layer in enumerate(image.layers):
        if layer.get("size") is None:
            raise ImageError(f"{image.name}: the manifest {image.digest}: layers[{i}].size: Field required")


def _stream(fileobj: Any, media_type: str) -> Any:
    """The layer's tar stream: gzip (ISA-L), zstd or uncompressed, by media type."""
    if media_type.endswith("gzip"):
        return igzip.IGzipFile(fileobj=fileobj)  # type: ignore[no-untyped-call]
    if media_type.endswith("zstd"):
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(fileobj)
    return fileobj


class _Layers:
    """Which layer gave each path, and each directory's children: a whiteout removes a
    subtree of lower layers in time proportional to that subtree (a flood of whiteouts
    over a large tree must not scan the whole tree each time)."""

    def __init__(self, nodes: dict[str, Node]) -> None:
        self.nodes = nodes
        self.layer: dict[str, int] = {}
        self.kids: dict[str, set[str]] = {}

    def add(self, path: str, node: Node, layer: int) -> None:
        self.nodes[path] = node
        self.layer[path] = layer
        while path:  # link the path (and any implicit parent) under its parent
            parent = path.rpartition("/")[0]
            siblings = self.kids.setdefault(parent, set())
            if path in siblings:
                break
            siblings.add(path)
            path = parent

    def remove(self, path: str, below: int) -> None:
        """``path`` and what is under it, as far as it comes from layers below ``below``."""
        stack = [path]
        while stack:
            p = stack.pop()
            if self.layer.get(p, -1) >= below:
                continue  # this layer's own entry (and what it holds) stays
            stack.extend(self.kids.pop(p, ()))
            self.nodes.pop(p, None)
            self.layer.pop(p, None)
            self.kids.get(p.rpartition("/")[0], set()).discard(p)

    def opaque(self, directory: str, below: int) -> None:
        for child in list(self.kids.get(directory, ())):
            self.remove(child, below)


def read_tree(
    source: Source,
    image: Image,
    store: BlobStore | None = None,
    max_entries: int | None = None,
    keeper: Keeper | None = None,
    sonames: bool = True,
    check_diff_ids: bool = True,
) -> tuple[Tree, int, list[tuple[int, int]]]:
    """The image's filesystem (headers; content only where checks need it), the newest
    mtime in it and each layer's (tar size, files). Each layer is checked against its digest,
    size and diff_id, and bounded: headers (distill.tarsafe), entries over all layers, and
    expansion. With ``store``, each layer is read from it when there, else kept in it.
    ``keeper`` keeps more content (see :class:`Keeper`); ``sonames=False`` skips reading
    shared libraries for their SONAME (only a build on the image needs them).
    ``check_diff_ids=False`` leaves the uncompressed tars unhashed where the compressed
    digest already verifies the layer (a reader that does not reuse it: an SBOM); a
    source whose layers are named by their diff_id (a docker archive) is hashed anyway."""
    reader = _TreeReader(image.name, max_entries, keeper, sonames)
    diff_ids = (image.config.get("rootfs") or {}).get("diff_ids") or []
    for idx, desc in enumerate(image.layers):
        opener: AbstractContextManager[Verified] = (
            pull_blob(source, store, desc["digest"], desc.get("size"))
            if store is not None
            else source.open_blob(desc["digest"], desc.get("size"))
        )
        with opener as blob:
            diff_id = diff_ids[idx] if idx < len(diff_ids) else None
            reader.layer(blob, desc, idx, diff_id, hashed=check_diff_ids or source.diff_ids)
    reader.tree.take_changes()
    return reader.tree, reader.newest, reader.stats


class _TreeReader:
    """Layers applied one after the other to one tree (see :func:`read_tree`)."""

    def __init__(
        self, name: str, max_entries: int | None, keeper: Keeper | None = None, sonames: bool = True
    ) -> None:
        self.keeper = keeper
        self.sonames = sonames
        self.tree = Tree()
        self.index = _Layers(self.tree.nodes)
        self.budget = EntryBudget(name, ImageError, max_entries)
        self.name = name
        self.newest = 0
        self.kept = 0
        self.stats: list[tuple[int, int]] = []

    def layer(
        self, blob: Verified, desc: dict[str, Any], idx: int, diff_id: str | None, hashed: bool = True
    ) -> None:
        what = f"{self.name}: layer {desc['digest']}"
        limit = expansion_limit(int(desc.get("size") or 0))
        try:
            # The uncompressed tar is hashed too: the layer is reused as it is, under the
            # config's diff_id, which must therefore be the one it has.
            capped = Capped(_stream(blob, desc.get("mediaType", "")), limit, what, ImageError)
            stream: Any = Verified(capped, None, what) if hashed else capped
            with open_stream(stream) as tf:
                files = self._entries(tf, idx)
                tar_size = tf.offset
            while stream.read(1 << 20):  # the tar's end blocks and padding are in the diff_id too
                pass
            if hashed and diff_id is not None and "sha256:" + stream.h.hexdigest() != diff_id:
                raise ImageError(
                    f"{what} does not decompress to the config's diff_id {diff_id}",
                    hint="the image is damaged or was written wrongly; copy it again",
                )
            blob.finish()  # the compressed digest and size; a pulled blob is kept only now
        except read_errors() as exc:
            blob.blame_cache()
            raise ImageError(f"{what} is not a readable tar ({exc})") from None
        except ImageError:
            blob.blame_cache()
            raise
        self.stats.append((tar_size, files))

    def _entries(self, tf: Any, idx: int) -> int:
        index, tree = self.index, self.tree
        files = 0
        opaque: set[str] = set()
        for m in members(tf, self.budget):
            name = os.path.normpath(m.name.lstrip("/"))
            if name in (".", "") or name == ".." or name.startswith("../"):
                continue
            parent, _, base = name.rpartition("/")
            if base == ".wh..wh..opq":
                if parent not in opaque:  # once per directory and layer
                    opaque.add(parent)
                    index.opaque(parent, idx)
                continue
            if base.startswith(".wh."):
                index.remove(f"{parent}/{base[4:]}" if parent else base[4:], idx)
                continue
            self.newest = max(self.newest, int(m.mtime))
            mode = m.mode & 0o7777
            old = tree.nodes.get(name)
            if old is not None and old.kind == DIR and not m.isdir():
                index.remove(name, idx)  # a directory replaced: what it held goes too
            if m.isdir():
                index.add(name, Node(DIR, mode, m.uid, m.gid, int(m.mtime)), idx)
            elif m.issym():
                index.add(name, Node(SYMLINK, 0o777, m.uid, m.gid, int(m.mtime), link=m.linkname), idx)
            elif m.islnk():
                target = tree.nodes.get(os.path.normpath(m.linkname.lstrip("/")))
                if target is not None:
                    index.add(name, target, idx)
            elif m.isfile():
                files += 1
                data = None
                soname = None
                wanted = name.startswith(_KEEP_CONTENT) or (self.sonames and ".so" in base)
                if self.keeper is not None and self.keeper.wants(name, m.size):
                    f = tf.extractfile(m)
                    data = self.keeper.keep(name, f, m.size) if f else b""
                elif wanted and self.kept + m.size <= MAX_KEPT:
                    f = tf.extractfile(m)
                    raw = f.read() if f else b""
                    if self.sonames and ".so" in base:
                        soname = elf_soname(io.BytesIO(raw), 0, len(raw)) or None
                    if name.startswith(_KEEP_CONTENT):
                        data = raw
                        self.kept += len(raw)
                node = Node(FILE, mode, m.uid, m.gid, int(m.mtime), m.size, data=data, soname=soname)
                index.add(name, node, idx)
        return files


def packages(tree: Tree) -> list[tuple[str, str]]:
    """(name, version) of every package the image's dpkg databases list."""
    out: list[tuple[str, str]] = []
    texts = [n.data for p, n in sorted(tree.nodes.items()) if p.startswith("var/lib/dpkg/status") and n.data]
    for text in texts:
        for para in text.decode("utf-8", "replace").split("\n\n"):
            fields = dict(
                line.split(":", 1)
                for line in para.splitlines()
                if ":" in line and not line.startswith((" ", "\t"))
            )
            if "Package" in fields and "Version" in fields:
                out.append((fields["Package"].strip(), fields["Version"].strip()))
    return out


def image_tree(target: str, arch: str | None, max_entries: int | None = None) -> tuple[Tree, Image]:
    """The filesystem of the image ``target`` names (any image source) for ``arch``."""
    from distill.oci.source import open_source

    with open_source(target) as source:
        image = source.image(arch)
        tree, _, _ = read_tree(source, image, max_entries=max_entries)
    return tree, image
