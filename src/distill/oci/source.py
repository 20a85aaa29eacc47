"""Image sources: where an image is read from, as immutable values.

An OCI layout directory (``DIR`` or ``DIR:REF``), an OCI or docker archive tar, a
local podman/docker image (through their ``save`` commands), a registry
(:mod:`distill.oci.registry`), or distill's own blob cache (:class:`StoreSource`).

Every source answers the same two questions: the top-level document for a
reference, and a blob by digest. Blobs are read as streams and verified against
their digest and declared size as they are read (:class:`Verified`), so nothing is
trusted and nothing is unpacked. :meth:`Source.image` walks index -> manifest ->
config for one platform and returns an :class:`Image` value; :meth:`Source.root`
gives the top document itself (what a copy or push starts from).
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.archive.cache import CorruptEntryError, NotRegularError, discard, open_entry
from distill.engine import executable, run
from distill.errors import ImageError
from distill.limits import MAX_OCI_JSON, load_json, open_regular, read_regular
from distill.oci.image import INDEX as OCI_INDEX
from distill.oci.image import MANIFEST as OCI_MANIFEST
from distill.oci.image import PLATFORMS, BlobStore
from distill.oci.schema import Descriptor, DockerEntry, ImageConfig, Index, Top, check, check_list, json_type
from distill.tarsafe import BoundedTarInfo, EntryBudget, members

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEXES = (OCI_INDEX, DOCKER_LIST)
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
MAX_DOCUMENT = MAX_OCI_JSON  # manifests, indexes and configs: a few KiB in practice
MAX_NESTING = 4  # documents from the top one down to a manifest (indexes in indexes)


@dataclass(frozen=True)
class Document:
    """A manifest or index as a source gave it: its media type, bytes and digest
    (None for a document a source made up, such as a layout's list of named images)."""

    media_type: str
    data: bytes
    digest: str | None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEXES


@dataclass
class Image:
    """One image picked from a source: its manifest, config and where it came from."""

    name: str  # what the user typed
    digest: str | None  # the manifest's digest, when there is one
    manifest: dict[str, Any]
    config: dict[str, Any]
    ref: str | None = None  # tag or ref name
    layers: list[dict[str, Any]] = field(default_factory=list)
    media_type: str = OCI_MANIFEST
    manifest_bytes: bytes = b""
    config_bytes: bytes = b""

    @property
    def compressed_size(self) -> int:
        return sum(int(d.get("size") or 0) for d in self.layers)

    @property
    def config_digest(self) -> str:
        return str(self.manifest["config"]["digest"])


class Verified(io.RawIOBase):
    """A stream read through once and hashed on the way; :meth:`finish` drains it and
    checks the digest (and, with ``limit``, refuses more bytes than declared)."""

    def __init__(self, raw: Any, digest: str | None, what: str, limit: int | None = None) -> None:
        super().__init__()
        self.raw = raw
        self.digest = digest
        self.what = what
        self.limit = limit
        self.count = 0
        self.h = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer) or 0
        self.h.update(memoryview(buffer)[:n])
        self.count += n
        if self.limit is not None and self.count > self.limit:
            raise ImageError(f"{self.what} is larger than the {self.limit} bytes the manifest says")
        self.took(memoryview(buffer)[:n])
        return n

    def took(self, data: memoryview) -> None:
        """Called with every chunk read (a subclass keeps a copy)."""

    def blame_cache(self) -> None:
        """After a failure reading what this stream gave: a cache entry that does not
        match its digest is removed and :class:`CorruptEntryError` raised (the build makes
        it again); anything else returns, and the caller's error stands."""

    def finish(self) -> None:
        while self.read(1 << 20):
            pass
        if self.limit is not None and self.count != self.limit:
            raise ImageError(
                f"{self.what} is {self.count} bytes, but the manifest says {self.limit} (truncated)"
            )
        if self.digest is not None and "sha256:" + self.h.hexdigest() != self.digest:
            raise ImageError(f"{self.what} does not match its digest {self.digest} (corrupt or tampered)")


