"""The build orchestrator: spec + lock -> fetch -> expand -> assemble -> layers -> image -> sink.

Each stage takes plain values and returns plain values. The command line's
``distill build`` is one client; tests and other tools can call :func:`build`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from distill.app import AppBuild, Dependency
from distill.app import Target as AppTarget
from distill.app import node as node_app
from distill.app import prepare as prepare_app
from distill.archive.cache import Cache, CorruptEntryError
from distill.assemble.expand import Expanded, expand, expand_tarball, load_expanded, read_member
from distill.assemble.rootfs import LayerPlan, LevelInput, assemble
from distill.assemble.system import BUNDLE, NONROOT_UID, java_version
from distill.assemble.tree import Tree
from distill.distros import get_distro, host_arch
from distill.errors import BuildError, DistillError, LockError, OutputError, SpecError
from distill.oci.image import (
    CONFIG,
    INDEX,
    LAYER_GZIP,
    MANIFEST,
    BlobStore,
    Descriptor,
    History,
    ImageConfig,
    canonical_json,
    config_document,
    index_document,
    manifest_document,
    platform,
    rfc3339,
)
from distill.oci.layer import LayerBlob, LayerCache
from distill.oci.registry import RegistrySettings
from distill.oci.sink import DockerEntry, write_archive, write_layout
from distill.oci.source import Document
from distill.oci.source import Image as SourceImage
from distill.options import Options
from distill.resolve.lock import Lock, LockedPackage
from distill.spec.model import Spec, expand_arch
from distill.upstream import nodejs

_T = TypeVar("_T")
VARIANTS = ("latest", "nonroot", "debug", "debug-nonroot")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ArchImage:
    arch: str
    manifest: Descriptor
    config: Descriptor
    layers: list[LayerBlob]
    layer_names: list[str]
    packages: int
    files: int
    dependencies: tuple[Dependency, ...] = ()  # the app's wheels or npm tarballs (provenance)

    @property
    def size(self) -> int:
        return sum(layer.size for layer in self.layers)

    @property
    def tar_size(self) -> int:
        return sum(layer.tar_size for layer in self.layers)


@dataclass
class BuildResult:
    top: Descriptor
    images: list[ArchImage]
    output: Path | None = None
    written: bool = False
    layers_written: int = 0
    layers_reused: int = 0
    notes: list[str] = field(default_factory=list)
    base: tuple[str, str] | None = None  # an app on an image: that image (as named, digest)

    @property
    def digest(self) -> str:
        return self.top.digest


def default_output(name: str, variant: str) -> Path:
    """``NAME[-VARIANT].oci`` in the working directory: an image name's '/' (and anything
    else a file name should not hold) becomes '_', so it never names another directory."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "image"
    return Path(f"{safe}{'' if variant == 'latest' else '-' + variant}.oci")


def check_variant(variant: str) -> None:
    if variant not in VARIANTS:
        raise SpecError(f"unknown variant {variant!r}", hint=f"variants: {', '.join(VARIANTS)}")


def image_config(
    spec: Spec,
    variant: str,
    has_bundle: bool,
    app: AppBuild | None = None,
    *,
    arch: str = "",
    derived: dict[str, str] | None = None,
) -> ImageConfig:
    """``derived``: what the image's contents say (JAVA_VERSION of its JRE); the spec's
    ``env`` overrides it, with ``${arch}`` in its values expanded."""
    env = {"PATH": DEFAULT_PATH}
    if has_bundle:
        env["SSL_CERT_FILE"] = "/" + BUNDLE
    env.update(derived or {})
    if app is not None:
        env.update(app.env)
    env.update({k: expand_arch(v, arch) for k, v in spec.env.items()})
    config = ImageConfig(
        user=spec.user or "0",
        workdir=spec.workdir or "/",
        env=env,
        entrypoint=spec.entrypoint,
        cmd=spec.cmd,
        labels=dict(spec.labels),
        exposed_ports=[p if "/" in str(p) else f"{p}/tcp" for p in map(str, spec.exposed_ports)],
        stop_signal=spec.stop_signal,
    )
    if app is not None:
        # Applications run as nonroot unless the spec says otherwise, from their directory.
        config.user = spec.user or str(NONROOT_UID)
        config.workdir = spec.workdir or app.workdir
        config.entrypoint, config.cmd = app.entrypoint, app.cmd
    elif variant.endswith("nonroot"):
        config.user = str(NONROOT_UID)
        config.workdir = spec.workdir or "/home/nonroot"
    if variant.startswith("debug"):
        config.env["PATH"] = config.env["PATH"] + ":/busybox"
        if app is None:
            # A flavor's debug image starts a shell, as Google's do; an app's debug image
            # still runs the app (the shell: podman exec -it C /busybox/sh, or --entrypoint).
            config.entrypoint = ["/busybox/sh"]
            config.cmd = None
    return config


