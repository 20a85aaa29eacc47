"""Small OCI image layouts written by the tests themselves (for audit inputs that no
real tool would produce: corrupt, truncated, whiteouts placed just so, bombs)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class F:
    """One tar entry: a file (data), a directory, a symlink or a hard link."""

    name: str
    data: bytes = b""
    mode: int = 0o644
    kind: str = "file"  # file | dir | symlink | link
    target: str = ""
    size: int | None = None  # a header that lies about the size (data not written)


def layer_tar(entries: list[F]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e.name)
            ti.mode = e.mode
            ti.mtime = 1700000000
            if e.kind == "dir":
                ti.type = tarfile.DIRTYPE
                tf.addfile(ti)
            elif e.kind == "symlink":
                ti.type = tarfile.SYMTYPE
                ti.linkname = e.target
                tf.addfile(ti)
            elif e.kind == "link":
                ti.type = tarfile.LNKTYPE
                ti.linkname = e.target
                tf.addfile(ti)
            elif e.size is not None:
                ti.size = e.size
                buf.write(ti.tobuf(tarfile.PAX_FORMAT))  # a header only
                return buf.getvalue()
            else:
                ti.size = len(e.data)
                tf.addfile(ti, io.BytesIO(e.data))
    return buf.getvalue()


def _raw_diff_id(blob: bytes, limit: int = 256 << 20) -> str:
    """The diff_id of a gzip blob given as it is: its decompressed hash, streamed, when it
    decompresses within ``limit`` bytes; else a placeholder (readers refuse such a
    layer for another reason first: a bomb, a corrupt stream)."""
    z = zlib.decompressobj(31)
    h = hashlib.sha256()
    total = 0
    try:
        for i in range(0, len(blob), 1 << 16):
            data = z.decompress(blob[i : i + (1 << 16)], limit + 1 - total)
            while data:
                h.update(data)
                total += len(data)
                if total > limit:
                    return "sha256:" + "0" * 64
                data = z.decompress(z.unconsumed_tail, limit + 1 - total) if z.unconsumed_tail else b""
    except zlib.error:
        return "sha256:" + "0" * 64
    return "sha256:" + h.hexdigest()


def _blob(root: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def write_layout(
    root: Path,
    layers: list[bytes],
    config: dict[str, Any] | None = None,
    *,
    ref: str = "latest",
    gz: bool = True,
    raw_layers: list[bytes] | None = None,
) -> dict[str, Any]:
    """An OCI layout of the given layer tars (gzipped unless gz=False); returns the manifest.
    raw_layers: blobs used as they are (already compressed, or deliberately broken)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    descs, diff_ids = [], []
    for tar in layers:
        blob = gzip.compress(tar, mtime=0) if gz else tar
        d = _blob(root, blob)
        d["mediaType"] = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gz else "")
        descs.append(d)
        diff_ids.append("sha256:" + hashlib.sha256(tar).hexdigest())
    for blob in raw_layers or []:
        d = _blob(root, blob)
        d["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
        descs.append(d)
        diff_ids.append(_raw_diff_id(blob))
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "config": (config or {}),
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    c = _blob(root, json.dumps(cfg).encode())
    c["mediaType"] = "application/vnd.oci.image.config.v1+json"
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": c,
        "layers": descs,
    }
    m = _blob(root, json.dumps(manifest).encode())
    m["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
    m["annotations"] = {"org.opencontainers.image.ref.name": ref}
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [m]}))
    return manifest
