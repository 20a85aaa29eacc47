"""Publishing an image family: every flavor × variant × architecture built in one
process and pushed to one registry namespace, tagged as the distroless images are.

For each spec (by default the built-in family, :data:`FAMILY`) and each distro:

- **one lock**: the lockfile when one is present and current for that distro (beside
  the spec as ``distill build`` reads it, or ``NAME-DISTRO.lock.json`` in a lock
  directory), else one resolution per architecture; specs with the same sources share
  one archive client, so the family's indexes are verified and loaded once;
- **the variants built from it** (:func:`distill.build.build_variants`: packages
  unpacked once, layers assembled once per platform for latest/nonroot and once for
  the debug pair), into the cache's blob store and layer cache, nothing else written;
- **one multi-arch index per variant**, pushed to ``NAMESPACE/NAME-DISTRO:VARIANT``
  and, for the first (default) distro, to the version-less alias ``NAMESPACE/NAME:VARIANT``.

One :class:`~distill.oci.push.Pusher` serves the whole run and pushes the flavors in
order, so a blob shared across the family is uploaded once and mounted into every
other repository that needs it (cc's layers into python3's repository). An index whose
tag already names its digest is only checked (one HEAD): a tag names a manifest the
registry accepted, which it accepts only once every blob and child is there, so a
re-run with nothing changed uploads nothing. Builds run ahead of the pushes: a flavor
builds while the one before it is pushed.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.archive.repo import Archive
from distill.build import VARIANTS, BuildResult, build_variants, check_variant
from distill.builtins import is_builtin
from distill.distros import get_distro
from distill.errors import ImageError, LockError, SpecError
from distill.family import FAMILY
from distill.oci.push import Pusher
from distill.oci.ref import Reference, parse_reference
from distill.oci.registry import PushStats, RegistrySettings
from distill.options import Options
from distill.resolve.lock import Lock, LockedPackage, check_current, default_lock_path, read_lock, write_lock
from distill.spec.load import load_spec, spec_checksum, with_overrides
from distill.spec.model import Spec


@dataclass(frozen=True)
class Namespace:
    """``HOST[:PORT][/PATH]``: where the family's repositories go."""

    registry: str
    path: str = ""

    def ref(self, repository: str, tag: str) -> Reference:
        return Reference(self.registry, f"{self.path}/{repository}" if self.path else repository, tag)

    def __str__(self) -> str:
        return f"{self.registry}/{self.path}" if self.path else self.registry


def parse_namespace(text: str) -> Namespace:
    """``--registry``: a registry host (always named) and an optional repository path."""
    body = text.removeprefix("docker://").rstrip("/")
    host, _, path = body.partition("/")
    probe = f"{path}/probe" if path else "probe"
    try:
        ref = parse_reference(f"{body}/probe")
    except ImageError:
        ref = None
    if ref is None or (ref.registry, ref.repository, ref.tag, ref.digest) != (host, probe, "latest", None):
        raise SpecError(
            f"--registry {text[:120]!r} is not REGISTRY[:PORT][/NAMESPACE]",
            hint="e.g. 127.0.0.1:5000/distroless: the registry host first, then lowercase path "
            "components; no tag or digest (the tags are the variants)",
        )
    return Namespace(host, path)


@dataclass(frozen=True)
class Flavor:
    """One spec for one distro: the repository ``NAME-DISTRO`` (and ``NAME``, the alias)."""

    name: str
    distro: str
    spec: Spec
    path: Path
    lock_file: Path
    alias: bool  # also push to the version-less repository NAME
    write_lock: bool = False  # a lock made afresh is written to lock_file

    @property
    def repository(self) -> str:
        return f"{self.name}-{self.distro}"

    def repositories(self) -> list[str]:
        return [self.repository, *([self.name] if self.alias else [])]


def plan(
    specs: list[str] | None = None,
    distros: list[str] | None = None,
    archs: list[str] | None = None,
    *,
    alias: bool = True,
    lock_dir: Path | None = None,
) -> list[Flavor]:
    """What a publish builds: each spec (default :data:`FAMILY`) for each distro (default:
    the spec's own), in order. The first distro gets the version-less alias; a lock is
    looked for in ``lock_dir`` (``NAME-DISTRO.lock.json``, written there when made
    afresh) or else where ``distill build`` looks for it."""
    out: list[Flavor] = []
    seen: dict[str, str] = {}
    for text in specs or list(FAMILY):
        loaded, path = load_spec(text)
        if loaded.app is not None or loaded.base_image is not None:
            raise SpecError(
                f"{text}: publish builds image flavors; this spec is an application",
                hint="push an application with 'distill build SPEC --push REF'",
            )
        name = loaded.levels[-1][0]
        for n, distro in enumerate(dict.fromkeys(distros or [loaded.distro])):
            get_distro(distro)
            update: dict[str, Any] = {"distro": distro}
            if archs:
                update["archs"] = list(dict.fromkeys(archs))
            spec = with_overrides(loaded, **update)
            flavor = Flavor(
                name,
                distro,
                spec,
                path,
                lock_dir / f"{name.replace('/', '_')}-{distro}.lock.json"
                if lock_dir is not None
                else default_lock_path(path, is_builtin(path)),
                alias=alias and n == 0,
                write_lock=lock_dir is not None,
            )
            if flavor.repository in seen:
                raise SpecError(
                    f"{text} and {seen[flavor.repository]} are both named {name!r} (for {distro})",
                    hint="one repository per flavor and distro: give one of them another name",
                )
            seen[flavor.repository] = text
            out.append(flavor)
    return out


