"""The registry as a sink: push an image (or a multi-arch index) from any source.

Blobs first, in parallel: each is looked up (HEAD) and skipped when the repository
has it, mounted from another repository of the same registry when one is known to
hold it, else uploaded — in one PUT, or in chunks (PATCH with Content-Range) when it
is larger than the chunk size or the registry refuses it whole; a chunked upload cut
by a dropped connection or a 5xx resumes where the registry's session says it
stands. Then the manifests by digest, children before the index, and only then the
tags: a tag only ever points at an image whose every blob and child is in place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from distill.errors import ImageError, RegistryError
from distill.oci.ref import Reference
from distill.oci.registry import BACKOFF, PushStats, Registry, RegistrySettings
from distill.oci.schema import Index, Manifest, check
from distill.oci.source import INDEXES, MANIFESTS, MAX_NESTING, Document, Source, parse_json

BASE_NAME = "org.opencontainers.image.base.name"  # where an image's base came from (mount hint)
MAX_RESUMES = 8  # times one chunked upload may resume after a failure
MAX_MANIFESTS = 1024  # manifests and indexes one push writes (a multi-arch image has a few)


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    media_type: str


@dataclass
class Plan:
    """What a push writes: blobs, then manifests (children first), then tags."""

    blobs: dict[str, Blob] = field(default_factory=dict)
    manifests: list[Document] = field(default_factory=list)  # children first, the top last
    mount_from: dict[str, list[str]] = field(default_factory=dict)  # digest -> repositories


def plan(source: Source, top: Document) -> Plan:
    """Every blob and manifest ``top`` reaches in ``source`` (each once): indexes nested
    at most as deep as an image is read (MAX_NESTING), at most MAX_MANIFESTS documents."""
    out = Plan()
    seen: set[str] = set()

    def visit(doc: Document, depth: int = 1) -> None:
        assert doc.digest is not None
        if doc.digest in seen:
            return
        seen.add(doc.digest)
        what = f"{source.name}: {doc.digest}"
        if len(seen) > MAX_MANIFESTS:
            raise ImageError(f"{source.name}: the image has more than {MAX_MANIFESTS} manifests and indexes")
        parsed = parse_json(doc.data, what)
        if doc.media_type in INDEXES or "manifests" in parsed:
            index = check(Index, parsed, label=what, error=ImageError)
            if index.manifests and depth >= MAX_NESTING:
                raise ImageError(f"{what}: indexes nested deeper than {MAX_NESTING - 1} levels")
            for m in index.manifests:
                if m.mediaType not in (*INDEXES, *MANIFESTS):
                    raise ImageError(f"{what}: index entry {m.digest} has an unsupported media type")
                if m.digest not in seen:
                    child = source.read_manifest(m.digest, m.size)
                    visit(Document(m.mediaType, child, m.digest), depth + 1)
        elif doc.media_type in MANIFESTS or "layers" in parsed:
            manifest = check(Manifest, parsed, label=what, error=ImageError)
            base = (manifest.model_extra or {}).get("annotations") or {}
            for d in [manifest.config, *manifest.layers]:
                if d.size is None:
                    raise ImageError(f"{what}: a descriptor of {d.digest} has no size")
                out.blobs.setdefault(d.digest, Blob(d.digest, d.size, d.mediaType))
                if isinstance(base, dict) and isinstance(base.get(BASE_NAME), str):
                    out.mount_from.setdefault(d.digest, []).append(base[BASE_NAME])
        else:
            raise ImageError(f"{what}: unsupported media type {doc.media_type[:80]!r}")
        out.manifests.append(doc)

    visit(top)
    return out


class Pusher:
    """Pushes to one registry; remembers which repository holds which blob, so the
    images of one run (a family) mount each other's layers instead of uploading them."""

    def __init__(
        self,
        registry: Registry,
        jobs: int = 4,
        progress: Callable[[str, int], None] | None = None,
    ) -> None:
        self.registry = registry
        self.jobs = max(1, jobs)
        self.progress = progress or (lambda what, n: None)
        self.known: dict[str, str] = {}  # digest -> a repository of this registry that has it
        self._lock = threading.Lock()

    @classmethod
    @contextmanager
    def to(cls, host: str, settings: RegistrySettings | None, jobs: int = 4, **kw: Any) -> Iterator[Pusher]:
        registry = Registry(host, settings)
        try:
            yield cls(registry, jobs, **kw)
        finally:
            registry.close()

    def push(
        self,
        source: Source,
        top: Document,
        refs: list[Reference],
        stats: PushStats | None = None,
        mount_from: Mapping[str, list[str]] | None = None,
    ) -> PushStats:
        """Push ``top`` (from ``source``) to the repository of ``refs`` under each of their
        tags; returns what was done. All refs name one repository of this registry.
        ``mount_from``: digest -> other repositories (HOST/REPO) of this registry that
        may hold that blob, tried after the one this Pusher knows (e.g. the repository
        of the flavor a layer comes from, pushed by another process)."""
        stats = stats or PushStats()
        if not refs:
            raise ImageError("nothing to push to")
        repo = refs[0].repository
        for ref in refs:
            if ref.registry != self.registry.host or ref.repository != repo:
                raise ImageError(f"{ref}: one push goes to one repository ({refs[0].name})")
        work = plan(source, top)
        blobs = sorted(work.blobs.values(), key=lambda b: -b.size)  # the large ones start first
        for digest, repos in (mount_from or {}).items():
            work.mount_from.setdefault(digest, []).extend(repos)
        # Set when this push has failed or is interrupted: its uploads under way stop at
        # their next chunk. One per push: a Pusher pushes again after a failed push.
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=min(self.jobs, max(1, len(blobs)))) as pool:
            futures = [
                pool.submit(self._blob, source, repo, b, work.mount_from.get(b.digest, []), stats, stop)
                for b in blobs
            ]
            try:
                done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                for f in done:
                    f.result()  # the first failure, as soon as there is one
            except BaseException:  # a failure, SIGTERM (SystemExit), Ctrl-C
                stop.set()
                for f in futures:
                    f.cancel()
                raise
        for doc in work.manifests:
            assert doc.digest is not None
            if self.registry.manifest_digest(repo, doc.digest) == doc.digest:
                stats.add("manifests_existing")
                continue
            self.registry.put_manifest(repo, doc.digest, doc.media_type, doc.data)
            stats.add("manifests")
        for ref in refs:
            tag = ref.tag
            if tag is None:
                continue
            if self.registry.manifest_digest(repo, tag) != top.digest:
                self.registry.put_manifest(repo, tag, top.media_type, top.data)
            stats.tags.append(tag)
        return stats

    def _blob(
        self, source: Source, repo: str, blob: Blob, hints: list[str], stats: PushStats, stop: threading.Event
    ) -> None:
        if self.registry.has_blob(repo, blob.digest):
            self._remember(blob.digest, repo)
            stats.add("existing")
            self.progress("existing", blob.size)
            return
        location: str | None = ""
        for other in self._candidates(blob.digest, hints, repo):
            location = self.registry.mount(repo, blob.digest, other)
            if location is None:
                self._remember(blob.digest, repo)
                stats.add("mounted")
                self.progress("mounted", blob.size)
                return
            if location:
                break  # the registry opened an upload session instead: use it
        minimum = 0
        if not location:
            location, minimum = self.registry.start_upload(repo)
        chunk = max(self.registry.settings.chunk_size, minimum)
        if blob.size <= chunk:
            try:
                self._monolithic(source, repo, location, blob, stop)
            except _TooLarge:
                location, _ = self.registry.start_upload(repo)
                self._chunked(source, repo, location, blob, chunk, stop)
        else:
            self._chunked(source, repo, location, blob, chunk, stop)
        self._remember(blob.digest, repo)
        stats.add("uploaded", blob.size)
        self.progress("uploaded", blob.size)

    def _candidates(self, digest: str, hints: list[str], repo: str) -> list[str]:
        with self._lock:
            known = self.known.get(digest)
        out = [known] if known and known != repo else []
        for hint in hints:  # an image's base, when it is on this registry
            name = hint.removeprefix("docker://").split("@")[0]
            host, _, rest = name.partition("/")
            other = rest.rsplit(":", 1)[0] if ":" in rest.rsplit("/", 1)[-1] else rest
            if host == self.registry.host and other and other != repo and other not in out:
                out.append(other)
        return out

    @staticmethod
    def _check_stop(stop: threading.Event) -> None:
        if stop.is_set():
            raise _Stopped

    def _remember(self, digest: str, repo: str) -> None:
        with self._lock:
            self.known.setdefault(digest, repo)

    def _monolithic(
        self, source: Source, repo: str, location: str, blob: Blob, stop: threading.Event
    ) -> None:
        def body() -> Iterator[bytes]:
            with source.open_blob(blob.digest, blob.size) as f:
                while chunk := f.read(1 << 20):
                    self._check_stop(stop)
                    yield chunk
                f.finish()

        try:
            self.registry.put_blob(repo, location, blob.digest, blob.size, body)
        except RegistryError as exc:
            if exc.status == 413:
                raise _TooLarge from None
            # A dropped connection or a 5xx: one more try, in a new session (a whole
            # upload has nothing to resume from).
            if not exc.transient:
                raise
            time.sleep(BACKOFF)
            location, _ = self.registry.start_upload(repo)
            self.registry.put_blob(repo, location, blob.digest, blob.size, body)

    def _chunked(
        self, source: Source, repo: str, location: str, blob: Blob, chunk: int, stop: threading.Event
    ) -> None:
        offset = 0
        resumes = 0
        while True:
            try:
                with source.open_blob(blob.digest, blob.size) as f:
                    skipped = 0
                    while skipped < offset:  # the bytes the session already holds
                        got = f.read(min(1 << 20, offset - skipped))
                        if not got:
                            raise ImageError(f"{source.name}: blob {blob.digest} is shorter than the upload")
                        skipped += len(got)
                    while offset < blob.size:
                        self._check_stop(stop)
                        data = _read_exactly(f, min(chunk, blob.size - offset))
                        location = self.registry.patch_chunk(repo, location, offset, data)
                        offset += len(data)
                    f.finish()
                self.registry.finish_upload(repo, location, blob.digest)
                return
            except RegistryError as exc:
                if not exc.transient or resumes >= MAX_RESUMES:
                    raise
                time.sleep(BACKOFF * 2 ** min(resumes, 4))
                resumes += 1
                held = self.registry.upload_offset(repo, location)
                if held is None:  # the session is gone: start again
                    location, _ = self.registry.start_upload(repo)
                    offset = 0
                else:
                    offset = held


class _Stopped(Exception):
    """The push stops (another blob failed, or distill was interrupted): this upload too."""


class _TooLarge(Exception):
    """The registry refused a whole blob in one request (413): send it in chunks."""


def _read_exactly(f: Any, n: int) -> bytes:
    parts = []
    while n > 0:
        got = f.read(min(n, 1 << 20))
        if not got:
            break
        parts.append(got)
        n -= len(got)
    return b"".join(parts)
