"""SBOMs: SPDX 2.3 and CycloneDX 1.6 JSON for any image, exact for distill's own.

The public surface (what ``distill sbom``, ``distill build`` and signing use)::

    from distill.sbom import documents, for_build, write_documents

    for doc in documents(source, lock=lock, name="python3"):   # any image source (or target string)
        doc.arch, doc.platform, doc.manifest_digest, doc.spdx, doc.cyclonedx
    docs = for_build(result, lock, "python3", cache_dir=..., source_date_epoch=...)  # a BuildResult

:func:`documents` reads every platform of the image a :class:`~distill.oci.source.Source`
holds (an index gives one document pair per platform), streaming its layers once per
platform (:mod:`distill.sbom.catalog`), and, with the lock of a distill build, adds each
``.deb``'s SHA256, archive path and URL. The bytes are deterministic: the time is
``source_date_epoch`` or the image config's ``created``, identifiers derive from names
and digests, the document's namespace/serial number from its content.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill.errors import ImageError, OutputError
from distill.oci.image import PLATFORMS
from distill.oci.source import INDEXES, MANIFESTS, Document, Source, check_digest, parse_json
from distill.resolve.lock import Lock
from distill.sbom import cyclonedx, spdx
from distill.sbom.catalog import Catalog, ImageInfo, created_of, from_image, with_lock

FORMATS = ("spdx", "cyclonedx")
SUFFIXES = {"spdx": ".spdx.json", "cyclonedx": ".cdx.json"}


@dataclass(frozen=True)
class PlatformSBOM:
    """The SBOMs of one platform's image."""

    arch: str  # Debian architecture name where one fits (amd64, arm64, armhf, ...), else OCI's
    platform: dict[str, str]  # OCI platform: os, architecture[, variant]
    manifest_digest: str  # what the documents describe (the subject of an attestation)
    spdx: bytes
    cyclonedx: bytes
    counts: dict[str, int]  # components by kind (deb, python, npm, ...)
    catalog: Catalog | None = None  # what the documents were written from (None: from the cache)

    def data(self, fmt: str) -> bytes:
        return self.spdx if fmt == "spdx" else self.cyclonedx


def debian_arch(architecture: str, variant: str | None) -> str:
    """The Debian name of an OCI platform (amd64, arm64, armhf ...), else the OCI name."""
    for deb, (oci, var) in PLATFORMS.items():
        if oci == architecture and (var is None or variant in (None, var)):
            return deb
    return architecture + (f"-{variant}" if variant else "")


def platforms(source: Source, top: Document | None = None) -> list[tuple[str, Document | None, str | None]]:
    """(Debian arch name, the document to start from, the index digest) of every linux
    platform the source's image has; a single manifest gives one entry with no arch."""
    doc = top or source.top()
    out: list[tuple[str, Document | None, str | None]] = []
    stack: list[tuple[Document, int]] = [(doc, 0)]
    while stack:
        d, depth = stack.pop()
        parsed = parse_json(d.data, f"{source.name}: the index")
        if d.media_type not in INDEXES and parsed.get("manifests") is None:
            out.append(("", d, None))
            continue
        if depth > 3:
            raise ImageError(f"{source.name}: indexes nested too deep")
        entries = parsed.get("manifests")
        if not isinstance(entries, list):
            raise ImageError(f"{source.name}: the index has no manifests list")
        for m in entries:
            if not isinstance(m, dict):
                continue
            media = str(m.get("mediaType") or "")
            plat = m.get("platform") if isinstance(m.get("platform"), dict) else None
            if plat is not None and (plat.get("os") or "linux") != "linux":
                continue
            if media in INDEXES or (plat is None and media not in MANIFESTS):
                data = source.read_manifest(check_digest(m.get("digest")), m.get("size"))
                stack.append((Document(media or INDEXES[0], data, m["digest"]), depth + 1))
                continue
            if media in MANIFESTS and plat is not None:
                arch = debian_arch(str(plat.get("architecture")), plat.get("variant"))
                out.append((arch, d, d.digest))
            elif media in MANIFESTS:
                data = source.read_manifest(check_digest(m.get("digest")), m.get("size"))
                out.append(("", Document(media, data, m["digest"]), None))
    if not out:
        raise ImageError(f"{source.name}: the index lists no linux image")
    seen: set[str] = set()
    unique = []
    for item in out:
        if item[0] and item[0] in seen:
            continue
        seen.add(item[0])
        unique.append(item)
    return unique