def _expand_all(
    cache: Cache,
    packages: list[LockedPackage],
    options: Options,
    fetch: Callable[[list[LockedPackage]], None] | None,
) -> dict[str, Expanded]:
    """Every package expanded: from the cache, else from its .deb (fetched if missing)."""
    out: dict[str, Expanded] = {}
    todo: list[LockedPackage] = []
    for p in {p.sha256: p for p in packages}.values():
        found = load_expanded(cache, p.sha256)
        if found is None:
            todo.append(p)
        else:
            out[p.sha256] = found
    absent = [p for p in todo if not cache.has_deb(p.sha256)]
    if absent:
        if fetch is None:
            raise BuildError(f"{len(absent)} packages are not in the cache", hint="run 'distill fetch SPEC'")
        fetch(absent)
    if todo:
        reporter = options.reporter
        task = reporter.task(f"unpacking {len(todo)} packages", sum(p.installed_size * 1024 for p in todo))

        def one(p: LockedPackage) -> Expanded:
            exp = expand(cache, cache.deb_path(p.sha256), p.sha256)
            reporter.advance(task, p.installed_size * 1024)
            return exp

        with ThreadPoolExecutor(max_workers=max(1, min(len(todo), os.cpu_count() or 1))) as pool:
            for p, exp in zip(todo, pool.map(one, todo), strict=True):
                out[p.sha256] = exp
        reporter.done(task, f"unpacked {len(todo)} packages")
    return out


def _check_control(p: LockedPackage, exp: Expanded) -> None:
    """The .deb a lock entry pins must be the package the entry names: the name becomes
    its status.d file (an edited lock naming gcc-base 'libc6' dropped gcc-base from the
    image's package list, and overwrote libc6's record, with exit 0)."""
    from distill.debian.deb822 import parse_paragraph_bytes

    try:
        control = parse_paragraph_bytes(exp.control_text)
    except DistillError:
        control = {}
    got = (control.get("Package", ""), control.get("Version", ""), control.get("Architecture", ""))
    if got != (p.name, p.version, p.architecture):
        raise LockError(
            f"the lock's entry {p.name!r} {p.version!r} ({p.architecture}) pins the .deb {p.sha256[:12]}, "
            f"which is {got[0]!r} {got[1]!r} ({got[2]!r})",
            hint="the lockfile was edited or damaged: run 'distill lock SPEC'",
        )


def _archives(
    lock: Lock, archs: list[str], cache: Cache, options: Options, spec: Spec
) -> dict[str, Expanded]:
    """The lock's release archives (Node.js), from the cache or the user's mirror, expanded."""
    wanted = {a.sha256: a for arch in archs for a in lock.archives.get(arch, [])}
    if not wanted:
        return {}
    from distill.archive.transport import Transport
    from distill.pipeline import node_settings

    settings = node_settings(spec, options)
    transport = None if options.offline else Transport()
    try:
        out = {}
        for sha, a in wanted.items():
            path = nodejs.ensure(cache, a, settings, transport, options.offline)
            out[sha] = expand_tarball(cache, path, sha, "nodejs")
        return out
    finally:
        if transport is not None:
            transport.close()