class _Ingest(Verified):
    """A verified stream whose bytes are also written to a temporary file in the blob
    store; :meth:`finish` moves it into place only once the digest and size check out."""

    def __init__(self, raw: Any, digest: str, what: str, limit: int | None, target: Path) -> None:
        super().__init__(raw, digest, what, limit)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=target.parent, prefix=".pull.", suffix=".tmp")
        self.out = os.fdopen(fd, "wb")
        self.target = target

    def took(self, data: memoryview) -> None:
        self.out.write(data)

    def finish(self) -> None:
        super().finish()
        self.out.close()
        os.replace(self.tmp, self.target)

    def discard(self) -> None:
        if not self.out.closed:
            self.out.close()
        Path(self.tmp).unlink(missing_ok=True)


class _CachedBlob(Verified):
    """A blob of distill's own cache: one that does not match its digest is removed and
    reported as a damaged entry (the build makes it again: distill.build._repairing)."""

    def __init__(self, raw: Any, digest: str, size: int | None, path: Path) -> None:
        super().__init__(raw, digest, f"cached blob {digest}", size)
        self.path = path

    def finish(self) -> None:
        try:
            super().finish()
        except ImageError:
            discard(self.path)
            raise CorruptEntryError(
                f"the cached blob {self.path} does not match its digest; it was removed", needs_network=True
            ) from None

    def blame_cache(self) -> None:
        try:
            while self.read(1 << 20):
                pass
        except ImageError:
            pass
        if "sha256:" + self.h.hexdigest() != self.digest or (
            self.limit is not None and self.count != self.limit
        ):
            self.finish()  # raises CorruptEntryError


@contextmanager
def _open_cached(path: Path, digest: str, size: int | None) -> Iterator[Verified]:
    try:
        f = open_entry(path)
    except NotRegularError:  # a FIFO or device in its place: never waited on
        discard(path)
        raise CorruptEntryError(f"the cached blob {path} is not a regular file; it was removed") from None
    with f:
        yield _CachedBlob(f, digest, size, path)


def _gunzip(raw: Any) -> Any:
    from isal import igzip

    return igzip.IGzipFile(fileobj=raw)  # type: ignore[no-untyped-call]


def check_digest(digest: Any) -> str:
    if not isinstance(digest, str):
        raise ImageError(f"malformed digest {str(digest)[:80]!r}")
    algo, _, hexdigest = digest.partition(":")
    if algo != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
        raise ImageError(f"unsupported or malformed digest {digest[:80]!r}")
    return digest