@dataclass
class Published:
    """One variant of one flavor: its index, where it went, and what pushing it took."""

    flavor: str
    distro: str
    variant: str
    digest: str
    refs: list[Reference]
    platforms: dict[str, str]  # arch -> manifest digest
    compressed_bytes: int  # layers and configs of every platform
    layers_written: int
    layers_reused: int
    push: PushStats = field(default_factory=PushStats)
    checked: int = 0  # repositories whose tag already named this index (only checked)

    @property
    def up_to_date(self) -> bool:
        return self.checked == len(self.refs)

    def to_json(self) -> dict[str, Any]:
        return {
            "refs": [str(r) for r in self.refs],
            "digest": self.digest,
            "flavor": self.flavor,
            "distro": self.distro,
            "variant": self.variant,
            "platforms": self.platforms,
            "compressed_bytes": self.compressed_bytes,
            "layers": {"written": self.layers_written, "reused": self.layers_reused},
            "push": {
                "up_to_date": self.up_to_date,
                "uploaded": self.push.uploaded,
                "uploaded_bytes": self.push.uploaded_bytes,
                "mounted": self.push.mounted,
                "existing": self.push.existing,
                "manifests": self.push.manifests,
                "manifests_existing": self.push.manifests_existing,
            },
        }


@dataclass
class Summary:
    namespace: Namespace
    images: list[Published] = field(default_factory=list)
    seconds: float = 0.0
    resolved: list[str] = field(default_factory=list)  # repositories whose lock was made afresh

    def refs(self) -> dict[str, str]:
        """Every reference pushed -> the digest it names."""
        return {str(r): p.digest for p in self.images for r in p.refs}

    def total(self, kind: str) -> int:
        return sum(int(getattr(p.push, kind)) for p in self.images)

    def to_json(self) -> dict[str, Any]:
        return {
            "registry": str(self.namespace),
            "images": self.refs(),
            "details": [p.to_json() for p in self.images],
            "totals": {
                "indexes": len(self.images),
                "images": sum(len(p.platforms) for p in self.images),
                "up_to_date": sum(p.up_to_date for p in self.images),
                "uploaded": self.total("uploaded"),
                "uploaded_bytes": self.total("uploaded_bytes"),
                "mounted": self.total("mounted"),
                "existing": self.total("existing"),
                "manifests": self.total("manifests"),
                "resolved": self.resolved,
                "seconds": round(self.seconds, 3),
            },
        }