def _levels(
    spec: Spec, lock: Lock, arch: str, expanded: dict[str, Expanded], archives: dict[str, Expanded]
) -> list[LevelInput]:
    if len(lock.layers) != len(spec.levels):
        raise LockError(
            "the lockfile's layers do not match the spec's extends chain", hint="run 'distill lock SPEC'"
        )
    by_layer: dict[str, list[tuple[str, Expanded]]] = {name: [] for name in lock.layers}
    for p in lock.packages[arch]:
        if p.layer not in by_layer:
            raise LockError(
                f"the lockfile puts {p.name} in an unknown layer {p.layer!r}", hint="run 'distill lock SPEC'"
            )
        exp = expanded[p.sha256]
        _check_control(p, exp)
        by_layer[p.layer].append((p.name, exp))
    extra: dict[str, list[tuple[str, Expanded]]] = {name: [] for name in lock.layers}
    for a in lock.archives.get(arch, []):
        if a.layer not in extra:
            raise LockError(
                f"the lockfile puts {a.file} in an unknown layer {a.layer!r}", hint="run 'distill lock SPEC'"
            )
        extra[a.layer].append((a.name, archives[a.sha256]))
    return [
        LevelInput(lock_name, level_spec, by_layer[lock_name], extra[lock_name])
        for lock_name, (_, level_spec) in zip(lock.layers, spec.levels, strict=True)
    ]


@dataclass(frozen=True)
class _Assembled:
    """One platform's layers, as assembled and written (or found in the layer cache)."""

    plans: list[LayerPlan]
    blobs: list[LayerBlob]
    has_bundle: bool
    java: str | None  # the JDK's version, when the tree has one (JAVA_VERSION in the config)


def _assemble_arch(
    spec: Spec,
    lock: Lock,
    arch: str,
    debug_variant: bool,
    expanded: dict[str, Expanded],
    layers: LayerCache,
    clamp: int | None,
    counts: list[int],
    app: AppBuild | None,
    archives: dict[str, Expanded],
) -> _Assembled:
    debug = None
    if debug_variant:
        extras = lock.debug.get(arch)
        if not extras:
            raise LockError(
                f"the lock has no busybox for {arch}, so the debug variant cannot be built",
                hint="run 'distill lock SPEC' against an archive that has busybox-static",
            )
        debug = expanded[next(p for p in extras if p.name == "busybox-static").sha256]
    levels = _levels(spec, lock, arch, expanded, archives)
    plans, tree = assemble(levels, arch, spec.distro, debug=debug, clamp=clamp, app=app)
    # Layers are independent: compress them side by side (ISA-L and SHA256 release the GIL).
    with ThreadPoolExecutor(max_workers=max(1, min(len(plans), os.cpu_count() or 1))) as pool:
        built = list(pool.map(layers.build, plans))
    for _, written in built:
        counts[0 if written else 1] += 1
    return _Assembled(plans, [blob for blob, _ in built], tree.get(BUNDLE) is not None, java_version(tree))


def _arch_image(
    spec: Spec,
    lock: Lock,
    arch: str,
    variant: str,
    expanded: dict[str, Expanded],
    layers: LayerCache,
    store: BlobStore,
    clamp: int | None,
    counts: list[int],
    app: AppBuild | None,
    assembled: dict[tuple[str, bool], _Assembled],
    archives: dict[str, Expanded],
) -> ArchImage:
    """One platform's image of one variant. ``assembled`` holds the layers already made
    for another variant of this build: the variants differ only in their config (and
    the debug ones in busybox's layer), so e.g. nonroot reuses latest's layers."""
    debug_variant = variant.startswith("debug")
    done = assembled.get((arch, debug_variant))
    if done is None:
        done = _assemble_arch(spec, lock, arch, debug_variant, expanded, layers, clamp, counts, app, archives)
        assembled[(arch, debug_variant)] = done
    else:
        counts[1] += len(done.blobs)
    plans, blobs = done.plans, done.blobs
    epoch = plans[-1].epoch
    derived = {"JAVA_VERSION": done.java} if done.java else {}
    config = image_config(spec, variant, done.has_bundle, app, arch=arch, derived=derived)
    history = [History(f"distill: {plan.name}", plan.comment) for plan in plans]
    config_doc = config_document(arch, epoch, config, [b.diff_id for b in blobs], history)
    config_desc = store.put(canonical_json(config_doc), CONFIG)
    distro = get_distro(spec.distro)
    name = spec.levels[-1][0]
    annotations = {
        "org.opencontainers.image.created": rfc3339(epoch),
        "org.opencontainers.image.title": name if variant == "latest" else f"{name}:{variant}",
        "org.opencontainers.image.description": f"distroless {name} ({variant}) from Debian {distro.version} packages",
        **spec.annotations,
    }
    layer_descs = [Descriptor(LAYER_GZIP, b.digest, b.size) for b in blobs]
    manifest = store.put(canonical_json(manifest_document(config_desc, layer_descs, annotations)), MANIFEST)
    packages = sum(len(p.packages) for p in plans)
    files = sum(b.files for b in blobs)
    return ArchImage(
        arch,
        Descriptor(MANIFEST, manifest.digest, manifest.size, platform(arch)),
        config_desc,
        blobs,
        [p.name for p in plans],
        packages,
        files,
        tuple(app.dependencies) if app is not None else (),
    )