def image_name(target: str) -> tuple[str, str | None, str | None]:
    """(short name, repository URL, tag) of an image source's target, for the purl."""
    from distill.oci.ref import parse_reference

    if target.startswith("docker://"):
        try:
            ref = parse_reference(target[len("docker://") :])
        except Exception:  # a malformed reference was refused when the source was opened
            return "image", None, None
        repo = f"{ref.registry}/{ref.repository}"
        return ref.repository.rsplit("/", 1)[-1], repo, ref.tag
    for prefix in ("podman:", "docker:"):
        if target.startswith(prefix):
            name = target[len(prefix) :].split("@", 1)[0]
            last = name.rsplit("/", 1)[-1]
            base, _, tag = last.partition(":")
            return base or "image", None, tag or None
    body = re.sub(r"^(oci|oci-archive|docker-archive):", "", target)
    base = Path(body.split(":", 1)[0] if not Path(body).exists() else body).name
    base = re.sub(r"\.(oci|tar|tar\.gz|tgz)$", "", base)
    return base or "image", None, None


def documents(
    source: Source | str,
    *,
    lock: Lock | None = None,
    name: str | None = None,
    repository_url: str | None = None,
    tag: str | None = None,
    source_date_epoch: int | None = None,
    archs: list[str] | None = None,
    top: Document | None = None,
    settings: Any = None,
) -> list[PlatformSBOM]:
    """The SPDX and CycloneDX documents of every platform of an image.

    ``source``: an open :class:`~distill.oci.source.Source` (left open), or a target
    string as ``distill sbom`` takes it (``DIR``, ``ARCHIVE.tar``, ``podman:NAME``,
    ``docker://HOST/REPO:TAG``; opened and closed here, with registry ``settings``).
    ``lock``: the lock of a distill build (adds the .debs' SHA256, path and URL).
    ``name``/``repository_url``/``tag``: how the image is named in its purl (default:
    from the target). ``archs``: only these platforms (Debian or OCI names).
    ``source_date_epoch``: the documents' time (default: each config's ``created``).
    """
    if isinstance(source, str):
        from distill.oci.source import open_source

        with open_source(source, settings=settings) as opened:
            guess = image_name(source)
            return documents(
                opened,
                lock=lock,
                name=name or guess[0],
                repository_url=repository_url or guess[1],
                tag=tag or guess[2],
                source_date_epoch=source_date_epoch,
                archs=archs,
                top=top,
            )
    out = []
    wanted = None if not archs else {a for a in archs}
    for arch, start, index_digest in platforms(source, top):
        if (
            wanted is not None
            and arch
            and arch not in wanted
            and PLATFORMS.get(arch, (arch,))[0] not in wanted
        ):
            continue
        image = source.image(arch or None, start)
        got_arch = str(image.config.get("architecture") or "")
        variant = image.config.get("variant")
        deb_arch = arch or debian_arch(got_arch, variant if isinstance(variant, str) else None)
        if wanted is not None and not arch and deb_arch not in wanted and got_arch not in wanted:
            continue
        if image.digest is None:
            from distill.oci.source import digest_of

            digest = digest_of(image.manifest_bytes)
        else:
            digest = image.digest
        info = ImageInfo(
            name or image_name(source.name)[0],
            digest,
            got_arch,
            variant if isinstance(variant, str) else None,
            source_date_epoch if source_date_epoch is not None else created_of(image.config),
            image.config_digest,
            repository_url,
            tag,
            index_digest,
        )
        cat = from_image(source, image, info)
        if lock is not None:
            cat = with_lock(cat, lock, deb_arch)
        plat = {
            "os": "linux",
            "architecture": got_arch,
            **({"variant": variant} if isinstance(variant, str) else {}),
        }
        counts: dict[str, int] = {}
        for c in cat.components:
            counts[c.kind] = counts.get(c.kind, 0) + 1
        out.append(
            PlatformSBOM(deb_arch, plat, digest, spdx.document(cat), cyclonedx.document(cat), counts, cat)
        )
    if not out:
        raise ImageError(f"{source.name} has no image for {', '.join(archs or [])}")
    return out


def for_build(
    result: Any,
    lock: Lock | None,
    name: str,
    *,
    cache_dir: Path | None = None,
    source_date_epoch: int | None = None,
) -> list[PlatformSBOM]:
    """The documents of a :class:`distill.build.BuildResult`'s image, read back from the
    cache's blob store (where every build leaves its image), kept in the cache (see
    :func:`cached_documents`). ``lock``: the build's lock; ``name``: the image's name
    (the spec's, or the tag's repository)."""
    from distill.archive.cache import Cache
    from distill.oci.image import BlobStore
    from distill.oci.source import StoreSource

    root = Cache(cache_dir).root
    source = StoreSource(BlobStore(root), result.digest, name)
    return cached_documents(
        root,
        result.digest,
        lock,
        name,
        source_date_epoch,
        lambda: documents(source, lock=lock, name=name, source_date_epoch=source_date_epoch),
    )


