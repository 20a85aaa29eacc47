"""The Debian-package commands: ``lock``, ``why`` and ``fetch``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from distill.cli.common import Subparsers, add_common, add_spec_args, load, lock_path, mib, options
from distill.debian.relation import parse_relations
from distill.errors import DistillError, LockError, SpecError
from distill.resolve.lock import Lock, check_current, read_lock, write_lock
from distill.spec.load import spec_checksum
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
    p.set_defaults(func=cmd_fetch)


def _packages_spec(args: argparse.Namespace) -> tuple[Spec, Path]:
    """The spec, for commands about its Debian packages (an app on an OCI layout has none)."""
    spec, path = load(args)
    if spec.base_layout is not None:
        raise SpecError(
            f"{args.spec} goes on an OCI layout ({spec.base_layout[0]}): it has no Debian packages to lock or fetch",
            hint="distill build it directly",
        )
    return spec, path


def cmd_lock(args: argparse.Namespace) -> int:
    from distill.pipeline import make_lock, open_archive, resolve

    spec, path = _packages_spec(args)
    lock_file = lock_path(args, path)
    if args.check:
        check_current(read_lock(lock_file), spec_checksum(spec), lock_file, list(spec.archs), spec.distro)
        print(f"{lock_file} is up to date")
        return 0
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


def cmd_fetch(args: argparse.Namespace) -> int:
    from distill.pipeline import fetch, make_lock, open_archive, resolve

    spec, path = _packages_spec(args)
    lock_file = lock_path(args, path, "lock")
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
            lock = make_lock(spec, archive, resolve(spec, archive))
        result = fetch(lock, archive, opts, list(spec.archs))
    finally:
        archive.close()
        opts.reporter.close()
    count = len(result.paths)
    print(f"{count} packages verified in the cache ({result.downloaded} downloaded, {mib(result.bytes)})")
    return 0