def _app_target(
    packages: list[tuple[str, str]],
    arch: str,
    cache: Cache,
    options: Options,
    spec_path: Path | None,
    output: Path | None,
    node_runtime: node_app.Runtime | None = None,
) -> AppTarget:
    # The output may sit inside the app's source: it is never part of the code, nor are
    # the SBOMs written beside it.
    from distill.sbom import beside

    skip = (output, *beside(output)) if output is not None else ()
    return AppTarget(
        packages, arch, cache.root, spec_path, options.offline, options.reporter, skip, node_runtime
    )


def _release_node(lock: Lock, arch: str, archives: dict[str, Expanded]) -> node_app.Runtime | None:
    """The Node.js a lock's release archive puts under /nodejs (None: the lock has none):
    the version the lock pins, the ABI from the archive's own node_version.h."""
    for a in lock.archives.get(arch, []):
        if a.name == "nodejs":
            header = read_member(
                archives[a.sha256], "nodejs/include/node/node_version.h", node_app.MAX_HEADER
            )
            return node_app.release_runtime(a.version, a.file, header)
    return None


# How many damaged cache entries one build repairs before it gives up (each repair is
# one warning; a cache damaged faster than that is not one distill can build from).
MAX_REPAIRS = 16


def _repairing(options: Options, attempt: Callable[[], _T]) -> _T:
    """Run a build; when it meets a damaged cache entry (already removed), warn and run it
    again, which makes the entry anew. With --offline an entry that has to be downloaded
    again is an error instead."""
    for tries in range(MAX_REPAIRS + 1):
        try:
            return attempt()
        except CorruptEntryError as exc:
            if exc.needs_network and options.offline:
                raise CorruptEntryError(
                    exc.message,
                    needs_network=True,
                    hint="--offline forbids downloading it again; run once without --offline",
                ) from None
            if tries == MAX_REPAIRS:
                raise
            options.reporter.note(f"warning: {exc.message}; making it again")
    raise AssertionError("unreachable")


def build(
    spec: Spec,
    lock: Lock,
    options: Options,
    *,
    variant: str = "latest",
    archs: list[str] | None = None,
    output: Path | None = None,
    tag: str | None = None,
    fetch: Callable[[list[LockedPackage]], None] | None = None,
    spec_path: Path | None = None,
    per_arch_tags: bool = False,
) -> BuildResult:
    """Build the image(s) a lock describes; write them to ``output`` (a layout, or a .tar).

    ``fetch`` is called with the packages the cache lacks (the caller opens the archive
    only then); without it a cache miss is an error. ``per_arch_tags``: a multi-arch
    layout also names each platform's image ``TAG-ARCH`` in index.json. Every cache entry
    is checked when it is read; a damaged one is removed and made again (one warning each).
    """
    return _repairing(
        options,
        lambda: _build(
            spec,
            lock,
            options,
            variant=variant,
            archs=archs,
            output=output,
            tag=tag,
            fetch=fetch,
            spec_path=spec_path,
            per_arch_tags=per_arch_tags,
        ),
    )


