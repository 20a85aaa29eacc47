"""The image an app goes on (``from:`` an image): resolved to a digest once, then
read by that digest — from distill's blob cache when it holds it (a locked build
needs no network), else from its source.

A registry tag, a podman image, a layout or an archive all resolve the same way:
:func:`resolve_base` gives the digest of the top document (index or manifest) the
lock records; :func:`open_base` opens that exact document again.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from distill.errors import ImageError
from distill.oci.image import BlobStore
from distill.oci.registry import RegistrySettings, RegistrySource
from distill.oci.source import Document, Source, StoreSource, Verified, check_digest, open_source


class _CachedSource(Source):
    """Blobs from the cache when it has them, else from the source (opened on first need)."""

    def __init__(
        self, store: BlobStore, target: str, settings: RegistrySettings | None, offline: bool
    ) -> None:
        self.store = store
        self.target = target
        self.settings = settings
        self.offline = offline
        self.name = target.removeprefix("docker://")
        self._upstream: Source | None = None
        self._cached = StoreSource(store, None, self.name)

    def upstream(self) -> Source:
        if self._upstream is None:
            if self.offline:
                raise ImageError(
                    f"{self.name}: the base image is not (wholly) in the cache",
                    hint="--offline forbids reading it; run once without --offline",
                )
            self._upstream = open_source(self.target, settings=self.settings)
            self.diff_ids = self._upstream.diff_ids
            self.ref = self._upstream.ref
        return self._upstream

    def top(self) -> Document:
        return self.upstream().top()

    def root(self) -> Document:
        return self.upstream().root()

    def pinned(self, digest: str) -> Document:
        if self._cached.has(digest):
            return self._cached.pinned(digest)
        return self.upstream().pinned(digest)

    def read_manifest(self, digest: str, size: int | None) -> bytes:
        if self._cached.has(digest):
            return self._cached.read_manifest(digest, size)
        return self.upstream().read_manifest(digest, size)

    @contextmanager
    def open_blob(self, digest: str, size: int | None) -> Iterator[Verified]:
        source: Source = self._cached if self._cached.has(digest) else self.upstream()
        with source.open_blob(digest, size) as f:
            yield f

    def close(self) -> None:
        if self._upstream is not None:
            self._upstream.close()


def current_digest(source: Source) -> str:
    """The digest the source's reference names now: a registry tag by HEAD, else the
    top document it holds."""
    if isinstance(source, RegistrySource):
        return source.current_digest()
    doc = source.root()
    assert doc.digest is not None
    return doc.digest


def resolve_base(target: str, settings: RegistrySettings | None) -> str:
    """The digest ``from:`` names now (what ``distill lock`` records)."""
    with open_source(target, settings=settings) as source:
        return current_digest(source)


def open_base(
    target: str,
    store: BlobStore,
    *,
    settings: RegistrySettings | None = None,
    offline: bool = False,
    pinned: str | None = None,
) -> tuple[Source, Document]:
    """The base image's source (blobs from the cache first) and its top document: the
    one ``pinned`` names, else the one its reference names now."""
    source = _CachedSource(store, target, settings, offline)
    try:
        doc = source.pinned(check_digest(pinned)) if pinned is not None else source.root()
    except BaseException:
        source.close()
        raise
    return source, doc
