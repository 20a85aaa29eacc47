"""The Debian-package commands: ``lock``, ``why`` and ``fetch``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.cli.common import (
    Subparsers,
    add_common,
    add_registry,
    add_spec_args,
    load,
    lock_path,
    mib,
    options,
    registry_settings,
)
from distill.errors import DistillError, LockError, SpecError

if TYPE_CHECKING:
    from distill.resolve.lock import Lock
    from distill.spec.model import Spec


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "lock",
        help="resolve a spec and write its lockfile",
        description="Resolve the spec's packages against the verified archive and write SPEC.lock.json "
        "beside the spec (for a built-in name: in the current directory). Lists every pruned edge.",
    )
    add_spec_args(p)
    p.add_argument("-o", "--output", type=Path, help="lockfile path (default: beside the spec)")
    p.add_argument(
        "--check",
        action="store_true",
        help="do not write; fail if the lockfile does not match the spec (exit 2)",
    )
    p.add_argument(
        "--update",
        nargs="*",
        metavar="PKG",
        help="re-lock deliberately from the existing lock: only PKG (binary or source names) and what they need "
        "move, every other package keeps its locked version where it still fits (no PKG: everything moves); "
        "prints the diff (old -> new with the CVEs the changelogs name, packages added or removed)",
    )
    p.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    add_common(p)
    add_registry(p)
    p.set_defaults(func=cmd_lock)

    p = sub.add_parser(
        "why",
        help="show the dependency chain that pulls a package in",
        description="Explain, for each architecture of the spec (or each --arch), why PACKAGE is in the "
        "image: the chain from the spec down to it, the pruned edge that keeps it out, or that the archive "
        "has it but nothing pulls it in. A name the archive does not have at all is an error (exit 2) "
        "with the closest names.",
    )
    add_spec_args(p)
    p.add_argument("package", metavar="PACKAGE")
    add_common(p)
    p.set_defaults(func=cmd_why)

    p = sub.add_parser(
        "fetch",
        help="download and verify every .deb of the lock into the cache",
        description="Download the spec's packages (from its lockfile when present) in parallel, each "
        "verified against the SHA256 and size in its signed index.",
    )
    add_spec_args(p)
    p.add_argument("--lock", type=Path, help="lockfile path (default: beside the spec)")
    p.add_argument("--locked", action="store_true", help="require a lockfile that matches the spec")
    add_common(p)
    add_registry(p)
    p.set_defaults(func=cmd_fetch)


def _lock_base(args: argparse.Namespace, spec: Spec, lock_file: Path) -> int:
    """An app on an image: the lock pins the image's digest (a tag resolved once)."""
    from distill.oci.base import current_digest
    from distill.oci.source import open_source
    from distill.resolve.lock import Lock, LockedBase, write_lock
    from distill.spec.load import spec_checksum

    image = spec.base_image
    assert image is not None
    settings = registry_settings(args)
    with open_source(image.target, settings=settings) as source:
        digest = current_digest(source)
        top = source.pinned(digest)
        for arch in spec.archs:  # every architecture the spec builds must be in the image
            source.image(arch, top)
    lock = Lock(spec_checksum(spec), spec.distro, [], {}, {}, [], {}, base=LockedBase(image.text, digest))
    write_lock(lock, lock_file)
    print(f"base: {image.text} -> {digest}")
    print(f"wrote {lock_file}")
    return 0


