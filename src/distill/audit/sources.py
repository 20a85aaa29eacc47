"""Where an audited image comes from: an OCI layout directory, an OCI or docker
archive tar, a local podman/docker image (through their ``save`` commands) or a
registry (see :mod:`distill.audit.registry`).

Every source answers the same two questions: the top-level document for a reference,
and a blob by digest. Blobs are read as streams and verified against their digest as
they are read (:class:`Verified`), so nothing is trusted and nothing is unpacked.
"""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import os
import shutil
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.errors import AuditError
from distill.limits import MAX_OCI_JSON, load_json, open_regular, read_regular
from distill.oci.schema import Descriptor, DockerEntry, ImageConfig, Index, Top, check, check_list, json_type
from distill.tarsafe import BoundedTarInfo, EntryBudget, members

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEXES = (OCI_INDEX, DOCKER_LIST)
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
MAX_DOCUMENT = MAX_OCI_JSON  # manifests, indexes and configs: a few KiB in practice


@dataclass
class Image:
    """One image picked from a source: its manifest, config and where it came from."""

    name: str  # what the user typed
    digest: str | None  # the manifest's digest, when there is one
    manifest: dict[str, Any]
    config: dict[str, Any]
    ref: str | None = None  # tag or ref name
    layers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def compressed_size(self) -> int:
        return sum(int(d.get("size") or 0) for d in self.layers)


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
            raise AuditError(f"{self.what} is larger than its declared {self.limit} bytes")
        return n

    def finish(self) -> None:
        while self.read(1 << 20):
            pass
        if self.limit is not None and self.count != self.limit:
            raise AuditError(
                f"{self.what} is truncated: {self.count} of {self.limit} bytes"
                if self.count < self.limit
                else f"{self.what} is larger than its declared {self.limit} bytes"
            )
        if self.digest is not None and "sha256:" + self.h.hexdigest() != self.digest:
            raise AuditError(f"{self.what} does not match its digest {self.digest} (corrupt or tampered)")


def check_digest(digest: Any) -> str:
    if not isinstance(digest, str):
        raise AuditError(f"malformed digest {digest!r}")
    algo, _, hexdigest = digest.partition(":")
    if algo != "sha256" or len(hexdigest) != 64 or not all(c in "0123456789abcdef" for c in hexdigest):
        raise AuditError(f"unsupported or malformed digest {digest!r}")
    return digest


def parse_json(data: bytes, what: str) -> dict[str, Any]:
    """A JSON object of an image (size and depth capped; see distill.limits)."""
    doc = load_json(data, label=what, error=AuditError, limit=MAX_DOCUMENT)
    if not isinstance(doc, dict):
        raise AuditError(f"{what}: should be a JSON object, not {json_type(doc)}")
    return doc


def _os(m: Descriptor) -> str:
    return (m.platform.os if m.platform is not None else "") or "linux"


def _arch(m: Descriptor) -> str | None:
    return m.platform.architecture if m.platform is not None else None


class Source:
    """Base: subclasses give :meth:`top` and :meth:`open_blob`."""

    name: str
    ref: str | None = None
    diff_ids = False  # layers are addressed by their uncompressed digest (docker archives)

    def top(self) -> tuple[str, bytes, str | None]:
        """(media type, bytes, digest or None) of the document the reference names."""
        raise NotImplementedError

    @contextmanager
    def open_blob(self, digest: str, size: int | None) -> Iterator[Verified]:
        raise NotImplementedError
        yield  # pragma: no cover

    def read_blob(self, digest: str, size: int | None, what: str) -> bytes:
        if size is not None and size > MAX_DOCUMENT:
            raise AuditError(
                f"{self.name}: the {what} declares {size} bytes; refusing more than {MAX_DOCUMENT}"
            )
        with self.open_blob(check_digest(digest), size) as f:
            data = f.read(MAX_DOCUMENT + 1)
            if len(data) > MAX_DOCUMENT:
                raise AuditError(f"{self.name}: the {what} is larger than {MAX_DOCUMENT} bytes")
            f.finish()
        return data

    def close(self) -> None:
        pass

    def image(self, arch: str | None) -> Image:
        """The image for ``arch`` (default: the host's, else the only or first one)."""
        from distill.distros import host_arch

        media, data, digest = self.top()
        for _ in range(4):
            what = f"{self.name}: the {'index' if media in INDEXES else 'manifest'}"
            doc = parse_json(data, what)
            top = check(Top, doc, label=what, error=AuditError)
            media = top.mediaType or media
            if media in INDEXES or top.manifests is not None:
                entries = [
                    m
                    for m in top.manifests or []
                    if _os(m) == "linux" and m.mediaType in (*INDEXES, *MANIFESTS)
                ]
                if not entries:
                    raise AuditError(f"{self.name}: the index lists no linux image")
                want = arch or host_arch()
                match = [m for m in entries if _arch(m) == want]
                if not match:  # an index with no platform of its own (a layout's one entry): inside it
                    match = [m for m in entries if m.mediaType in INDEXES and m.platform is None]
                if not match:
                    if arch is not None:
                        have = sorted({str(_arch(m)) for m in entries})
                        raise AuditError(
                            f"{self.name} has no linux/{arch} image", hint=f"it has {', '.join(have)}"
                        )
                    match = entries
                desc = match[0]
                media = desc.mediaType
                digest = desc.digest
                data = self.read_blob(digest, desc.size, "manifest")
                continue
            if media not in MANIFESTS and top.layers is None:
                raise AuditError(f"{self.name}: unsupported media type {media!r}")
            if top.layers is None or top.config is None:
                raise AuditError(f"{self.name}: the manifest has no config or layers")
            cfg = top.config
            config = parse_json(self.read_blob(cfg.digest, cfg.size, "config"), f"{self.name}: the config")
            parsed = check(ImageConfig, config, label=f"{self.name}: the config", error=AuditError)
            got = parsed.architecture
            if arch is not None and got != arch:
                raise AuditError(f"{self.name} is a {got} image, not {arch}")
            if len(parsed.rootfs.diff_ids) != len(top.layers):
                raise AuditError(f"{self.name}: the config's diff_ids do not match the manifest's layers")
            return Image(self.name, digest, doc, config, self.ref, doc["layers"])
        raise AuditError(f"{self.name}: indexes nested too deep")