def sbom_base(output: Path) -> Path:
    """Where a build's SBOMs go: beside the output, named by its stem (py.oci -> py)."""
    name = output.name
    for suffix in (".oci", ".tar"):
        if name.endswith(suffix) and len(name) > len(suffix):
            name = name[: -len(suffix)]
            break
    return output.parent / name


def beside(output: Path) -> tuple[Path, ...]:
    """Every SBOM file a build may write beside ``output`` (each platform's too): what
    an application's code must never take in when the output is inside its source."""
    from distill.distros import ARCHS

    base = sbom_base(output)
    return tuple(sbom_paths(base, arch, fmt) for arch in (None, *ARCHS) for fmt in FORMATS)


def sbom_paths(base: Path, arch: str | None, fmt: str) -> Path:
    """``BASE.spdx.json`` / ``BASE.cdx.json``, or ``BASE-ARCH.…`` for one platform of several."""
    return base.parent / f"{base.name}{'-' + arch if arch else ''}{SUFFIXES[fmt]}"


def write_documents(sboms: list[PlatformSBOM], base: Path, formats: tuple[str, ...] = FORMATS) -> list[Path]:
    """Write each platform's documents as ``BASE[-ARCH].spdx.json`` and ``….cdx.json``
    (the arch only when there are several platforms); atomically. The paths written."""
    from distill.archive.cache import atomic_write

    written = []
    for s in sboms:
        for fmt in formats:
            path = sbom_paths(base, s.arch if len(sboms) > 1 else None, fmt)
            if path.is_dir() or (path.is_symlink() and not path.is_file()):
                raise OutputError(f"{path} is not a file distill can replace")
            try:
                atomic_write(path, s.data(fmt))
            except OSError as exc:
                raise OutputError(f"cannot write {path}: {exc.strerror}") from None
            written.append(path)
    return written


CACHE_FORMAT = "distill-sbom-1"


def cached_documents(
    cache_root: Path, digest: str, lock: Lock | None, name: str, source_date_epoch: int | None, make: Any
) -> list[PlatformSBOM]:
    """The documents of a distill build's image, from the cache when it holds them for
    exactly this image, lock, name and time (a no-op rebuild reads them back instead of
    streaming the image again), else ``make()``'s, kept for next time.

    The record (``sbom/<key>.json``) is sealed and names a blob of the store holding the
    documents; both are checked when read (``distill cache verify`` checks them too)."""
    import hashlib

    from distill import __version__
    from distill.archive.cache import CorruptEntryError, atomic_write, read_sealed, seal
    from distill.limits import load_json
    from distill.oci.image import BlobStore

    h = hashlib.sha256(f"{CACHE_FORMAT}\0{__version__}\0{digest}\0{name}\0{source_date_epoch}\0".encode())
    h.update(lock.to_json().encode() if lock is not None else b"")
    record = cache_root / "sbom" / f"{h.hexdigest()}.json"
    store = BlobStore(cache_root)
    try:
        payload = read_sealed(record, "SBOM record")
        if payload is not None:
            blob = load_json(payload, label=str(record), error=CorruptEntryError).get("digest")
            return [
                PlatformSBOM(
                    d["arch"],
                    d["platform"],
                    d["manifest_digest"],
                    d["spdx"].encode(),
                    d["cyclonedx"].encode(),
                    d["counts"],
                )
                for d in store.read_json(str(blob))["documents"]
            ]
    except (CorruptEntryError, ImageError, KeyError, TypeError, AttributeError, ValueError, OSError):
        pass  # made again below (a damaged blob was removed by read_json)
    sboms: list[PlatformSBOM] = make()
    bundle = {
        "documents": [
            {
                "arch": s.arch,
                "platform": s.platform,
                "manifest_digest": s.manifest_digest,
                "spdx": s.spdx.decode(),
                "cyclonedx": s.cyclonedx.decode(),
                "counts": s.counts,
            }
            for s in sboms
        ]
    }
    desc = store.put(json.dumps(bundle, sort_keys=True).encode(), "application/vnd.distill.sbom.bundle+json")
    atomic_write(record, seal(json.dumps({"digest": desc.digest}).encode()))
    return sboms


__all__ = [
    "FORMATS",
    "PlatformSBOM",
    "beside",
    "cached_documents",
    "documents",
    "for_build",
    "image_name",
    "platforms",
    "sbom_base",
    "sbom_paths",
    "write_documents",
]