def cmd_lock(args: argparse.Namespace) -> int:
    from distill.pipeline import make_lock, open_archive, resolve
    from distill.resolve.lock import check_current, read_lock, write_lock
    from distill.spec.load import spec_checksum

    spec, path = load(args)
    lock_file = lock_path(args, path)
    if args.check:
        check_current(read_lock(lock_file), spec_checksum(spec), lock_file, list(spec.archs), spec.distro)
        print(f"{lock_file} is up to date")
        return 0
    if args.check and args.update is not None:
        raise SpecError("--check and --update do not go together")
    if spec.base_image is not None:
        return _lock_base(args, spec, lock_file)
    opts = options(args)
    old = read_lock(lock_file) if args.update is not None else None
    changes: list[Any] = []
    archive = open_archive(spec, opts)
    try:
        t0 = time.perf_counter()
        prefer = None
        if old is not None:
            from distill.vuln.lockdiff import names_to_update, prefer_for

            prefer = prefer_for(old, names_to_update(old, args.update) if args.update else None)
        resolutions = resolve(spec, archive, prefer=prefer)
        lock = make_lock(spec, archive, resolutions, opts, prefer)
        if old is not None:
            from distill.vuln.lockdiff import diff, with_cves

            changes = diff(old, lock)
            with_cves(changes, archive, opts.reporter, opts.jobs)
    finally:
        archive.close()
        opts.reporter.close()
    write_lock(lock, lock_file)
    elapsed = time.perf_counter() - t0
    if args.json:
        summary = _summary(lock, lock_file, elapsed)
        if old is not None:
            summary["changes"] = [c.to_json() for c in changes]
        print(json.dumps(summary, indent=2))
        return 0
    if old is not None:
        print(
            f"{len(changes)} change{'s' if len(changes) != 1 else ''} to {lock_file}"
            + (":" if changes else "")
        )
        for c in changes:
            print(c.line())
    for arch in [] if args.quiet else lock.archs:
        pkgs = lock.packages[arch]
        size = sum(p.size for p in pkgs)
        inst = sum(p.installed_size for p in pkgs) * 1024
        print(f"{arch}: {len(pkgs)} packages, {mib(size)} to download, {mib(inst)} installed")
        for edge in lock.pruned[arch]:
            print(f"  pruned: {edge['package']} {edge['field']} {edge['relation']} ({edge['reason']})")
    print(f"wrote {lock_file} in {elapsed:.2f} s")
    return 0


def _summary(lock: Lock, path: Path, elapsed: float) -> dict[str, Any]:
    return {
        "lockfile": str(path),
        "seconds": round(elapsed, 3),
        "archs": {
            arch: {
                "packages": [f"{p.name}={p.version}" for p in lock.packages[arch]],
                "download_bytes": sum(p.size for p in lock.packages[arch]),
                "installed_bytes": sum(p.installed_size for p in lock.packages[arch]) * 1024,
                "pruned": lock.pruned[arch],
            }
            for arch in lock.archs
        },
    }


def cmd_why(args: argparse.Namespace) -> int:
    from distill.pipeline import open_archive, resolve

    spec, _ = load(args)
    archs: list[str] = list(spec.archs)
    opts = options(args)
    archive = open_archive(spec, opts)
    try:
        results = resolve(spec, archive, archs)
        universes = {arch: archive.universe(arch) for arch in archs}
    finally:
        archive.close()
        opts.reporter.close()
    name = args.package
    absent = []
    for arch in archs:
        if not _why(name, arch, results[arch], universes[arch]):
            absent.append(arch)
    if absent:
        import difflib

        names = sorted(set().union(*(universes[a].all_names() for a in absent)))
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.75)
        where = f"the {', '.join(absent)} archive" + (
            " (the spec's suites)" if len(absent) == len(archs) else ""
        )
        hint = f"did you mean {', '.join(close)}?" if close else "check the name and the spec's suites"
        if len(absent) == len(archs):
            raise DistillError(f"{name} is not in {where}: no package and nothing provides it", hint=hint)
        print(f"{name} is not in {where}: no package and nothing provides it ({hint})")
    return 0


