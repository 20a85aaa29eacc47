"""Signatures and attestations stored beside an image, as cosign stores them.

**Tags (cosign's scheme; what podman, skopeo and CRI-O read).** The signatures of the
manifest ``sha256:H`` are the layers of an OCI image manifest tagged ``sha256-H.sig``
in the same repository, one layer per signature (the payload is the blob, the
signature a layer annotation); its attestations likewise under ``sha256-H.att``.
Adding one appends a layer to the manifest that is there (its config's ``diff_ids``
follow), so signatures by several keys live side by side.

**Referrers (OCI 1.1).** An attestation is also pushed as an artifact manifest whose
``subject`` is the image: a registry with the referrers API lists it under
``/v2/REPO/referrers/sha256:H`` (it answers ``OCI-Subject`` to the push); for one
without (Debian's docker-registry, distribution 2.8), the tag schema fallback: the
index tagged ``sha256-H`` lists the referrers and is updated by reading, adding and
pushing it back.

**OCI layouts.** The same manifests and blobs go into the layout; each tag above is
an ``index.json`` entry whose ``org.opencontainers.image.ref.name`` is the tag (what
``skopeo copy docker://…:sha256-H.sig oci:DIR:sha256-H.sig``, oras and regctl write).
The top image's entries also carry cosign's ``kind`` annotations
(``dev.cosignproject.cosign/image``, ``…/imageIndex``, ``…/sigs``, ``…/atts``), as
``cosign save`` writes a layout; distill's own readers skip attachment entries when
they look for the image.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill.archive.cache import atomic_write, file_lock
from distill.errors import ImageError, RegistryError
from distill.limits import read_regular
from distill.oci.image import CONFIG, INDEX, MANIFEST, Descriptor, canonical_json
from distill.oci.registry import Registry
from distill.oci.schema import Index, Manifest, check
from distill.oci.source import (
    ATTACHMENT_TAG,
    MAX_DOCUMENT,
    Document,
    check_digest,
    digest_of,
    is_attachment,
    parse_json,
)

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PREDICATE_ANNOTATION = "predicateType"  # cosign's, on an .att layer
INTOTO_PREDICATE = "in-toto.io/predicate-type"  # on a referrer (as docker buildx writes)
EMPTY_MEDIA = "application/vnd.oci.empty.v1+json"
EMPTY = b"{}"
INTOTO_ARTIFACT = "application/vnd.in-toto+json"  # a referrer's artifactType (cosign's choice)
REF_NAME = "org.opencontainers.image.ref.name"
KIND = "kind"  # cosign save's layout annotations
KIND_IMAGE, KIND_INDEX = "dev.cosignproject.cosign/image", "dev.cosignproject.cosign/imageIndex"
KIND_SIGS, KIND_ATTS = "dev.cosignproject.cosign/sigs", "dev.cosignproject.cosign/atts"
MAX_LAYER = 64 << 20  # one signature payload or attestation envelope read whole
MAX_LAYERS = 1000  # layers of one .sig/.att manifest (signatures by that many keys)


def tag_of(digest: str, suffix: str) -> str:
    """``sha256-<hex>.sig`` / ``.att`` (suffix ``""``: the referrers fallback tag)."""
    return check_digest(digest).replace(":", "-", 1) + (f".{suffix}" if suffix else "")


@dataclass(frozen=True)
class Layer:
    """One layer of an attachment manifest: its bytes and annotations."""

    media_type: str
    data: bytes
    annotations: dict[str, str]

    @property
    def digest(self) -> str:
        return digest_of(self.data)


class Store:
    """Where attachments are read and written: a registry repository or a layout."""

    name: str

    def find(self, tag: str) -> Document | None:
        raise NotImplementedError

    def document(self, digest: str) -> Document:
        raise NotImplementedError

    def blob(self, digest: str, limit: int) -> bytes:
        raise NotImplementedError

    def put_blob(self, data: bytes) -> str:
        raise NotImplementedError

    def put_manifest(self, doc: Document, tag: str | None, kind: str | None = None) -> bool:
        """Store ``doc`` (by digest, and under ``tag``); True when the store handled its
        ``subject`` itself (a registry with the referrers API)."""
        raise NotImplementedError

    def referrers(self, digest: str) -> list[dict[str, Any]] | None:
        """The referrers API's answer, or None where there is none (use the fallback tag)."""
        return None

    @contextmanager
    def locked(self) -> Iterator[None]:
        yield