class LayoutSource(Source):
    """An OCI image layout directory (``DIR`` or ``DIR:REF``)."""

    def __init__(self, path: Path, ref: str | None, name: str) -> None:
        self.path = path
        self.ref = ref
        self.name = name

    def top(self) -> tuple[str, bytes, str | None]:
        if not (self.path / "oci-layout").is_file() or not (self.path / "index.json").exists():
            raise AuditError(f"{self.path} is not an OCI image layout (no oci-layout / index.json)")
        data = read_regular(self.path / "index.json", MAX_DOCUMENT, error=AuditError)
        return _pick_ref(parse_json(data, f"{self.name}: index.json"), self.ref, self.name)

    @contextmanager
    def open_blob(self, digest: str, size: int | None) -> Iterator[Verified]:
        path = self.path / "blobs" / "sha256" / check_digest(digest).partition(":")[2]
        if not path.exists():
            raise AuditError(f"{self.name}: blob {digest} is missing from blobs/")
        with open_regular(path, error=AuditError, what=f"{self.name}: blob") as f:
            yield Verified(f, digest, f"{self.name}: blob {digest}", size)


def _pick_ref(index: dict[str, Any], ref: str | None, name: str) -> tuple[str, bytes, str | None]:
    """The index itself, narrowed to the entries named ``ref`` (org.opencontainers.image.ref.name)."""
    check(Index, index, label=f"{name}: index.json", error=AuditError)
    entries: list[dict[str, Any]] = index.get("manifests") or []
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
            raise AuditError(
                f"{name} has no image named {ref!r}", hint=f"it has {', '.join(have) or 'none named'}"
            )
        entries = named
    if not entries:
        raise AuditError(f"{name} holds no image")
    doc = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    return OCI_INDEX, json.dumps(doc).encode(), None


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
                for m in members(self.tar, EntryBudget(str(path), AuditError))
                if m.isfile()
            }
        except (tarfile.TarError, OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
            raise AuditError(f"{path} is not a readable tar archive ({exc})") from None
        self.docker: list[DockerEntry] | None = None
        self.synthetic: dict[str, bytes] = {}
        self.diff_layer: dict[str, str] = {}  # docker archives: digest -> member
        if "index.json" in self.members and "oci-layout" in self.members:
            return
        if "manifest.json" in self.members:
            self._docker_manifest()
            return
        raise AuditError(
            f"{path} is neither an OCI archive (oci-layout, index.json) nor a docker archive (manifest.json)"
        )

    def _member(self, name: str) -> bytes:
        m = self.members.get(os.path.normpath(name.lstrip("/")))
        if m is None:
            raise AuditError(f"{self.name}: {name} is missing from the archive")
        if m.size > MAX_DOCUMENT:
            raise AuditError(f"{self.name}: {name} is larger than {MAX_DOCUMENT} bytes")
        f = self.tar.extractfile(m)
        assert f is not None
        return f.read()

    def _docker_manifest(self) -> None:
        """docker save's manifest.json -> an OCI-shaped manifest whose layers are named
        by their diff_id (each is verified against it as it is read, decompressed)."""
        label = f"{self.name}: manifest.json"
        entries = check_list(
            DockerEntry,
            load_json(self._member("manifest.json"), label=label, error=AuditError, limit=MAX_DOCUMENT),
            label=label,
            error=AuditError,
        )
        if not entries:
            raise AuditError(f"{label} lists no image")
        if self.ref is not None:
            entries = [e for e in entries if self.ref in (e.RepoTags or [])]
            if not entries:
                raise AuditError(f"{self.name} has no image tagged {self.ref!r}")
        entry = entries[0]
        config_bytes = self._member(entry.Config)
        config = parse_json(config_bytes, f"{self.name}: the config")
        diff_ids = check(
            ImageConfig, config, label=f"{self.name}: the config", error=AuditError
        ).rootfs.diff_ids
        layer_names = entry.Layers
        if len(diff_ids) != len(layer_names):
            raise AuditError(f"{self.name}: the config's diff_ids do not match manifest.json's layers")
        cdigest = "sha256:" + hashlib.sha256(config_bytes).hexdigest()
        self.synthetic[cdigest] = config_bytes
        layers = []
        for diff_id, lname in zip(diff_ids, layer_names, strict=True):
            m = self.members.get(os.path.normpath(lname))
            if m is None:
                raise AuditError(f"{self.name}: layer {lname} is missing from the archive")
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
            "config": {"digest": cdigest, "size": len(config_bytes)},
            "layers": layers,
        }
        data = json.dumps(manifest).encode()
        self.docker = entries
        self.diff_ids = True
        self.synthetic["manifest"] = data

    def top(self) -> tuple[str, bytes, str | None]:
        if self.docker is not None:
            return DOCKER_MANIFEST, self.synthetic["manifest"], None
        index = parse_json(self._member("index.json"), f"{self.name}: index.json")
        return _pick_ref(index, self.ref, self.name)

    @contextmanager
    def open_blob(self, digest: str, size: int | None) -> Iterator[Verified]:
        if digest in self.synthetic:
            yield Verified(io.BytesIO(self.synthetic[digest]), digest, f"{self.name}: blob {digest}")
            return
        if digest in self.diff_layer:
            member = self.members[self.diff_layer[digest]]
            f = self.tar.extractfile(member)
            assert f is not None
            # docker archives name layers by their uncompressed digest (diff_id): the
            # scan verifies that after decompressing (Source.diff_ids).
            yield Verified(f, None, f"{self.name}: layer {digest}", member.size)
            return
        m = self.members.get(f"blobs/sha256/{check_digest(digest).partition(':')[2]}")
        if m is None:
            raise AuditError(f"{self.name}: blob {digest} is missing from the archive")
        f = self.tar.extractfile(m)
        assert f is not None
        yield Verified(f, digest, f"{self.name}: blob {digest}", size)

    def close(self) -> None:
        self.tar.close()


