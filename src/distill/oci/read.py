"""Reading OCI image layouts: the image for a platform, its config, and its
filesystem as a :class:`~distill.assemble.tree.Tree` of headers (streamed through
the layers, whiteouts applied, nothing extracted to disk).

Only what checks need is kept of the content: the dpkg databases (status.d and
status, for the package list), the dynamic linker's configuration and the SONAME
of every shared library.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from isal import igzip

from distill.assemble.expand import DIR, FILE, SYMLINK, elf_soname
from distill.assemble.tree import Node, Tree
from distill.errors import BuildError
from distill.limits import MAX_OCI_JSON, expansion_limit, load_json, open_regular, read_json, read_regular
from distill.oci.image import INDEX, MANIFEST, BlobStore
from distill.oci.schema import ImageConfig, Index, Manifest, check
from distill.tarsafe import Capped, EntryBudget, members, open_stream, read_errors

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
_KEEP_CONTENT = ("var/lib/dpkg/status", "etc/ld.so.conf")
MAX_KEPT = 64 << 20  # content kept for checks, at most (a dpkg status of a big image is a few MB)


@dataclass
class BaseImage:
    layout: Path
    manifest: dict[str, Any]
    config: dict[str, Any]

    def blob(self, digest: str) -> Path:
        return blob_path(self.layout, digest)


def blob_path(layout: Path, digest: str) -> Path:
    algo, _, hexdigest = digest.partition(":")
    if algo != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
        raise BuildError(f"{layout}: unsupported or malformed digest {digest!r}")
    return layout / "blobs" / "sha256" / hexdigest


def _json(layout: Path, digest: str, what: str) -> Any:
    path = blob_path(layout, digest)
    if not path.exists():
        raise BuildError(f"{layout}: the {what} {digest} is missing from blobs/")
    label = f"{layout}: the {what} {digest}"
    data = read_regular(path, MAX_OCI_JSON, error=BuildError, what=f"{layout}: the {what}")
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise BuildError(f"{label} does not match its digest")
    return load_json(data, label=label, error=BuildError, limit=MAX_OCI_JSON)


def open_image(layout: Path, ref: str | None, arch: str) -> BaseImage:
    """The image for ``arch`` in a layout (by ``ref.name`` when given, else the only one).

    Every document is size-capped and type-checked (:mod:`distill.oci.schema`) before a
    field of it is used: a base image is input like any other."""
    if not (layout / "oci-layout").is_file() or not (layout / "index.json").exists():
        raise BuildError(f"{layout} is not an OCI image layout (no oci-layout / index.json)")
    where = f"{layout}/index.json"
    index = check(
        Index,
        read_json(layout / "index.json", MAX_OCI_JSON, error=BuildError),
        label=where,
        error=BuildError,
    )
    entries = index.manifests
    if ref is not None:
        entries = [
            m for m in entries if (m.annotations or {}).get("org.opencontainers.image.ref.name") == ref
        ]
        if not entries:
            raise BuildError(f"{layout} has no image named {ref!r}")
    if not entries:
        raise BuildError(f"{layout} holds no image")
    desc = entries[0]
    for _ in range(4):  # index -> (nested index ->) manifest
        if desc.mediaType in (INDEX, DOCKER_LIST):
            doc = check(
                Index, _json(layout, desc.digest, "index"), label=f"{layout}: the index", error=BuildError
            )
            found = [
                m
                for m in doc.manifests
                if m.platform is not None and m.platform.architecture == arch and m.platform.os == "linux"
            ]
            if not found:
                raise BuildError(
                    f"{layout} has no linux/{arch} image", hint="pass --arch for a platform it has"
                )
            desc = found[0]
            continue
        if desc.mediaType not in (MANIFEST, DOCKER_MANIFEST):
            raise BuildError(f"{layout}: unsupported media type {desc.mediaType!r}")
        label = f"{layout}: the manifest {desc.digest}"
        manifest = _json(layout, desc.digest, "manifest")
        parsed = check(Manifest, manifest, label=label, error=BuildError)
        for i, layer in enumerate(parsed.layers):
            if layer.size is None:  # the layers are reused as they are: their descriptors must be whole
                raise BuildError(f"{label}: layers[{i}].size: Field required")
        config = _json(layout, parsed.config.digest, "config")
        image_config = check(
            ImageConfig, config, label=f"{layout}: the config {parsed.config.digest}", error=BuildError
        )
        if image_config.architecture != arch:
            raise BuildError(
                f"{layout} holds a {image_config.architecture} image, not {arch}",
                hint=f"pass --arch {image_config.architecture}",
            )
        if len(image_config.rootfs.diff_ids) != len(parsed.layers):
            raise BuildError(f"{layout}: the config's diff_ids do not match the manifest's layers")
        if config.get("config") is None:
            config["config"] = {}
        return BaseImage(layout, manifest, config)
    raise BuildError(f"{layout}: indexes nested too deep")


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


def read_tree(image: BaseImage, max_entries: int | None = None) -> tuple[Tree, int, list[tuple[int, int]]]:
    """The image's filesystem (headers; content only where checks need it), the newest
    mtime in it and each layer's (tar size, files). Each layer is checked against its digest,
    and bounded: headers (distill.tarsafe), entries over all layers, and expansion."""
    tree = Tree()
    index = _Layers(tree.nodes)
    newest = 0
    kept = 0
    stats: list[tuple[int, int]] = []
    budget = EntryBudget(f"{image.layout}", BuildError, max_entries)
    diff_ids = (image.config.get("rootfs") or {}).get("diff_ids") or []
    for idx, desc in enumerate(image.manifest.get("layers", [])):
        files = 0
        path = image.blob(desc["digest"])
        hasher = _HashingReader(path, desc["digest"], int(desc.get("size") or 0))
        what = f"{image.layout}: layer {desc['digest']}"
        limit = expansion_limit(int(desc.get("size") or 0))
        opaque: set[str] = set()
        try:
            # The uncompressed tar is hashed too: the layer is reused as it is, under the
            # config's diff_id, which must therefore be the one it has.
            stream = _DiffIdReader(
                Capped(_stream(hasher, desc.get("mediaType", "")), limit, what, BuildError)
            )
            with open_stream(stream) as tf:
                for m in members(tf, budget):
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
                    newest = max(newest, int(m.mtime))
                    mode = m.mode & 0o7777
                    old = tree.nodes.get(name)
                    if old is not None and old.kind == DIR and not m.isdir():
                        index.remove(name, idx)  # a directory replaced: what it held goes too
                    if m.isdir():
                        index.add(name, Node(DIR, mode, m.uid, m.gid, int(m.mtime)), idx)
                    elif m.issym():
                        index.add(
                            name, Node(SYMLINK, 0o777, m.uid, m.gid, int(m.mtime), link=m.linkname), idx
                        )
                    elif m.islnk():
                        target = tree.nodes.get(os.path.normpath(m.linkname.lstrip("/")))
                        if target is not None:
                            index.add(name, target, idx)
                    elif m.isfile():
                        files += 1
                        data = None
                        soname = None
                        wanted = name.startswith(_KEEP_CONTENT) or ".so" in base
                        if wanted and kept + m.size <= MAX_KEPT:
                            f = tf.extractfile(m)
                            raw = f.read() if f else b""
                            if ".so" in base:
                                soname = elf_soname(io.BytesIO(raw), 0, len(raw)) or None
                            if name.startswith(_KEEP_CONTENT):
                                data = raw
                                kept += len(raw)
                        index.add(
                            name,
                            Node(FILE, mode, m.uid, m.gid, int(m.mtime), m.size, data=data, soname=soname),
                            idx,
                        )
                tar_size = tf.offset
            while stream.read(1 << 20):  # the tar's end blocks and padding are in the diff_id too
                pass
            hasher.finish()
            if idx < len(diff_ids) and stream.digest() != diff_ids[idx]:
                raise BuildError(
                    f"{what} does not decompress to the config's diff_id {diff_ids[idx]}",
                    hint="the layout is damaged or was written wrongly; copy the image again",
                )
            stats.append((tar_size, files))
        except read_errors() as exc:
            raise BuildError(f"{what} is not a readable tar ({exc})") from None
    tree.take_changes()
    return tree, newest, stats


class _DiffIdReader(io.RawIOBase):
    """A stream read through once, hashed and counted on the way: a layer's
    uncompressed tar (its diff_id), and the compressed blob under it."""

    def __init__(self, raw: Any) -> None:
        super().__init__()
        self.raw = raw
        self.h = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer) or 0
        self.h.update(memoryview(buffer)[:n])
        self.count += n
        return n

    def digest(self) -> str:
        return "sha256:" + self.h.hexdigest()


class _HashingReader(_DiffIdReader):
    """A layer blob of the layout; :meth:`finish` checks its digest and the descriptor's
    size (both are reused as they are in the new manifest)."""

    def __init__(self, path: Path, digest: str, size: int) -> None:
        if not path.exists():
            raise BuildError(f"layer {digest} is missing from the layout's blobs/")
        super().__init__(open_regular(path, error=BuildError, what=f"layer {digest}"))
        self.expected = digest
        self.size = size

    def finish(self) -> None:
        while self.read(1 << 20):
            pass
        self.raw.close()
        if self.digest() != self.expected:
            raise BuildError(f"layer {self.expected} does not match its digest (corrupt or truncated)")
        if self.count != self.size:
            raise BuildError(
                f"layer {self.expected} is {self.count} bytes, but the manifest says {self.size}",
                hint="the layout is damaged or was written wrongly; copy the image again",
            )


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


def adopt(store: BlobStore, layout: Path, digest: str) -> None:
    """A blob of the layout into the store: copied and hashed on the way, never hard
    linked (the base layout is often an output of distill, and an output shares no
    inode with the cache: damaging one must not damage the other)."""
    target = store.path(digest)
    if target.is_file():
        return
    source = blob_path(layout, digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open_regular(source, error=BuildError, what=f"{layout}: layer") as fin:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".adopt.")
        try:
            h = hashlib.sha256()
            with os.fdopen(fd, "wb") as fout:
                while chunk := fin.read(1 << 20):
                    h.update(chunk)
                    fout.write(chunk)
            if "sha256:" + h.hexdigest() != digest:
                raise BuildError(f"{layout}: layer {digest} changed while it was read")
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