def parse_json(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object of an image (size and depth capped; see distill.limits)."""
    doc = load_json(data, label=what, error=ImageError, limit=MAX_DOCUMENT)
    if not isinstance(doc, dict):
        raise ImageError(f"{what}: should be a JSON object, not {json_type(doc)}")
    return doc


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _os(m: Descriptor) -> str:
    return (m.platform.os if m.platform is not None else "") or "linux"


def _arch(m: Descriptor) -> str | None:
    return m.platform.architecture if m.platform is not None else None


def oci_platform(arch: str) -> tuple[str, str | None]:
    """A Debian architecture name (or an OCI one) as the OCI (architecture, variant)."""
    return PLATFORMS.get(arch, (arch, None))


def _matches(m: Descriptor, arch: str) -> bool:
    want, variant = oci_platform(arch)
    if _arch(m) != want:
        return False
    have = m.platform.variant if m.platform is not None else None
    return variant is None or have in (None, variant)


class Source:
    """Base: subclasses give :meth:`top` and :meth:`open_blob`."""

    name: str
    ref: str | None = None
    diff_ids = False  # layers are addressed by their uncompressed digest (docker archives)

    def top(self) -> Document:
        """The document the reference names (an index may be a source's own list)."""
        raise NotImplementedError

    @contextmanager
    def open_blob(self, digest: str, size: int | None) -> Iterator[Verified]:
        raise NotImplementedError
        yield  # pragma: no cover

    def read_blob(self, digest: str, size: int | None, what: str) -> bytes:
        if size is not None and size > MAX_DOCUMENT:
            raise ImageError(
                f"{self.name}: the {what} declares {size} bytes; refusing more than {MAX_DOCUMENT}"
            )
        with self.open_blob(check_digest(digest), size) as f:
            data = f.read(MAX_DOCUMENT + 1)
            if len(data) > MAX_DOCUMENT:
                raise ImageError(f"{self.name}: the {what} is larger than {MAX_DOCUMENT} bytes")
            f.finish()
        return data

    def read_manifest(self, digest: str, size: int | None) -> bytes:
        """A manifest or index by digest (a registry serves them apart from blobs)."""
        return self.read_blob(digest, size, "manifest")

    def pinned(self, digest: str) -> Document:
        """The manifest or index ``digest`` names (a locked base), read by digest."""
        data = self.read_manifest(check_digest(digest), None)
        return Document(_media_of(data, f"{self.name}: {digest}"), data, digest)

    def root(self) -> Document:
        """The real top document (never one made up): what a copy or a push starts from."""
        doc = self.top()
        if doc.digest is not None:
            return doc
        if doc.media_type in MANIFESTS:  # a docker archive's manifest, made from manifest.json
            return Document(doc.media_type, doc.data, digest_of(doc.data))
        entries = check(Index, parse_json(doc.data, f"{self.name}: index"), label=self.name, error=ImageError)
        if len(entries.manifests) != 1:
            raise ImageError(
                f"{self.name} holds {len(entries.manifests)} images", hint="name one: DIR:REF or ARCHIVE:REF"
            )
        desc = entries.manifests[0]
        data = self.read_manifest(desc.digest, desc.size)
        return Document(desc.mediaType or _media_of(data, self.name), data, desc.digest)

    def close(self) -> None:
        pass

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def image(self, arch: str | None, start: Document | None = None) -> Image:
        """The image for ``arch`` (default: the host's, else the only or first one),
        from ``start`` (default: :meth:`top`). ``arch`` is a Debian or OCI name."""
        from distill.distros import host_arch

        doc = start or self.top()
        media, data, digest = doc.media_type, doc.data, doc.digest
        for _ in range(MAX_NESTING):
            what = f"{self.name}: the {'index' if media in INDEXES else 'manifest'}"
            parsed = parse_json(data, what)
            top = check(Top, parsed, label=what, error=ImageError)
            media = top.mediaType or media
            if media in INDEXES or top.manifests is not None:
                entries = [
                    m
                    for m in top.manifests or []
                    if _os(m) == "linux" and m.mediaType in (*INDEXES, *MANIFESTS)
                ]
                if not entries:
                    raise ImageError(f"{self.name}: the index lists no linux image")
                want = arch or host_arch()
                match = [m for m in entries if _matches(m, want)]
                if not match:  # an entry with no platform (a layout's one entry): an index is looked
                    # into, a manifest's config says its architecture (checked below)
                    match = [m for m in entries if m.platform is None]
                if not match:
                    if arch is not None:
                        have = sorted({str(_arch(m)) for m in entries})
                        raise ImageError(
                            f"{self.name} has no linux/{arch} image", hint=f"it has {', '.join(have)}"
                        )
                    match = entries
                desc = match[0]
                media = desc.mediaType
                digest = desc.digest
                data = self.read_manifest(digest, desc.size)
                continue
            if media not in MANIFESTS and top.layers is None:
                raise ImageError(f"{self.name}: unsupported media type {media[:80]!r}")
            if top.layers is None or top.config is None:
                raise ImageError(f"{self.name}: the manifest has no config or layers")
            cfg = top.config
            config_bytes = self.read_blob(cfg.digest, cfg.size, "config")
            config = parse_json(config_bytes, f"{self.name}: the config")
            image_config = check(ImageConfig, config, label=f"{self.name}: the config", error=ImageError)
            got = image_config.architecture
            if arch is not None and got != oci_platform(arch)[0]:
                raise ImageError(f"{self.name} is a {got} image, not {arch}")
            if len(image_config.rootfs.diff_ids) != len(top.layers):
                raise ImageError(f"{self.name}: the config's diff_ids do not match the manifest's layers")
            return Image(
                self.name, digest, parsed, config, self.ref, parsed["layers"], media, data, config_bytes
            )
        raise ImageError(f"{self.name}: indexes nested too deep")


def _media_of(data: bytes, what: str) -> str:
    """A document's media type from its own field (a blob read by digest has no header)."""
    top = check(Top, parse_json(data, what), label=what, error=ImageError)
    if top.mediaType:
        return top.mediaType
    return OCI_INDEX if top.manifests is not None else OCI_MANIFEST


class LayoutSource(Source):
    """An OCI image layout directory (``DIR`` or ``DIR:REF``)."""

    def __init__(self, path: Path, ref: str | None, name: str) -> None:
        self.path = path
        self.ref = ref
        self.name = name

    def top(self) -> Document:
        if not (self.path / "oci-layout").is_file() or not (self.path / "index.json").exists():
            raise ImageError(f"{self.path} is not an OCI image layout (no oci-layout / index.json)")
        data = read_regular(self.path / "index.json", MAX_DOCUMENT, error=ImageError)
        return _pick_ref(parse_json(data, f"{self.name}: index.json"), self.ref, self.name)

    @contextmanager
    def open_blob(self, digest: str, size: int | None) -> Iterator[Verified]:
        path = self.path / "blobs" / "sha256" / check_digest(digest).partition(":")[2]
        if not path.exists():
            raise ImageError(f"{self.name}: blob {digest} is missing from blobs/")
        with open_regular(path, error=ImageError, what=f"{self.name}: blob") as f:
            yield Verified(f, digest, f"{self.name}: blob {digest}", size)


class StoreSource(Source):
    """distill's blob cache holding an image whose top document is ``digest``: what a
    locked base is read from once it has been pulled (``--offline`` needs nothing more)."""

    def __init__(self, store: BlobStore, digest: str | None, name: str) -> None:
        self.store = store
        self.digest = check_digest(digest) if digest is not None else None
        self.name = name

    def has(self, digest: str) -> bool:
        return self.store.path(check_digest(digest)).is_file()

    def top(self) -> Document:
        if self.digest is None:
            raise ImageError(f"{self.name}: no image named in the cache")
        return self.pinned(self.digest)

    @contextmanager
    def open_blob(self, digest: str, size: int | None) -> Iterator[Verified]:
        path = self.store.path(check_digest(digest))
        if not path.exists():
            raise ImageError(
                f"{self.name}: blob {digest} is not in the cache", hint="run once without --offline"
            )
        with _open_cached(path, digest, size) as f:
            yield f


@contextmanager
def pull_blob(source: Source, store: BlobStore, digest: str, size: int | None) -> Iterator[Verified]:
    """A blob of ``source`` read through the blob store: from the store when it holds it
    (still verified as it is read), else from the source, written to the store on the
    way and kept only when :meth:`Verified.finish` finds it whole and matching (which
    takes a declared size: without one, a source could send bytes without end)."""
    target = store.path(check_digest(digest))
    if size is None:
        raise ImageError(f"{source.name}: blob {digest} has no declared size; it is not kept")
    if target.exists():
        with _open_cached(target, digest, size) as f:
            yield f
        return
    with source.open_blob(digest, size) as upstream:
        ingest = _Ingest(upstream, digest, upstream.what, size, target)
        try:
            yield ingest
        finally:
            ingest.discard()


# A layout's entries that are no image of their own: cosign's signature and attestation
# tags, the referrers fallback index (distill.oci.attach), and ``cosign save``'s kinds.
ATTACHMENT_TAG = re.compile(r"sha256-[0-9a-f]{64}(?:\.(?:sig|att))?")
ATTACHMENT_KINDS = ("dev.cosignproject.cosign/sigs", "dev.cosignproject.cosign/atts")


def is_attachment(entry: dict[str, Any]) -> bool:
    """Whether a layout's index.json entry is a signature, attestation or referrers index."""
    annotations = entry.get("annotations") or {}
    if not isinstance(annotations, dict):
        return False
    ref = annotations.get("org.opencontainers.image.ref.name")
    return (isinstance(ref, str) and bool(ATTACHMENT_TAG.fullmatch(ref))) or annotations.get(
        "kind"
    ) in ATTACHMENT_KINDS


def _pick_ref(index: dict[str, Any], ref: str | None, name: str) -> Document:
    """The index itself, narrowed to the entries named ``ref`` (org.opencontainers.image.ref.name);
    without ``ref``, signatures and attestations stored beside the image are left out."""
    check(Index, index, label=f"{name}: index.json", error=ImageError)
    entries: list[dict[str, Any]] = index.get("manifests") or []
    if ref is None:
        entries = [m for m in entries if not is_attachment(m)]
    if ref is not None:
        named = [
            m
            for m in entries
            if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name")
            in (ref, ref.rpartition(":")[2])
            or ref in ((m.get("annotations") or {}).get("io.containerd.image.name"),)
        ]
        if not named:
            have = sorted(
                str(m["annotations"].get("org.opencontainers.image.ref.name"))
                for m in entries
                if m.get("annotations")
            )
            raise ImageError(
                f"{name} has no image named {ref!r}", hint=f"it has {', '.join(have) or 'none named'}"
            )
        entries = named
    if not entries:
        raise ImageError(f"{name} holds no image")
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    return Document(OCI_INDEX, json.dumps(doc).encode(), None)


class ArchiveSource(Source):
    """An OCI archive (a layout in a tar) or a docker archive (``docker save``)."""

    def __init__(self, path: Path, ref: str | None, name: str) -> None:
        self.path = path
        self.ref = ref
        self.name = name
        try:
            # kept open for random access (closed by close()); headers bounded, entries counted
            self.tar = tarfile.open(path, "r:*", tarinfo=BoundedTarInfo)  # noqa: SIM115
            self.members = {
                os.path.normpath(m.name.lstrip("/")): m
                for m in members(self.tar, EntryBudget(str(path), ImageError))
                if m.isfile()
            }
        except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
            raise ImageError(f"{path} is not a readable tar archive ({exc})") from None
        self.docker: list[DockerEntry] | None = None
        self.synthetic: dict[str, bytes] = {}
        self.diff_layer: dict[str, str] = {}  # docker archives: digest -> member
        self.verified_layers: set[str] = set()  # docker archives: members named by their own digest
        if "index.json" in self.members and "oci-layout" in self.members:
            return
        if "manifest.json" in self.members:
            self._docker_manifest()
            return
        raise ImageError(
            f"{path} is neither an OCI archive (oci-layout, index.json) nor a docker archive (manifest.json)"
        )

    def _member(self, name: str) -> bytes:
        m = self.members.get(os.path.normpath(name.lstrip("/")))
        if m is None:
            raise ImageError(f"{self.name}: {name} is missing from the archive")
        if m.size > MAX_DOCUMENT:
            raise ImageError(f"{self.name}: {name} is larger than {MAX_DOCUMENT} bytes")
        f = self.tar.extractfile(m)
        assert f is not None
        return f.read()

    def _docker_manifest(self) -> None:
        """docker save's manifest.json -> an OCI-shaped manifest whose layers are named
        by their diff_id (each is verified against it as it is read, decompressed)."""
        label = f"{self.name}: manifest.json"
        entries = check_list(
            DockerEntry,
            load_json(self._member("manifest.json"), label=label, error=ImageError, limit=MAX_DOCUMENT),
            label=label,
            error=ImageError,
        )
        if not entries:
            raise ImageError(f"{label} lists no image")
        if self.ref is not None:
            entries = [e for e in entries if self.ref in (e.RepoTags or [])]
            if not entries:
                raise ImageError(f"{self.name} has no image tagged {self.ref!r}")
        entry = entries[0]
        config_bytes = self._member(entry.Config)
        config = parse_json(config_bytes, f"{self.name}: the config")
        diff_ids = check(
            ImageConfig, config, label=f"{self.name}: the config", error=ImageError
        ).rootfs.diff_ids
        layer_names = entry.Layers
        if len(diff_ids) != len(layer_names):
            raise ImageError(f"{self.name}: the config's diff_ids do not match manifest.json's layers")
        cdigest = digest_of(config_bytes)
        self.synthetic[cdigest] = config_bytes
        layers = []
        for diff_id, lname in zip(diff_ids, layer_names, strict=True):
            m = self.members.get(os.path.normpath(lname))
            if m is None:
                raise ImageError(f"{self.name}: layer {lname} is missing from the archive")
            self.diff_layer[diff_id] = os.path.normpath(lname)
            layers.append(
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                    "digest": diff_id,
                    "size": m.size,
                }
            )
        manifest = {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": cdigest,
                "size": len(config_bytes),
            },
            "layers": layers,
        }
        data = json.dumps(manifest).encode()
        self.docker = entries
        self.diff_ids = True
        self.synthetic["manifest"] = data

    def top(self) -> Document:
        if self.docker is not None:
            return Document(DOCKER_MANIFEST, self.synthetic["manifest"], None)
        index = parse_json(self._member("index.json"), f"{self.name}: index.json")
        return _pick_ref(index, self.ref, self.name)

    def root(self) -> Document:
        if self.docker is None:
            return super().root()
        return self._pushable()

    def _pushable(self) -> Document:
        """A docker archive's image as a registry takes it: each layer named by the digest
        of its bytes as they are (docker save keeps them uncompressed, skopeo compressed),
        which means reading each once; its diff_id is checked on the way."""
        manifest = json.loads(self.synthetic["manifest"])
        for layer in manifest["layers"]:
            diff_id = layer["digest"]
            member = self.members[self.diff_layer[diff_id]]
            f = self.tar.extractfile(member)
            assert f is not None
            head = f.read(2)
            f.seek(0)
            blob = Verified(f, None, f"{self.name}: layer {diff_id}", member.size)
            gz = head == b"\x1f\x8b"
            inner = Verified(_gunzip(blob) if gz else blob, diff_id, f"{self.name}: layer {diff_id}")
            inner.finish()
            blob.finish()
            digest = "sha256:" + blob.h.hexdigest()
            self.diff_layer[digest] = self.diff_layer[diff_id]
            self.verified_layers.add(digest)
            layer["digest"] = digest
            if gz:
                layer["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip"
        data = json.dumps(manifest).encode()
        return Document(DOCKER_MANIFEST, data, digest_of(data))

    @contextmanager
    def open_blob(self, digest: str, size: int | None) -> Iterator[Verified]:
        if digest in self.synthetic:
            yield Verified(io.BytesIO(self.synthetic[digest]), digest, f"{self.name}: blob {digest}")
            return
        if self.docker is not None and digest == digest_of(self.synthetic["manifest"]):
            yield Verified(io.BytesIO(self.synthetic["manifest"]), digest, f"{self.name}: manifest")
            return
        if digest in self.diff_layer:
            member = self.members[self.diff_layer[digest]]
            f = self.tar.extractfile(member)
            assert f is not None
            # docker archives name layers by their uncompressed digest (diff_id): the
            # scan verifies that after decompressing (Source.diff_ids); a layer named by
            # its own digest (a push: _pushable) is verified as it is.
            own = digest if digest in self.verified_layers else None
            yield Verified(f, own, f"{self.name}: layer {digest}", member.size)
            return
        m = self.members.get(f"blobs/sha256/{check_digest(digest).partition(':')[2]}")
        if m is None:
            raise ImageError(f"{self.name}: blob {digest} is missing from the archive")
        f = self.tar.extractfile(m)
        assert f is not None
        yield Verified(f, digest, f"{self.name}: blob {digest}", size)

    def close(self) -> None:
        self.tar.close()


def engine_image(target: str, prefix: str) -> str:
    """The image name of a ``podman:NAME`` or ``docker:NAME`` target: given, and never
    one the engine's CLI would read as an option."""
    image = target[len(prefix) :]
    if not image:
        raise ImageError(f"{target}: name an image, e.g. {prefix}localhost/app:latest")
    if image.startswith("-"):
        raise ImageError(f"{target[:120]!r}: an image name, not an option")
    return image


class SavedSource(ArchiveSource):
    """A local podman or docker image, saved to a temporary archive by its own CLI."""

    def __init__(self, engine: str, image: str, name: str) -> None:
        exe = executable(engine, name)
        self.tmp = tempfile.mkdtemp(prefix="distill-image-")
        out = Path(self.tmp) / "image.tar"
        cmd = [exe, "save", "-o", str(out), image]
        if engine == "podman":
            cmd[2:2] = ["--format", "oci-archive"]
        # The engine's own temporary files go in our directory too: when it is killed
        # (a timeout, or SIGTERM / Ctrl-C of distill), one rmtree removes everything.
        env = {**os.environ, "TMPDIR": self.tmp}
        try:
            run(cmd, name, timeout=1800, env=env)
            super().__init__(out, None, name)
        except BaseException:  # SystemExit from SIGTERM and KeyboardInterrupt included
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise

    def close(self) -> None:
        super().close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def split_ref(body: str) -> tuple[Path, str | None]:
    """``PATH`` or ``PATH:REF`` (a ref may hold colons itself, as in ``DIR:name:tag``)."""
    if Path(body).exists():
        return Path(body), None
    at = body.find(":")
    while at > 0:
        if Path(body[:at]).exists():
            return Path(body[:at]), body[at + 1 :] or None
        at = body.find(":", at + 1)
    return Path(body), None


IMAGE_PREFIXES = ("docker://", "podman:", "docker:", "oci:", "oci-archive:", "docker-archive:")


def open_source(target: str, *, auth: Any = None, plain_http: bool = False, settings: Any = None) -> Source:
    """The source a target names: ``docker://HOST/REPO[:TAG|@DIGEST]``, ``podman:NAME``,
    ``docker:NAME``, ``[oci:]DIR[:REF]``, ``[oci-archive:|docker-archive:]FILE[:REF]``.
    ``settings`` (:class:`distill.oci.registry.RegistrySettings`) for registries."""
    if target.startswith("docker://"):
        from distill.oci.registry import RegistrySource

        return RegistrySource.parse(target, settings=settings)
    for prefix, engine in (("podman:", "podman"), ("docker:", "docker")):
        if target.startswith(prefix):
            return SavedSource(engine, engine_image(target, prefix), target)
    body = target
    for prefix in ("oci:", "oci-archive:", "docker-archive:"):
        if body.startswith(prefix):
            body = body[len(prefix) :]
    path, ref = split_ref(body)
    if path.is_dir():
        return LayoutSource(path, ref or None, target)
    if path.is_file():
        return ArchiveSource(path, ref or None, target)
    raise ImageError(
        f"{target}: no such image layout or archive",
        hint="images: DIR[:REF], ARCHIVE.tar, podman:NAME, docker:NAME, docker://HOST/REPO:TAG",
    )