class RegistryStore(Store):
    def __init__(self, registry: Registry, repo: str) -> None:
        self.registry = registry
        self.repo = repo
        self.name = f"{registry.host}/{repo}"

    def find(self, tag: str) -> Document | None:
        return self.registry.find_manifest(self.repo, tag, self.name)

    def document(self, digest: str) -> Document:
        return self.registry.get_manifest(self.repo, check_digest(digest), self.name)

    def blob(self, digest: str, limit: int) -> bytes:
        return self.registry.read_small_blob(self.repo, digest, limit)

    def put_blob(self, data: bytes) -> str:
        return self.registry.upload(self.repo, data)

    def put_manifest(self, doc: Document, tag: str | None, kind: str | None = None) -> bool:
        assert doc.digest is not None
        # A tagged manifest is stored by its tag alone (as cosign does); an untagged one
        # (a referrer) by its digest, whose answer says whether the registry took its subject.
        subject = self.registry.put_manifest(self.repo, tag or doc.digest, doc.media_type, doc.data)
        return subject is not None

    def referrers(self, digest: str) -> list[dict[str, Any]] | None:
        data = self.registry.referrers(self.repo, digest)
        if data is None:
            return None
        index = check(
            Index,
            parse_json(data, f"{self.name}: referrers"),
            label=f"{self.name}: referrers",
            error=RegistryError,
        )
        return [m.model_dump(exclude_none=True) for m in index.manifests]


class LayoutStore(Store):
    """An OCI image layout: blobs under blobs/sha256, tags as index.json entries."""

    def __init__(self, path: Path, name: str | None = None) -> None:
        self.path = path
        self.name = name or str(path)
        if not (path / "oci-layout").is_file() or not (path / "index.json").is_file():
            raise ImageError(f"{path} is not an OCI image layout (no oci-layout / index.json)")

    def _blob_path(self, digest: str) -> Path:
        return self.path / "blobs" / "sha256" / check_digest(digest).partition(":")[2]

    def _index(self) -> dict[str, Any]:
        data = read_regular(self.path / "index.json", MAX_DOCUMENT, error=ImageError, what="layout index")
        doc = parse_json(data, f"{self.name}: index.json")
        check(Index, doc, label=f"{self.name}: index.json", error=ImageError)
        return doc

    def entries(self) -> list[dict[str, Any]]:
        return list(self._index().get("manifests") or [])

    def find(self, tag: str) -> Document | None:
        for m in self.entries():
            if (m.get("annotations") or {}).get(REF_NAME) == tag:
                return self.document(m["digest"])
        return None

    def document(self, digest: str) -> Document:
        data = self.blob(digest, MAX_DOCUMENT)
        doc = parse_json(data, f"{self.name}: {digest}")
        media = doc.get("mediaType")
        if not isinstance(media, str):
            media = INDEX if "manifests" in doc else MANIFEST
        return Document(media, data, digest)

    def blob(self, digest: str, limit: int) -> bytes:
        path = self._blob_path(digest)
        if not path.exists():
            raise ImageError(f"{self.name}: blob {digest} is missing from blobs/")
        data = read_regular(path, limit, error=ImageError, what=f"{self.name}: blob")
        if digest_of(data) != digest:
            raise ImageError(f"{self.name}: blob {digest} does not match its digest (corrupt or tampered)")
        return data

    def put_blob(self, data: bytes) -> str:
        digest = digest_of(data)
        path = self._blob_path(digest)
        try:
            current = path.is_file() and path.read_bytes() == data
        except OSError:
            current = False
        if not current:
            atomic_write(path, data)
            path.chmod(0o644)
        return digest

    def put_manifest(self, doc: Document, tag: str | None, kind: str | None = None) -> bool:
        assert doc.digest is not None
        self.put_blob(doc.data)
        if tag is None:
            return False
        index = self._index()
        entries = [
            m for m in index.get("manifests") or [] if (m.get("annotations") or {}).get(REF_NAME) != tag
        ]
        annotations = {REF_NAME: tag, **({KIND: kind} if kind else {})}
        entries.append(
            {
                "mediaType": doc.media_type,
                "digest": doc.digest,
                "size": len(doc.data),
                "annotations": annotations,
            }
        )
        index["manifests"] = entries
        atomic_write(self.path / "index.json", json.dumps(index, separators=(",", ":")).encode())
        (self.path / "index.json").chmod(0o644)
        return False

    def mark_image(self, digest: str, kind: str) -> None:
        """cosign save's ``kind`` annotation on the image's own entry."""
        index = self._index()
        changed = False
        for m in index.get("manifests") or []:
            annotations = m.get("annotations") or {}
            if m.get("digest") == digest and annotations.get(KIND) != kind:
                m["annotations"] = {**annotations, KIND: kind}
                changed = True
        if changed:
            atomic_write(self.path / "index.json", json.dumps(index, separators=(",", ":")).encode())
            (self.path / "index.json").chmod(0o644)

    @contextmanager
    def locked(self) -> Iterator[None]:
        # index.json is read, changed and written back: one writer at a time (the lock
        # file is inside the layout, and gone once released).
        with file_lock(self.path / ".distill-attach.lock"):
            yield