def _build(
    spec: Spec,
    lock: Lock,
    options: Options,
    *,
    variant: str,
    archs: list[str] | None,
    output: Path | None,
    tag: str | None,
    fetch: Callable[[list[LockedPackage]], None] | None,
    spec_path: Path | None,
    per_arch_tags: bool,
) -> BuildResult:
    store, built = _build_variants(spec, lock, options, [variant], archs, fetch, spec_path, output)
    images, counts = built[variant]
    return _finish(images, store, output, tag, counts, per_arch_tags)


def build_variants(
    spec: Spec,
    lock: Lock,
    options: Options,
    variants: list[str],
    *,
    archs: list[str] | None = None,
    fetch: Callable[[list[LockedPackage]], None] | None = None,
    spec_path: Path | None = None,
) -> dict[str, BuildResult]:
    """Several variants of one spec from one lock, into the cache's blob store only (what
    a push reads): the packages are unpacked once and each platform's layers assembled
    once for latest/nonroot and once for the debug pair, whose images differ only in
    their config. Returns each variant's result (its index, or its one image)."""

    def attempt() -> dict[str, BuildResult]:
        store, built = _build_variants(spec, lock, options, variants, archs, fetch, spec_path, None)
        return {v: _finish(images, store, None, None, counts) for v, (images, counts) in built.items()}

    return _repairing(options, attempt)


def _build_variants(
    spec: Spec,
    lock: Lock,
    options: Options,
    variants: list[str],
    archs: list[str] | None,
    fetch: Callable[[list[LockedPackage]], None] | None,
    spec_path: Path | None,
    output: Path | None,
) -> tuple[BlobStore, dict[str, tuple[list[ArchImage], list[int]]]]:
    for variant in variants:
        check_variant(variant)
    archs = archs or list(spec.archs)
    missing_arch = [a for a in archs if a not in lock.packages]
    if missing_arch:
        raise LockError(f"the lock has no {', '.join(missing_arch)} section", hint="run 'distill lock SPEC'")
    cache = Cache(options.cache_dir)
    needed = [p for a in archs for p in lock.packages[a]]
    if any(v.startswith("debug") for v in variants):
        needed += [p for a in archs for p in lock.debug.get(a, [])]
    expanded = _expand_all(cache, needed, options, fetch)
    archives = _archives(lock, archs, cache, options, spec)
    store = BlobStore(cache.root)
    layers = LayerCache(cache.root, store)
    task = options.reporter.task("assembling layers")
    apps: dict[str, AppBuild | None] = {arch: None for arch in archs}
    if spec.app is not None:
        for arch in archs:
            apps[arch] = prepare_app(
                spec.app,
                _app_target(
                    [(p.name, p.version) for p in lock.packages[arch]],
                    arch,
                    cache,
                    options,
                    spec_path,
                    output,
                    _release_node(lock, arch, archives) if spec.app.kind == "node" else None,
                ),
            )
    assembled: dict[tuple[str, bool], _Assembled] = {}
    built: dict[str, tuple[list[ArchImage], list[int]]] = {}
    for variant in variants:
        counts = [0, 0]
        clamp = options.source_date_epoch
        images = [
            _arch_image(
                spec,
                lock,
                arch,
                variant,
                expanded,
                layers,
                store,
                clamp,
                counts,
                apps[arch],
                assembled,
                archives,
            )
            for arch in archs
        ]
        built[variant] = (images, counts)
    written = sum(c[0] for _, c in built.values())
    reused = sum(c[1] for _, c in built.values())
    options.reporter.done(task, f"layers: {written} written, {reused} reused from the cache")
    return store, built


def _finish(
    images: list[ArchImage],
    store: BlobStore,
    output: Path | None,
    tag: str | None,
    counts: list[int],
    per_arch_tags: bool = False,
) -> BuildResult:
    """One image, or an index of several; written to the output when there is one.

    A layout's index.json has one entry, the image or the index (what ko, crane and
    apko write: tag-less readers take it); each platform's image is named in it too
    only when ``per_arch_tags`` asks."""
    if per_arch_tags and output is not None and output.suffix == ".tar":
        raise OutputError(
            "--per-arch-tags names each platform's image in an OCI layout; an archive holds one image",
            hint="write a layout (-o DIR), or build one platform with --arch",
        )
    if len(images) == 1:
        top = images[0].manifest
    else:
        top = store.put(canonical_json(index_document([i.manifest for i in images])), INDEX)
    result = BuildResult(top, images, output, layers_written=counts[0], layers_reused=counts[1])
    if output is not None:
        if output.suffix == ".tar":
            primary = next((i for i in images if i.arch == host_arch()), images[0])
            entry = DockerEntry(
                primary.config.digest, [b.digest for b in primary.layers], [tag] if tag else []
            )
            result.written = write_archive(output, store, top, tag, [entry])
        else:
            per_arch = [(i.arch, i.manifest) for i in images] if per_arch_tags and len(images) > 1 else None
            result.written = write_layout(output, store, top, tag, per_arch)
    return result


