"""The fleet's images: each reference resolved to a digest through distill's image
sources (distill.oci), each digest audited once (distill.audit), in parallel, and the
audit kept in the cache by digest (``fleet/<sha256>.json``, sealed) so that a re-run
only resolves tags to digests.

Where a reference comes from a manifest it is a registry reference (``HOST/REPO:TAG``,
``@sha256:…``); a plain list may also name ``podman:NAME``, ``docker:NAME``, an OCI
layout (``oci:DIR[:REF]``) or an archive. A reference without a registry host
(``nginx:1.27``, ``team/app``) is what the container runtime completes with its default
registry: distill assumes none, and takes ``--default-registry HOST`` for it (Docker
Hub's one-name images under ``library/``, as its mirrors serve them).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from distill.archive.cache import Cache, CorruptEntryError, atomic_write, discard, read_sealed, seal
from distill.engine import executable, last_line, run
from distill.errors import DistillError, ImageError
from distill.limits import load_json
from distill.oci.ref import Reference, parse_reference
from distill.oci.registry import Registry, RegistrySettings, RegistrySource
from distill.oci.source import IMAGE_PREFIXES, check_digest, digest_of, engine_image, open_source

ENTRY_FORMAT = 1
MAX_ENTRY = 16 << 20  # one cached audit (its package list is the largest part)
DISTROLESS = "distroless-style"  # how the audit's verdict starts for an image without shell etc.


@dataclass(frozen=True)
class Resolved:
    """A reference as the fleet reads it: what distill opens, and the digest it names now."""

    text: str
    target: str
    digest: str
    reference: Reference | None = None  # a registry image


class _Finding(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    id: str
    severity: str
    title: str


class ImageEntry(BaseModel):
    """One image digest audited: what the fleet report needs of it (also the cache entry)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    format: int
    digest: str
    arch: str
    architecture: str | None
    grade: str
    score: int
    verdict: str
    os: str | None
    packages: int
    content_bytes: int
    uncompressed_bytes: int
    compressed_bytes: int
    shells: list[str]
    package_managers: list[str]
    setuid: list[str]
    user: str
    root: bool
    debug: bool
    findings: list[_Finding]
    flavor: str | None
    variant: str | None
    reason: str
    codename: str | None
    inventory: list[list[str]]  # the vulnerability scan's package rows (distill.vuln.model.Pkg)

    @property
    def distroless(self) -> bool:
        return self.verdict.startswith(DISTROLESS)


def locate(text: str, default_registry: str | None) -> tuple[str, Reference | None]:
    """(target, registry reference) for an image as a workload names it."""
    if text.startswith(IMAGE_PREFIXES) and not text.startswith("docker://"):
        return text, None
    if not text:
        raise ImageError("the container names no image")
    try:
        ref = parse_reference(text, what="an image reference")
    except ImageError:
        body = text.removeprefix("docker://")
        first, slash, _ = body.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            raise  # it names a host: the reference itself is wrong
        if default_registry is None:
            raise ImageError(
                f"{text[:120]!r} names no registry host (the container runtime's default)",
                hint="name the registry with --default-registry HOST[:PORT] (distill assumes none)",
            ) from None
        repo = body if slash else f"library/{body}"
        ref = parse_reference(f"{default_registry.rstrip('/')}/{repo}", what="an image reference")
    return f"docker://{ref}", ref


def _engine_id(engine: str, prefix: str, target: str) -> str:
    name = engine_image(target, prefix)
    exe = executable(engine, target)
    proc = run([exe, "image", "inspect", "--format", "{{.Id}}", name], target, timeout=120, check=False)
    if proc.returncode != 0:
        raise ImageError(f"{target}: {engine} has no such image ({last_line(proc.stderr, proc.returncode)})")
    ident = proc.stdout.strip().removeprefix("sha256:")
    return check_digest(f"sha256:{ident}")


