"""OCI images as values: descriptors, config, manifest and index, serialised canonically.

JSON documents are written with sorted keys and no spaces, so the same image is the
same bytes and the same digest every time. All blobs (layers and JSON documents)
live in one content-addressed store (the cache's ``blobs/sha256``); sinks copy out
of it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from distill.archive.cache import (
    CorruptEntryError,
    NotRegularError,
    atomic_write,
    check_digest,
    discard,
    read_entry,
)
from distill.errors import IntegrityError

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

# Debian architecture -> OCI platform (architecture, variant).
PLATFORMS: dict[str, tuple[str, str | None]] = {
    "amd64": ("amd64", None),
    "arm64": ("arm64", "v8"),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v5"),
    "i386": ("386", None),
    "ppc64el": ("ppc64le", None),
    "riscv64": ("riscv64", None),
    "s390x": ("s390x", None),
}


def canonical_json(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def platform(arch: str) -> dict[str, str]:
    os_arch, variant = PLATFORMS[arch]
    out = {"architecture": os_arch, "os": "linux"}
    if variant:
        out["variant"] = variant
    return out


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    platform: dict[str, str] | None = None
    annotations: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.platform:
            out["platform"] = self.platform
        if self.annotations:
            out["annotations"] = self.annotations
        return out


class BlobStore:
    """A directory of blobs named by their SHA256 (written atomically, idempotently)."""

    def __init__(self, root: Path) -> None:
        self.dir = root / "blobs" / "sha256"

    def path(self, digest: str) -> Path:
        """The blob's file; ``digest`` must be ``sha256:<64 hex>`` (it names a path)."""
        if not digest.startswith("sha256:"):
            raise IntegrityError(f"blob digest {digest[:80]!r} is not a sha256 digest")
        return self.dir / check_digest(digest[7:], "blob digest")

    def put(self, data: bytes, media_type: str) -> Descriptor:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.path(digest)
        try:
            current = read_entry(path) == data  # small documents: compared, never trusted
        except OSError:
            current = False
        if not current:
            atomic_write(path, data)
        return Descriptor(media_type, digest, len(data))

    def read_json(self, digest: str) -> Any:
        """A JSON blob, hashed on read: a damaged one is removed (:class:`CorruptEntryError`)."""
        path = self.path(digest)
        try:
            data = read_entry(path)
        except NotRegularError:  # a FIFO or device in its place
            data = b""
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            discard(path)
            raise CorruptEntryError(f"the cached blob {path} does not match its digest; it was removed")
        return json.loads(data)


@dataclass
class ImageConfig:
    """The runtime part of an image config (``config`` in the OCI document)."""

    user: str = "0"
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    labels: dict[str, str] = field(default_factory=dict)
    exposed_ports: list[str] = field(default_factory=list)
    stop_signal: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "User": self.user,
            "WorkingDir": self.workdir,
            "Env": [f"{k}={v}" for k, v in self.env.items()],
        }
        if self.entrypoint is not None:
            out["Entrypoint"] = self.entrypoint
        if self.cmd is not None:
            out["Cmd"] = self.cmd
        if self.labels:
            out["Labels"] = dict(self.labels)
        if self.exposed_ports:
            out["ExposedPorts"] = {p: {} for p in self.exposed_ports}
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        return out


@dataclass(frozen=True)
class History:
    created_by: str
    comment: str
    empty_layer: bool = False


def config_document(
    arch: str, created: int, config: ImageConfig, diff_ids: list[str], history: list[History]
) -> dict[str, Any]:
    return {
        **platform(arch),
        "created": rfc3339(created),
        "config": config.to_json(),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [
            {
                "created": rfc3339(created),
                "created_by": h.created_by,
                "comment": h.comment,
                **({"empty_layer": True} if h.empty_layer else {}),
            }
            for h in history
        ],
    }


def manifest_document(
    config: Descriptor, layers: list[Descriptor], annotations: dict[str, str]
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": config.to_json(),
        "layers": [d.to_json() for d in layers],
    }
    if annotations:
        doc["annotations"] = annotations
    return doc


def index_document(manifests: list[Descriptor], annotations: dict[str, str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [d.to_json() for d in manifests],
    }
    if annotations:
        doc["annotations"] = annotations
    return doc


def reachable(store: BlobStore, top: Descriptor) -> list[Descriptor]:
    """Every blob an index or manifest refers to, the top one included (each once)."""
    seen: dict[str, Descriptor] = {}
    todo = [top]
    while todo:
        d = todo.pop()
        if d.digest in seen:
            continue
        seen[d.digest] = d
        if d.media_type == INDEX:
            for m in store.read_json(d.digest)["manifests"]:
                todo.append(Descriptor(m["mediaType"], m["digest"], m["size"]))
        elif d.media_type == MANIFEST:
            doc = store.read_json(d.digest)
            c = doc["config"]
            todo.append(Descriptor(c["mediaType"], c["digest"], c["size"]))
            todo.extend(Descriptor(x["mediaType"], x["digest"], x["size"]) for x in doc["layers"])
    return sorted(seen.values(), key=lambda d: d.digest)