def carried(store: LayoutStore, top: Document) -> list[tuple[str, Document]]:
    """The signatures, attestations and referrers indexes a layout holds for ``top`` and
    the manifests it lists, as (tag, document): what a push of the image takes along."""
    assert top.digest is not None
    digests = {top.digest}
    if top.is_index:
        index = check(Index, parse_json(top.data, store.name), label=store.name, error=ImageError)
        digests |= {m.digest for m in index.manifests}
    out = []
    for m in store.entries():
        tag = (m.get("annotations") or {}).get(REF_NAME)
        if not isinstance(tag, str) or not ATTACHMENT_TAG.fullmatch(tag):
            continue
        if "sha256:" + tag[7:71] in digests:
            out.append((tag, store.document(m["digest"])))
    return out


def _manifest(store: Store, tag: str, with_config: bool = True) -> tuple[dict[str, Any] | None, list[Any]]:
    """The attachment manifest under ``tag`` (parsed) and its config's diff_ids (when
    ``with_config``: an append rewrites them; a reader needs only the layers)."""
    doc = store.find(tag)
    if doc is None:
        return None, []
    what = f"{store.name}:{tag}"
    if doc.media_type != MANIFEST:
        raise ImageError(f"{what} is a {doc.media_type[:80]!r}, not an OCI image manifest")
    parsed = parse_json(doc.data, what)
    manifest = check(Manifest, parsed, label=what, error=ImageError)
    if len(manifest.layers) > MAX_LAYERS:
        raise ImageError(f"{what} has more than {MAX_LAYERS} layers")
    if not with_config:
        return parsed, []
    config = parse_json(store.blob(manifest.config.digest, MAX_DOCUMENT), f"{what}: config")
    diff_ids = (
        (config.get("rootfs") or {}).get("diff_ids") if isinstance(config.get("rootfs"), dict) else None
    )
    return parsed, list(diff_ids) if isinstance(diff_ids, list) else []


def read_layers(store: Store, tag: str, media_type: str) -> list[Layer]:
    """The layers of ``media_type`` of the attachment manifest under ``tag`` (none: [])."""
    parsed, _ = _manifest(store, tag, with_config=False)
    if parsed is None:
        return []
    out = []
    for d in parsed["layers"]:
        if d.get("mediaType") != media_type:
            continue
        data = store.blob(d["digest"], min(int(d.get("size") or MAX_LAYER), MAX_LAYER))
        annotations = d.get("annotations") or {}
        out.append(Layer(media_type, data, {str(k): str(v) for k, v in annotations.items()}))
    return out


def append_layer(
    store: Store,
    tag: str,
    layer: Layer,
    *,
    duplicate: Callable[[Layer], bool] = lambda existing: False,
    replace: Callable[[Layer], bool] = lambda existing: False,
    kind: str | None = None,
) -> bool:
    """Add ``layer`` to the attachment manifest under ``tag`` (made when there is none):
    False when a layer already there is ``duplicate`` (nothing is written). Layers that
    ``replace`` says to are dropped first (``attest --replace``)."""
    with store.locked():
        parsed, diff_ids = _manifest(store, tag)
        kept: list[dict[str, Any]] = []
        kept_ids: list[Any] = []
        if parsed is not None:
            layers = parsed["layers"]
            ids = diff_ids if len(diff_ids) == len(layers) else [d["digest"] for d in layers]
            for d, diff_id in zip(layers, ids, strict=True):
                existing = None
                if d.get("mediaType") == layer.media_type:
                    data = store.blob(d["digest"], min(int(d.get("size") or MAX_LAYER), MAX_LAYER))
                    annotations = {str(k): str(v) for k, v in (d.get("annotations") or {}).items()}
                    existing = Layer(layer.media_type, data, annotations)
                    if duplicate(existing):
                        return False
                    if replace(existing):
                        continue
                kept.append(d)
                kept_ids.append(diff_id)
        digest = store.put_blob(layer.data)
        kept.append(
            {
                "mediaType": layer.media_type,
                "digest": digest,
                "size": len(layer.data),
                "annotations": layer.annotations,
            }
        )
        kept_ids.append(digest)
        # As containers/image writes it (and cosign, but for its zero dates).
        config = canonical_json(
            {"architecture": "", "config": {}, "os": "", "rootfs": {"diff_ids": kept_ids, "type": "layers"}}
        )
        config_digest = store.put_blob(config)
        doc = dict(parsed or {"schemaVersion": 2, "mediaType": MANIFEST})
        doc["config"] = {"mediaType": CONFIG, "digest": config_digest, "size": len(config)}
        doc["layers"] = kept
        data = canonical_json(doc)
        store.put_manifest(Document(MANIFEST, data, digest_of(data)), tag, kind)
    return True