class SavedSource(ArchiveSource):
    """A local podman or docker image, saved to a temporary archive by its own CLI."""

    def __init__(self, engine: str, image: str, name: str) -> None:
        exe = shutil.which(engine)
        if exe is None:
            raise AuditError(f"{name}: {engine} is not installed")
        self.tmp = tempfile.mkdtemp(prefix="distill-audit-")
        out = Path(self.tmp) / "image.tar"
        cmd = [exe, "save", "-o", str(out), image]
        if engine == "podman":
            cmd[2:2] = ["--format", "oci-archive"]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        except subprocess.TimeoutExpired:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise AuditError(f"{name}: {engine} save did not finish in 30 minutes") from None
        if proc.returncode != 0:
            shutil.rmtree(self.tmp, ignore_errors=True)
            lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            raise AuditError(f"{name}: {engine} save failed: {lines[-1] if lines else proc.returncode}")
        try:
            super().__init__(out, None, name)
        except AuditError:
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


def open_source(target: str, *, auth: Any = None, plain_http: bool = False) -> Source:
    """The source a target names (see the module docstring for the forms)."""
    if target.startswith("docker://"):
        from distill.audit.registry import RegistrySource

        return RegistrySource.parse(target, auth=auth, plain_http=plain_http)
    for prefix, engine in (("podman:", "podman"), ("docker:", "docker")):
        if target.startswith(prefix):
            image = target[len(prefix) :]
            if not image:
                raise AuditError(f"{target}: name an image, e.g. {prefix}localhost/app:latest")
            return SavedSource(engine, image, target)
    body = target
    for prefix in ("oci:", "oci-archive:", "docker-archive:"):
        if body.startswith(prefix):
            body = body[len(prefix) :]
    path, ref = split_ref(body)
    if path.is_dir():
        return LayoutSource(path, ref or None, target)
    if path.is_file():
        return ArchiveSource(path, ref or None, target)
    raise AuditError(f"{target}: no such image layout, archive, Dockerfile or manifest")