def _why(name: str, arch: str, res: Any, universe: Any) -> bool:
    """Print why ``name`` is in the ``arch`` image, or the pruned edges that keep it out,
    or that nothing pulls it in; False when the archive has no such package at all."""
    if res.get(name) is not None:
        print(f"{name} is in the {arch} image because:")
        for depth, (pkg, reason) in enumerate(res.chain(name)):
            version = res.get(pkg)
            what = "the spec asks for" if reason.parent is None else f"{reason.field}:"
            print(f"{'  ' * depth}{pkg} {version.version if version else ''}  ({what} {reason.relation})")
        return True
    from distill.debian.relation import parse_relations

    # Edges to the package itself or to a virtual name it provides.
    targets = {name} | {r.name for p in universe.candidates(name) for r in p.provides}
    edges = [e for e in res.pruned if {r.name for c in parse_relations(e.relation) for r in c} & targets]
    if edges:
        print(f"{name} is not in the {arch} image; these edges to it were pruned:")
        for e in edges:
            print(f"  {e}")
        return True
    if not universe.known(name):
        return False
    real = universe.candidates(name)
    what = f"{name} {real[0].version} is" if real else f"{name} (a virtual package) is"
    print(f"{what} in the {arch} archive, not in the image: nothing in the image depends on it")
    return True


def _fetch_base(args: argparse.Namespace, spec: Spec, lock_file: Path) -> int:
    """An app on an image: its blobs into the cache (by the lock's digest when locked)."""
    from distill.archive.cache import Cache
    from distill.oci.base import open_base
    from distill.oci.image import CONFIG, BlobStore
    from distill.oci.read import check_reusable
    from distill.oci.source import pull_blob
    from distill.resolve.lock import check_current, read_lock
    from distill.spec.load import spec_checksum

    image = spec.base_image
    assert image is not None
    lock = None
    if (lock_file.exists() or lock_file.is_symlink()) or args.locked:
        lock = read_lock(lock_file)
        check_current(lock, spec_checksum(spec), lock_file)
        if lock.base is None:
            raise LockError(f"{lock_file} pins no base image", hint="run 'distill lock SPEC'")
    opts = options(args)
    store = BlobStore(Cache(opts.cache_dir).root)
    count = size = 0
    source, top = open_base(
        image.target,
        store,
        settings=registry_settings(args),
        offline=opts.offline,
        pinned=lock.base.digest if lock is not None and lock.base is not None else None,
    )
    try:
        for arch in spec.archs:
            img = source.image(arch, top)
            check_reusable(img)  # as the build: every layer has its size (nothing unbounded)
            for d in img.layers:
                with pull_blob(source, store, d["digest"], d["size"]) as blob:
                    blob.finish()
                count += 1
                size += int(d["size"])
            store.put(img.config_bytes, str(img.manifest["config"].get("mediaType") or CONFIG))
            store.put(img.manifest_bytes, img.media_type)
            count += 1
            size += len(img.config_bytes)
        store.put(top.data, top.media_type)
    finally:
        source.close()
        opts.reporter.close()
    print(f"{count} blobs of {image.text} verified in the cache ({mib(size)})")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from distill.pipeline import fetch, make_lock, open_archive, resolve
    from distill.resolve.lock import check_current, read_lock
    from distill.spec.load import spec_checksum

    spec, path = load(args)
    lock_file = lock_path(args, path, "lock")
    if spec.base_image is not None:
        return _fetch_base(args, spec, lock_file)
    opts = options(args)
    lock: Lock | None = None
    if (lock_file.exists() or lock_file.is_symlink()) or args.locked:
        lock = read_lock(lock_file)
        try:
            check_current(lock, spec_checksum(spec), lock_file, list(spec.archs), spec.distro)
        except LockError:
            if args.locked:
                raise
            lock = None
    archive = open_archive(spec, opts)
    try:
        if lock is None:
            lock = make_lock(spec, archive, resolve(spec, archive), opts)
        result = fetch(lock, archive, opts, list(spec.archs))
    finally:
        archive.close()
        opts.reporter.close()
    count = len(result.paths)
    print(f"{count} packages verified in the cache ({result.downloaded} downloaded, {mib(result.bytes)})")
    return 0