@dataclass(frozen=True)
class Base:
    """How to read the image an app goes on: its source target, the digest to read it
    by (a lock's; None: what its reference names now), and the registry settings."""

    target: str
    pinned: str | None = None
    settings: RegistrySettings | None = None
    registry_name: str | None = None  # HOST/REPO:TAG of a registry base (layers can be mounted)


def build_on_image(
    spec: Spec,
    options: Options,
    base: Base,
    *,
    variant: str = "latest",
    archs: list[str] | None = None,
    output: Path | None = None,
    tag: str | None = None,
    spec_path: Path | None = None,
    per_arch_tags: bool = False,
) -> BuildResult:
    """An app on an image (``from: docker://…``, ``podman:…``, ``oci:DIR``, an archive):
    its layers are reused byte for byte (pulled once into the blob cache, every one
    verified), the app's are added, its config is kept and amended."""
    return _repairing(
        options,
        lambda: _build_on_image(
            spec,
            options,
            base,
            variant=variant,
            archs=archs,
            output=output,
            tag=tag,
            spec_path=spec_path,
            per_arch_tags=per_arch_tags,
        ),
    )


def _build_on_image(
    spec: Spec,
    options: Options,
    base: Base,
    *,
    variant: str,
    archs: list[str] | None,
    output: Path | None,
    tag: str | None,
    spec_path: Path | None,
    per_arch_tags: bool,
) -> BuildResult:
    from distill.oci import read
    from distill.oci.base import open_base

    assert spec.app is not None
    check_variant(variant)
    if variant.startswith("debug"):
        raise SpecError(
            "the debug variants need a distill base (busybox comes from its lock)",
            hint="build on a distill spec or flavor, or pull the base image's own debug tag",
        )
    cache = Cache(options.cache_dir)
    store = BlobStore(cache.root)
    layer_cache = LayerCache(cache.root, store)
    counts = [0, 0]
    images = []
    source, top = open_base(
        base.target, store, settings=base.settings, offline=options.offline, pinned=base.pinned
    )
    on = _OnImage(spec, options, cache, layer_cache, store, counts, spec_path, output, variant, base, top)
    try:
        for arch in archs or list(spec.archs):
            image = source.image(arch, top)
            read.check_reusable(image)
            task = options.reporter.task(f"reading {source.name} ({arch})")
            # A node app's checks need what the image's node binary says of itself.
            scan = node_app.BinaryScan() if spec.app.kind == "node" else None
            tree, newest, stats = read.read_tree(source, image, store, keeper=scan)
            options.reporter.done(task)
            images.append(on.arch_image(image, tree, newest, stats, arch, scan))
    finally:
        source.close()
    # The base's documents too, so that a locked build reads it from the cache alone.
    store.put(top.data, top.media_type)
    result = _finish(images, store, output, tag, counts, per_arch_tags)
    if top.digest is not None:
        result.base = (base.registry_name or base.target, top.digest)
    return result