class Images:
    """Resolves and audits the fleet's images; one :class:`Registry` client per host."""

    def __init__(
        self,
        settings: RegistrySettings,
        cache: Cache,
        arch: str,
        default_registry: str | None = None,
        jobs: int = 4,
    ) -> None:
        self.settings = settings
        self.cache = cache
        self.arch = arch
        self.default_registry = default_registry
        self.jobs = jobs
        self._registries: dict[str, Registry] = {}
        self._lock = threading.Lock()
        self.audited = 0  # digests read from their source in this run (not from the cache)
        self.notes: list[str] = []

    def close(self) -> None:
        for r in self._registries.values():
            r.close()

    def _registry(self, host: str) -> Registry:
        with self._lock:
            reg = self._registries.get(host)
            if reg is None:
                reg = self._registries[host] = Registry(host, self.settings)
            return reg

    # -- references -> digests ----------------------------------------------------

    def resolve(self, text: str) -> Resolved:
        target, ref = locate(text, self.default_registry)
        if ref is not None:
            if ref.digest:
                return Resolved(text, target, ref.digest, ref)  # pinned: nothing to ask
            found = self._registry(ref.registry).manifest_digest(ref.repository, ref.reference)
            if found is None:
                raise ImageError(f"{text[:200]}: not found in the registry (manifests {ref.reference})")
            return Resolved(text, target, found, ref)
        for prefix, engine in (("podman:", "podman"), ("docker:", "docker")):
            if target.startswith(prefix):
                return Resolved(text, target, _engine_id(engine, prefix, target))
        with open_source(target) as source:
            image = source.image(self.arch)
            return Resolved(text, target, image.digest or digest_of(image.manifest_bytes))

    def resolve_all(self, texts: list[str]) -> dict[str, Resolved | DistillError]:
        def one(text: str) -> Resolved | DistillError:
            try:
                return self.resolve(text)
            except DistillError as exc:
                return exc

        unique = sorted(set(texts))
        with ThreadPoolExecutor(max_workers=max(1, self.jobs)) as pool:
            return dict(zip(unique, pool.map(one, unique), strict=True))

    # -- digests -> audits ------------------------------------------------------------

    def key(self, digest: str) -> str:
        return hashlib.sha256(json.dumps([ENTRY_FORMAT, digest, self.arch]).encode()).hexdigest()

    def cached(self, digest: str) -> ImageEntry | None:
        path = self.cache.fleet_path(self.key(digest))
        try:
            payload = read_sealed(path, "fleet audit")
        except CorruptEntryError as exc:
            self.notes.append(exc.one_line())
            return None
        if payload is None:
            return None
        try:
            entry = ImageEntry.model_validate(load_json(payload, label=str(path), limit=MAX_ENTRY))
            if entry.format != ENTRY_FORMAT or entry.digest != digest or entry.arch != self.arch:
                raise ValueError("another image's entry")
        except (DistillError, ValidationError, ValueError):
            discard(path)
            self.notes.append(f"the cached fleet audit {path} did not hold what it should; it was removed")
            return None
        return entry

    def audit(self, r: Resolved) -> ImageEntry:
        """The audit of ``r``'s digest: from the cache, else read once from its source."""
        got = self.cached(r.digest)
        if got is not None:
            return got
        from distill.audit import audit_source
        from distill.vuln.inventory import codename_of_release, packages_of, wanted

        if r.reference is not None:
            source: Any = RegistrySource(
                r.reference.with_digest(r.digest), r.text, registry=self._registry(r.reference.registry)
            )
        else:
            source = open_source(r.target)
        try:
            report, scan = audit_source(source, self.arch, keep=wanted)
        finally:
            source.close()
        with self._lock:
            self.audited += 1
        pkgs, release = packages_of(scan.table)
        fx, rec = report.facts, report.recommendation or {}
        entry = ImageEntry(
            format=ENTRY_FORMAT,
            digest=r.digest,
            arch=self.arch,
            architecture=fx.get("architecture"),
            grade=report.grade,
            score=report.score,
            verdict=str(fx["verdict"]),
            os=fx.get("os"),
            packages=int(fx["packages"]),
            content_bytes=int(fx["content_bytes"]),
            uncompressed_bytes=int(fx["uncompressed_bytes"]),
            compressed_bytes=int(fx["compressed_bytes"]),
            shells=list(fx["shells"]),
            package_managers=list(fx["package_managers"]),
            setuid=list(fx["setuid"]),
            user=str(fx["user"]),
            root=any(f.id == "IMG-ROOT" for f in report.findings),
            debug=bool(fx["debug"]),
            findings=[_Finding(id=f.id, severity=f.severity, title=f.title) for f in report.findings],
            flavor=rec.get("flavor"),
            variant=rec.get("variant"),
            reason=str(rec.get("reason") or ""),
            codename=codename_of_release(release),
            inventory=[
                [p.ecosystem, p.name, p.version, p.source, p.source_version, p.arch, p.location] for p in pkgs
            ],
        )
        atomic_write(self.cache.fleet_path(self.key(r.digest)), seal(entry.model_dump_json().encode()))
        return entry

    def audit_all(
        self, resolved: list[Resolved], progress: Callable[[Resolved], None] | None = None
    ) -> dict[str, ImageEntry | DistillError]:
        """digest -> its audit (or the error reading it), each digest once."""
        by_digest = {r.digest: r for r in sorted(resolved, key=lambda r: r.text)}

        def one(r: Resolved) -> ImageEntry | DistillError:
            try:
                return self.audit(r)
            except DistillError as exc:
                return exc
            finally:
                if progress is not None:
                    progress(r)

        with ThreadPoolExecutor(max_workers=max(1, self.jobs)) as pool:
            return dict(zip(by_digest, pool.map(one, by_digest.values()), strict=True))
