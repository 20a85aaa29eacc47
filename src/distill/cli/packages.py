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
from distill.debian.relation import parse_relations
from distill.errors import DistillError, LockError

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
    p.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    add_common(p)
    add_registry(p)
    p.set_defaults(func=cmd_lock)

    p = sub.add_parser(
        "why",
        help="show the dependency chain that pulls a package in",
        description="Explain why PACKAGE is in the image: the chain from the spec down to it, or the "
        "pruned edge that keeps it out.",
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
    from distill.resolve.lock import Lock, LockedBase, write_lock
    from distill.spec.load import spec_checksum

    """An app on an image: the lock pins the image's digest (a tag resolved once)."""
    from distill.oci.base import current_digest
    from distill.oci.source import open_source

    image = spec.base_image
    assert image is not None
    settings = registry_settings(args)
    with open_source(image.target, settings=settings) as source:
        digest = current_digest(source)
        top = source.pinned(digest)
        for arch in spec.archs:  # every architecture the spec builds must be in the image
            source.image(arch, top)
    lock = Lock(spec_checksum(spec), spec.distro, [], {}, {}, [], {}, LockedBase(image.text, digest))
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
        check_current(read_lock(lock_file), spec_checksum(spec), lock_file, list(spec.archs))
        print(f"{lock_file} is up to date")
        return 0
    if spec.base_image is not None:
        return _lock_base(args, spec, lock_file)
    opts = options(args)
    archive = open_archive(spec, opts)
    try:
        t0 = time.perf_counter()
        resolutions = resolve(spec, archive)
        lock = make_lock(spec, archive, resolutions)
    finally:
        archive.close()
        opts.reporter.close()
    write_lock(lock, lock_file)
    elapsed = time.perf_counter() - t0
    if args.json:
        print(json.dumps(_summary(lock, lock_file, elapsed), indent=2))
        return 0
    for arch in lock.archs:
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
    arch = spec.archs[0]
    opts = options(args)
    archive = open_archive(spec, opts)
    try:
        res = resolve(spec, archive, [arch])[arch]
        universe = archive.universe(arch)
    finally:
        archive.close()
        opts.reporter.close()
    name = args.package
    if res.get(name) is not None:
        print(f"{name} is in the {arch} image because:")
        for depth, (pkg, reason) in enumerate(res.chain(name)):
            version = res.get(pkg)
            what = "the spec asks for" if reason.parent is None else f"{reason.field}:"
            print(f"{'  ' * depth}{pkg} {version.version if version else ''}  ({what} {reason.relation})")
        return 0
    # Edges to the package itself or to a virtual name it provides.
    targets = {name} | {r.name for p in universe.candidates(name) for r in p.provides}
    edges = [e for e in res.pruned if {r.name for c in parse_relations(e.relation) for r in c} & targets]
    if edges:
        print(f"{name} is not in the {arch} image; these edges to it were pruned:")
        for e in edges:
            print(f"  {e}")
        return 0
    raise DistillError(f"{name} is not in the {arch} image and nothing depends on it")


def _fetch_base(args: argparse.Namespace, spec: Spec, lock_file: Path) -> int:
    from distill.resolve.lock import check_current, read_lock
    from distill.spec.load import spec_checksum

    """An app on an image: its blobs into the cache (by the lock's digest when locked)."""
    from distill.archive.cache import Cache
    from distill.oci.base import open_base
    from distill.oci.image import BlobStore
    from distill.oci.source import pull_blob

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
            for d in [img.manifest["config"], *img.layers]:
                with pull_blob(source, store, d["digest"], d.get("size")) as blob:
                    blob.finish()
                count += 1
                size += int(d.get("size") or 0)
            store.put(img.manifest_bytes, img.media_type)
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
            check_current(lock, spec_checksum(spec), lock_file, list(spec.archs))
        except LockError:
            if args.locked:
                raise
            lock = None
    archive = open_archive(spec, opts)
    try:
        if lock is None:
            lock = make_lock(spec, archive, resolve(spec, archive))
        result = fetch(lock, archive, opts, list(spec.archs))
    finally:
        archive.close()
        opts.reporter.close()
    count = len(result.paths)
    print(f"{count} packages verified in the cache ({result.downloaded} downloaded, {mib(result.bytes)})")
    return 0