@dataclass
class _OnImage:
    """What every platform of an app built on an image shares."""

    spec: Spec
    options: Options
    cache: Cache
    layer_cache: LayerCache
    store: BlobStore
    counts: list[int]
    spec_path: Path | None
    output: Path | None
    variant: str
    base: Base
    top: Document

    def arch_image(
        self,
        image: SourceImage,
        tree: Tree,
        newest: int,
        stats: list[tuple[int, int]],
        arch: str,
        scan: node_app.BinaryScan | None = None,
    ) -> ArchImage:
        """One platform's image: the base's layers as they are, the app's on top, the base's
        config amended (user, workdir, env, entrypoint, labels, ports)."""
        from distill.assemble.rootfs import app_layers
        from distill.oci import read

        epoch = self.options.source_date_epoch if self.options.source_date_epoch is not None else newest
        packages = read.packages(tree)
        node = node_app.image_runtime(tree, packages, scan, image.name) if scan is not None else None
        target = _app_target(packages, arch, self.cache, self.options, self.spec_path, self.output, node)
        assert self.spec.app is not None
        app = prepare_app(self.spec.app, target)
        plans = app_layers(tree, app, arch, epoch)
        built = [self.layer_cache.build(plan) for plan in plans]
        for _, written in built:
            self.counts[0 if written else 1] += 1
        blobs = [blob for blob, _ in built]
        base_layers = image.layers
        self.store.put(image.manifest_bytes, image.media_type)
        self.store.put(image.config_bytes, str(image.manifest["config"].get("mediaType") or CONFIG))
        base_blobs = [
            LayerBlob(d["digest"], diff_id, int(d["size"]), tar_size, files)
            for d, diff_id, (tar_size, files) in zip(
                base_layers, image.config["rootfs"]["diff_ids"], stats, strict=True
            )
        ]
        config_doc = json.loads(json.dumps(image.config))
        ours = image_config(self.spec, self.variant, False, app, arch=arch)
        runtime = config_doc.setdefault("config", {})
        env = dict(item.partition("=")[::2] for item in runtime.get("Env") or [])
        env.update(app.env)
        env.update({k: expand_arch(v, arch) for k, v in self.spec.env.items()})
        runtime.update(
            {
                "User": ours.user,
                "WorkingDir": ours.workdir,
                "Env": [f"{k}={v}" for k, v in env.items()],
                "Entrypoint": ours.entrypoint,
                "Cmd": ours.cmd,
            }
        )
        for key in [k for k, v in runtime.items() if v is None]:
            del runtime[key]
        if self.spec.labels:
            runtime["Labels"] = {**(runtime.get("Labels") or {}), **self.spec.labels}
        ports = ours.to_json().get("ExposedPorts")
        if ports:
            runtime["ExposedPorts"] = {**(runtime.get("ExposedPorts") or {}), **ports}
        if ours.stop_signal:
            runtime["StopSignal"] = ours.stop_signal
        config_doc["rootfs"]["diff_ids"] += [b.diff_id for b in blobs]
        config_doc["history"] = [
            *(config_doc.get("history") or []),
            *(
                {"created": rfc3339(epoch), "created_by": f"distill: {p.name}", "comment": p.comment}
                for p in plans
            ),
        ]
        config_desc = self.store.put(canonical_json(config_doc), CONFIG)
        layer_descs = [Descriptor(d["mediaType"], d["digest"], int(d["size"])) for d in base_layers]
        layer_descs += [Descriptor(LAYER_GZIP, b.digest, b.size) for b in blobs]
        name = self.spec.levels[-1][0]
        source_name = image.name.rstrip("/").rsplit("/", 1)[-1]
        annotations = {
            "org.opencontainers.image.title": name,
            "org.opencontainers.image.description": f"{name} on {source_name}",
            "org.opencontainers.image.base.digest": str(self.top.digest or image.digest),
            **(
                {"org.opencontainers.image.base.name": self.base.registry_name}
                if self.base.registry_name
                else {}
            ),
            **self.spec.annotations,
        }
        manifest = self.store.put(
            canonical_json(manifest_document(config_desc, layer_descs, annotations)), MANIFEST
        )
        all_blobs = [*base_blobs, *blobs]
        return ArchImage(
            arch,
            Descriptor(MANIFEST, manifest.digest, manifest.size, platform(arch)),
            config_desc,
            all_blobs,
            [f"base {i + 1}" for i in range(len(base_blobs))] + [p.name for p in plans],
            len(target.packages),
            sum(b.files for b in all_blobs),
            tuple(app.dependencies),
        )


__all__ = [
    "VARIANTS",
    "ArchImage",
    "Base",
    "BuildResult",
    "build",
    "build_on_image",
    "build_variants",
    "check_variant",
    "image_config",
]