def add_referrer(
    store: Store,
    subject: Descriptor,
    artifact_type: str,
    layer: Layer,
    annotations: dict[str, str],
) -> tuple[str, bool]:
    """Push ``layer`` as an OCI 1.1 artifact whose subject is ``subject``; returns its
    digest and whether the store's referrers API took it (else the fallback index
    tagged ``sha256-<hex>`` of the subject was updated)."""
    store.put_blob(EMPTY)
    digest = store.put_blob(layer.data)
    doc = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY_MEDIA, "digest": digest_of(EMPTY), "size": len(EMPTY)},
        "layers": [
            {
                "mediaType": layer.media_type,
                "digest": digest,
                "size": len(layer.data),
                "annotations": layer.annotations,
            }
        ],
        "subject": {"mediaType": subject.media_type, "digest": subject.digest, "size": subject.size},
        "annotations": annotations,
    }
    data = canonical_json(doc)
    manifest = Document(MANIFEST, data, digest_of(data))
    assert manifest.digest is not None
    with store.locked():
        if store.put_manifest(manifest, None):
            return manifest.digest, True
        tag = tag_of(subject.digest, "")
        found = store.find(tag)
        entries: list[dict[str, Any]] = []
        if found is not None:
            index = check(
                Index,
                parse_json(found.data, f"{store.name}:{tag}"),
                label=f"{store.name}:{tag}",
                error=ImageError,
            )
            entries = [
                m.model_dump(exclude_none=True) for m in index.manifests if m.digest != manifest.digest
            ]
        entries.append(
            {
                "mediaType": MANIFEST,
                "digest": manifest.digest,
                "size": len(data),
                "artifactType": artifact_type,
                "annotations": annotations,
            }
        )
        fallback = canonical_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries})
        store.put_manifest(Document(INDEX, fallback, digest_of(fallback)), tag)
    return manifest.digest, False


def referrers(store: Store, digest: str, artifact_type: str | None = None) -> list[dict[str, Any]]:
    """The descriptors of ``digest``'s referrers: from the referrers API where the store
    has it, else from the fallback tag (cosign and oras read them the same way)."""
    found = store.referrers(digest)
    if found is None:
        doc = store.find(tag_of(digest, ""))
        if doc is None:
            return []
        label = f"{store.name}:{tag_of(digest, '')}"
        index = check(Index, parse_json(doc.data, label), label=label, error=ImageError)
        found = [m.model_dump(exclude_none=True) for m in index.manifests]
    return [m for m in found if artifact_type is None or m.get("artifactType") == artifact_type]


def referrer_layers(store: Store, digest: str, artifact_type: str, media_type: str) -> list[Layer]:
    """The layers of ``media_type`` of every referrer of ``artifact_type`` whose subject is ``digest``."""
    out = []
    for entry in referrers(store, digest, artifact_type)[:MAX_LAYERS]:
        doc = store.document(entry["digest"])
        label = f"{store.name}@{entry['digest']}"
        parsed = parse_json(doc.data, label)
        manifest = check(Manifest, parsed, label=label, error=ImageError)
        subject = parsed.get("subject")
        if not isinstance(subject, dict) or subject.get("digest") != digest:
            continue  # a fallback index names it, but it is about something else
        for d in manifest.layers:
            if d.mediaType == media_type:
                data = store.blob(d.digest, min(d.size or MAX_LAYER, MAX_LAYER))
                out.append(Layer(media_type, data, dict(d.annotations or {})))
    return out


__all__ = [
    "ATTACHMENT_TAG",
    "INTOTO_ARTIFACT",
    "KIND_ATTS",
    "KIND_IMAGE",
    "KIND_INDEX",
    "KIND_SIGS",
    "PREDICATE_ANNOTATION",
    "SIGNATURE_ANNOTATION",
    "Layer",
    "LayoutStore",
    "RegistryStore",
    "Store",
    "add_referrer",
    "append_layer",
    "is_attachment",
    "read_layers",
    "referrer_layers",
    "referrers",
    "tag_of",
]
