"""An invariant checker for OCI image layouts (run on every image the tests build).

Checks what strict readers check: the layout marker, every referenced blob present
with the recorded size and digest, media types, a config whose ``diff_ids`` are the
SHA256 of each decompressed layer, and ``history`` entries that match the layers.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path
from typing import Any

from distill.oci.image import CONFIG, INDEX, LAYER_GZIP, MANIFEST


class LayoutError(ValueError):
    pass


def _blob(root: Path, desc: dict[str, Any]) -> bytes:
    digest = str(desc.get("digest", ""))
    if not digest.startswith("sha256:") or len(digest) != 71:
        raise LayoutError(f"bad digest {digest!r}")
    path = root / "blobs" / "sha256" / digest[7:]
    try:
        data = path.read_bytes()
    except OSError:
        raise LayoutError(f"missing blob {digest}") from None
    if len(data) != desc.get("size"):
        raise LayoutError(f"blob {digest} is {len(data)} bytes, descriptor says {desc.get('size')}")
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        raise LayoutError(f"blob {digest} does not hash to its name")
    return data


def _gunzip_sha256(data: bytes) -> str:
    d = zlib.decompressobj(31)
    h = hashlib.sha256()
    h.update(d.decompress(data))
    h.update(d.flush())
    if not d.eof:
        raise LayoutError("layer gzip stream is truncated")
    return "sha256:" + h.hexdigest()


def _manifest(root: Path, desc: dict[str, Any]) -> list[str]:
    doc = json.loads(_blob(root, desc))
    if doc.get("schemaVersion") != 2 or doc.get("mediaType") != MANIFEST:
        raise LayoutError(f"manifest {desc['digest']} has the wrong schemaVersion or mediaType")
    config_desc = doc["config"]
    if config_desc.get("mediaType") != CONFIG:
        raise LayoutError("config has the wrong mediaType")
    config = json.loads(_blob(root, config_desc))
    for key in ("architecture", "os", "rootfs"):
        if key not in config:
            raise LayoutError(f"config lacks {key}")
    diff_ids = config["rootfs"].get("diff_ids", [])
    layers = doc.get("layers", [])
    if len(diff_ids) != len(layers):
        raise LayoutError(f"{len(layers)} layers but {len(diff_ids)} diff_ids")
    history = [h for h in config.get("history", []) if not h.get("empty_layer")]
    if history and len(history) != len(layers):
        raise LayoutError(f"{len(layers)} layers but {len(history)} history entries with layers")
    platform = desc.get("platform")
    if platform and (platform.get("architecture"), platform.get("os")) != (
        config["architecture"],
        config["os"],
    ):
        raise LayoutError("index platform does not match the config")
    for layer, diff_id in zip(layers, diff_ids, strict=True):
        if layer.get("mediaType") != LAYER_GZIP:
            raise LayoutError(f"layer {layer.get('digest')} has mediaType {layer.get('mediaType')}")
        if _gunzip_sha256(_blob(root, layer)) != diff_id:
            raise LayoutError(f"layer {layer['digest']} does not decompress to diff_id {diff_id}")
    return [layer["digest"] for layer in layers]


def _walk(root: Path, desc: dict[str, Any], depth: int = 0) -> None:
    if depth > 4:
        raise LayoutError("indexes nest too deeply")
    media = desc.get("mediaType")
    if media == INDEX:
        doc = json.loads(_blob(root, desc))
        if doc.get("schemaVersion") != 2:
            raise LayoutError("index schemaVersion is not 2")
        for m in doc.get("manifests", []):
            _walk(root, m, depth + 1)
    elif media == MANIFEST:
        _manifest(root, desc)
    else:
        raise LayoutError(f"unexpected mediaType {media!r} in an index")


def validate_layout(root: Path) -> dict[str, Any]:
    """Raise :class:`LayoutError` unless ``root`` is a sound OCI image layout; its index.json."""
    try:
        marker = json.loads((root / "oci-layout").read_text())
        index = json.loads((root / "index.json").read_text())
    except (OSError, ValueError) as exc:
        raise LayoutError(f"not an OCI layout: {exc}") from None
    if marker.get("imageLayoutVersion") != "1.0.0":
        raise LayoutError("oci-layout is not version 1.0.0")
    if index.get("schemaVersion") != 2 or not index.get("manifests"):
        raise LayoutError("index.json has no manifests")
    for m in index["manifests"]:
        _walk(root, m)
    return dict(index)