class _Archives:
    """One archive client per set of sources, opened when first needed."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.open: dict[tuple[Any, ...], Archive] = {}
        self._lock = threading.Lock()

    def get(self, spec: Spec) -> Archive:
        from distill.pipeline import open_archive, spec_sources

        key = tuple(spec_sources(spec, self.options))
        with self._lock:
            if key not in self.open:
                self.open[key] = open_archive(spec, self.options)
            return self.open[key]

    def close(self) -> None:
        for archive in self.open.values():
            archive.close()


def publish(
    flavors: list[Flavor],
    namespace: Namespace,
    options: Options,
    settings: RegistrySettings | None = None,
    *,
    variants: list[str] | None = None,
    locked: bool = False,
) -> Summary:
    """Build every flavor's variants and push them to ``namespace`` (see the module's
    docstring); returns what was pushed. ``locked``: every flavor must have a current
    lock (nothing is resolved). Raises a :class:`DistillError` on the first failure;
    what was pushed before it stays, and no tag names an incomplete image."""
    variants = list(dict.fromkeys(variants or VARIANTS))
    for v in variants:
        check_variant(v)
    for flavor in flavors:  # every reference is valid before anything is built
        for repository in flavor.repositories():
            ref = namespace.ref(repository, "latest")
            parse_reference(str(ref), what=f"a repository for {flavor.name} ({repository})")
    run = _Run(namespace, options, settings, variants, locked)
    return run.run(flavors)


class _Run:
    def __init__(
        self,
        namespace: Namespace,
        options: Options,
        settings: RegistrySettings | None,
        variants: list[str],
        locked: bool,
    ) -> None:
        self.namespace = namespace
        self.options = options
        self.settings = settings
        self.variants = variants
        self.locked = locked
        self.reporter = options.reporter
        self.archives = _Archives(options)
        self.summary = Summary(namespace)
        self.stop = threading.Event()
        self.task = 0  # the push task the Pusher's progress goes to (one push at a time)

    def run(self, flavors: list[Flavor]) -> Summary:
        start = time.perf_counter()
        pushing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="distill-publish")
        pending: list[Future[list[Published]]] = []
        try:
            with Pusher.to(
                self.namespace.registry, self.settings, self.options.jobs, progress=self._progress
            ) as pusher:
                try:
                    for flavor in flavors:
                        for f in pending:  # a failed push stops the run before the next build
                            if f.done():
                                f.result()
                        results = self._build(flavor)
                        pending.append(pushing.submit(self._push_flavor, pusher, flavor, results))
                    for f in pending:
                        self.summary.images.extend(f.result())
                finally:  # the push under way ends (at a variant's end) before the client closes
                    self.stop.set()
                    pushing.shutdown(wait=True, cancel_futures=True)
        finally:
            self.archives.close()
        self.summary.seconds = time.perf_counter() - start
        return self.summary

    # -- locks and builds --------------------------------------------------------

    def lock(self, flavor: Flavor) -> Lock:
        """The flavor's lock: the lockfile when present and current, else resolved once."""
        from distill.pipeline import make_lock, resolve

        path = flavor.lock_file
        if path.exists() or path.is_symlink():
            lock = read_lock(path)
            try:
                check_current(lock, spec_checksum(flavor.spec), path, list(flavor.spec.archs))
                return lock
            except LockError as exc:
                if self.locked:
                    raise
                self.reporter.note(f"{exc.message}: resolving {flavor.repository} afresh")
        elif self.locked:
            raise LockError(
                f"no lockfile for {flavor.repository} at {path}",
                hint="run 'distill publish --lock-dir DIR' once without --locked to write the locks",
            )
        archive = self.archives.get(flavor.spec)
        lock = make_lock(flavor.spec, archive, resolve(flavor.spec, archive))
        self.summary.resolved.append(flavor.repository)
        if flavor.write_lock:
            write_lock(lock, path)
        return lock

    def _build(self, flavor: Flavor) -> dict[str, BuildResult]:
        lock = self.lock(flavor)

        def fetch(packages: list[LockedPackage]) -> None:
            from distill.fetch import fetch_debs

            archive = self.archives.get(flavor.spec)
            fetch_debs(packages, archive, archive.cache, reporter=self.reporter, jobs=self.options.jobs)

        task = self.reporter.task(f"building {flavor.repository}")
        results = build_variants(
            flavor.spec, lock, self.options, self.variants, fetch=fetch, spec_path=flavor.path
        )
        archs = ", ".join(flavor.spec.archs)
        self.reporter.done(task, f"built {flavor.repository} ({', '.join(self.variants)}; {archs})")
        return results

    # -- pushes ------------------------------------------------------------------

    def _progress(self, kind: str, size: int) -> None:
        self.reporter.advance(self.task, size)

    def _push_flavor(
        self, pusher: Pusher, flavor: Flavor, results: dict[str, BuildResult]
    ) -> list[Published]:
        from distill.archive.cache import Cache
        from distill.oci.image import BlobStore
        from distill.oci.source import StoreSource

        store = BlobStore(Cache(self.options.cache_dir).root)
        out = []
        for variant, result in results.items():
            if self.stop.is_set():
                break
            refs = [self.namespace.ref(repository, variant) for repository in flavor.repositories()]
            published = Published(
                flavor.name,
                flavor.distro,
                variant,
                result.digest,
                refs,
                {i.arch: i.manifest.digest for i in result.images},
                sum(i.size + i.config.size for i in result.images),
                result.layers_written,
                result.layers_reused,
            )
            source = StoreSource(store, result.digest, f"{flavor.repository}:{variant}")
            top = source.top()
            blobs = [d for i in result.images for d in (i.config.digest, *(b.digest for b in i.layers))]
            # A layer of a lower level may be in that flavor's repository already (pushed
            # by another job, or an earlier run): worth a mount before an upload.
            hints: dict[str, list[str]] = {}
            for image in result.images:
                for level, blob in zip(image.layer_names, image.layers, strict=True):
                    if level not in (flavor.name, "debug"):
                        other = self.namespace.ref(f"{level}-{flavor.distro}", "latest")
                        hints.setdefault(blob.digest, []).append(other.name)
            for ref in refs:
                if self.stop.is_set():
                    break
                self.task = self.reporter.task(f"pushing {ref}", published.compressed_bytes)
                if pusher.registry.manifest_digest(ref.repository, variant) == result.digest:
                    # The tag names this index: every blob and child is there (a registry
                    # takes a manifest only then). Mounts into other repositories can come
                    # from here, as if this run had pushed it.
                    for digest in blobs:
                        pusher.known.setdefault(digest, ref.repository)
                    published.checked += 1
                    self.reporter.done(self.task, f"{ref}: up to date")
                    continue
                pusher.push(source, top, [ref], published.push, mount_from=hints)
                self.reporter.done(self.task, f"pushed {ref}")
            out.append(published)
        return out


def write_summary(summary: Summary, path: Path) -> None:
    import json

    from distill.output import write_output

    write_output(path, (json.dumps(summary.to_json(), indent=2) + "\n").encode(), "the summary")


__all__ = [
    "FAMILY",
    "Flavor",
    "Namespace",
    "Published",
    "Summary",
    "parse_namespace",
    "plan",
    "publish",
    "write_summary",
]
