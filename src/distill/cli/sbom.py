"""``distill sbom``: SPDX 2.3 or CycloneDX 1.6 JSON of a spec's locked build, a build
output, or any image; and the SBOM files ``distill build`` writes beside its output."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from distill.cli.common import (
    Subparsers,
    add_common,
    add_registry,
    lock_path,
    options,
    registry_settings,
    source_date_epoch,
)
from distill.errors import OutputError, SpecError
from distill.output import write_output

FORMAT_NAMES = {"spdx": "spdx", "spdx-json": "spdx", "cyclonedx": "cyclonedx", "cyclonedx-json": "cyclonedx", "cdx": "cyclonedx"}  # fmt: skip


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "sbom",
        help="an SPDX or CycloneDX SBOM of a spec's locked build, a build output or any image",
        description="Write the SBOM of TARGET: a spec or its lockfile (the image its lock builds, with "
        "every .deb's SHA256, archive path and source package), a build output, or any image (an OCI "
        "layout DIR[:REF], an OCI or docker archive, podman:NAME, docker:NAME, docker://HOST/REPO:TAG), "
        "read by streaming its layers: dpkg status and status.d, apk, Python dist-info, node_modules, "
        "jars, the entrypoint's binary. Licenses come from DEP-5 debian/copyright files (NOASSERTION "
        "where the file is free text). A multi-platform image has one SBOM per platform. The output is "
        "deterministic: its time is SOURCE_DATE_EPOCH, else the image's creation time.",
        epilog="Exit status: 0 written, 2 an error (one line: an unreadable image, a stale lock, ...).",
    )
    p.add_argument("target", metavar="TARGET")
    p.add_argument(
        "--format",
        default="spdx",
        type=_format,
        metavar="FORMAT",
        help="spdx (SPDX 2.3 JSON, the default) or cyclonedx (CycloneDX 1.6 JSON)",
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write to FILE (default: stdout); a multi-platform image writes FILE-ARCH.EXT for each platform",
    )
    p.add_argument(
        "--arch",
        action="append",
        dest="archs",
        metavar="ARCH",
        help="only this platform (repeatable; Debian or OCI names; default: every platform)",
    )
    p.add_argument("--name", help="the image's name in the SBOM and its purl (default: from TARGET)")
    g = p.add_argument_group("a spec or lockfile TARGET")
    g.add_argument("--variant", default="latest", help="latest (default), nonroot, debug or debug-nonroot")
    g.add_argument("--lock", type=Path, help="lockfile path (default: beside the spec)")
    g.add_argument("--distro", choices=["debian13", "debian12"], help="override the spec's distro")
    add_common(p)
    add_registry(p)
    p.set_defaults(func=cmd_sbom)


def _format(text: str) -> str:
    try:
        return FORMAT_NAMES[text.lower()]
    except KeyError:
        raise argparse.ArgumentTypeError(f"{text!r} is not spdx or cyclonedx") from None


def spec_target(target: str) -> tuple[str, Path | None] | None:
    """(spec reference, lock path) when TARGET names a spec or a lockfile, else None."""
    from distill.builtins import builtin_names
    from distill.oci.source import IMAGE_PREFIXES

    if target.startswith(IMAGE_PREFIXES):
        return None
    path = Path(target)
    if target.endswith(".lock.json"):
        stem = path.name[: -len(".lock.json")]
        for candidate in (path.parent / f"{stem}.yaml", path.parent / f"{stem}.yml"):
            if candidate.is_file():
                return str(candidate), path
        if stem in builtin_names():
            return stem, path
        raise SpecError(
            f"{target}: no spec beside the lockfile ({stem}.yaml) and no built-in spec {stem!r}",
            hint="name the spec instead: distill sbom SPEC --lock LOCK",
        )
    if target.endswith((".yaml", ".yml")):
        return target, None
    if not path.exists() and "/" not in target and target in builtin_names():
        return target, None
    return None


def _built(
    args: argparse.Namespace, spec_ref: str, lock_file: Path | None, opts: Any
) -> tuple[Any, Any, str]:
    """The image a spec builds (into the cache's blob store, no output) from its lock when
    there is one (it must match the spec), else from a fresh resolution as ``distill
    build`` does; that lock; and the image's name."""
    from distill.build import build, build_on_image, check_variant
    from distill.cli.build import base_of
    from distill.cli.common import load
    from distill.resolve.lock import check_current, read_lock
    from distill.spec.load import spec_checksum

    check_variant(args.variant)
    args.spec = spec_ref
    spec, path = load(args)
    lock_file = Path(args.lock) if args.lock else lock_file or lock_path(args, path, "lock")
    archs: list[str] = list(spec.archs)
    lock = None
    if lock_file.exists() or lock_file.is_symlink() or args.lock:
        lock = read_lock(lock_file)
        check_current(lock, spec_checksum(spec), lock_file, archs)
    from distill.archive.ondemand import ArchiveOnDemand

    archive = ArchiveOnDemand(spec, opts)

    try:
        if spec.base_image is not None:
            base = base_of(spec, lock, registry_settings(args), False, lock_file, opts.offline)
            result = build_on_image(spec, opts, base, variant=args.variant, archs=archs, spec_path=path)
        else:
            if lock is None:  # as 'distill build' does: the image a fresh resolution builds
                from distill.pipeline import make_lock, resolve

                lock = make_lock(spec, archive.get(), resolve(spec, archive.get()))
            result = build(
                spec, lock, opts, variant=args.variant, archs=archs, fetch=archive.fetch, spec_path=path
            )
    finally:
        archive.close()
    return result, lock, spec.levels[-1][0]


def build_sboms(result: Any, lock: Any, opts: Any, name: str) -> list[Any]:
    """The SBOMs of a build's image (:func:`distill.sbom.for_build`), with progress."""
    from distill.sbom import for_build

    task = opts.reporter.task("writing SBOMs")
    sboms = for_build(result, lock, name, cache_dir=opts.cache_dir, source_date_epoch=opts.source_date_epoch)
    opts.reporter.done(task, f"SBOMs of {len(sboms)} platform{'s' if len(sboms) > 1 else ''}")
    return sboms


def write_build_sboms(result: Any, lock: Any, opts: Any, name: str, output: Path) -> list[Path]:
    """``NAME.spdx.json`` and ``NAME.cdx.json`` beside a build's output (``NAME-ARCH.…``
    per platform of a multi-arch image); the paths written."""
    from distill.sbom import sbom_base, write_documents

    return write_documents(build_sboms(result, lock, opts, name), sbom_base(output))


def _platform_path(output: Path, arch: str) -> Path:
    for suffix in (".spdx.json", ".cdx.json", ".json"):
        if output.name.endswith(suffix) and len(output.name) > len(suffix):
            return output.parent / f"{output.name[: -len(suffix)]}-{arch}{suffix}"
    return output.parent / f"{output.name}-{arch}"


def cmd_sbom(args: argparse.Namespace) -> int:
    from distill.sbom import documents

    opts = options(args)
    opts.source_date_epoch = source_date_epoch()
    if args.archs:
        from distill.distros import ARCHS
        from distill.oci.image import PLATFORMS

        known = set(ARCHS) | {oci for oci, _ in PLATFORMS.values()}
        for a in args.archs:
            if a not in known:
                raise SpecError(f"unknown architecture {a!r}", hint=f"known: {', '.join(ARCHS)}")
    target = spec_target(args.target)
    try:
        if target is not None:
            result, lock, name = _built(args, target[0], target[1], opts)
            sboms = build_sboms(result, lock, opts, args.name or name)
        else:
            task = opts.reporter.task(f"reading {args.target}")
            sboms = documents(
                args.target,
                name=args.name,
                archs=args.archs,
                source_date_epoch=opts.source_date_epoch,
                settings=registry_settings(args),
            )
            opts.reporter.done(task)
    finally:
        opts.reporter.close()
    if args.output is None:
        if len(sboms) > 1:
            raise SpecError(
                f"{args.target} has {len(sboms)} platforms ({', '.join(s.arch for s in sboms)}): one SBOM each",
                hint="pick one with --arch, or write them all with -o FILE (FILE-ARCH.EXT each)",
            )
        sys.stdout.buffer.write(sboms[0].data(args.format))
        sys.stdout.flush()
        return 0
    for s in sboms:
        path = args.output if len(sboms) == 1 else _platform_path(args.output, s.arch)
        if path.is_dir():
            raise OutputError(f"{path} is a directory", hint="-o names the SBOM file")
        write_output(path, s.data(args.format))
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(s.counts.items()))
        print(f"wrote {path} ({s.arch}: {kinds or 'no packages'})")
    return 0
