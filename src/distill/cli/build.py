"""``distill build``: a spec (or an app on a base) -> an image in a layout, an archive,
the local engine (``--load``)."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

from distill.cli.common import (
    Subparsers,
    add_common,
    add_spec_args,
    load,
    lock_path,
    mib,
    options,
    source_date_epoch,
)
from distill.resolve.lock import Lock, check_current, read_lock
from distill.spec.load import spec_checksum


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "build",
        help="build the image (OCI layout, or a .tar for podman/docker load)",
        description="Build a reproducible OCI image from the spec: from its lockfile when one is beside "
        "the spec (it must match), else from a fresh resolution. Several architectures make one "
        "multi-arch index. A spec with an 'app' (python, node, java or binary) puts the application "
        "on its flavor: dependencies and code in their own layers, run as 65532 (docs/apps.md). "
        "The image digest is printed on the last line of stdout.",
        epilog="Set SOURCE_DATE_EPOCH to clamp timestamps; otherwise they come from the packages.",
    )
    add_spec_args(p)
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT",
        help="an OCI image layout directory, or OUT.tar: one archive for 'podman load'/'docker load' "
        "(default: ./NAME[-VARIANT].oci)",
    )
    p.add_argument("--variant", default="latest", help="latest (default), nonroot, debug or debug-nonroot")
    p.add_argument(
        "--tag",
        metavar="NAME:TAG",
        help="name the image: ref.name in a layout, RepoTags in a .tar (default: NAME:VARIANT)",
    )
    p.add_argument("--lock", type=Path, help="lockfile path (default: beside the spec)")
    p.add_argument("--locked", action="store_true", help="require a lockfile that matches the spec")
    p.add_argument(
        "--per-arch-tags",
        action="store_true",
        help="in a multi-arch layout, also name each platform's image TAG-ARCH (for tools that cannot "
        "pick a platform from an index, e.g. umoci; index.json then has several entries)",
    )
    p.add_argument(
        "--load",
        nargs="?",
        const="auto",
        choices=["auto", "podman", "docker"],
        metavar="ENGINE",
        help="load the image into the local podman or docker (ENGINE; default: podman if installed, "
        "else docker), tagged with --tag; without -o nothing else is written",
    )
    add_common(p)
    p.set_defaults(func=cmd_build)


def cmd_build(args: argparse.Namespace) -> int:
    from distill.build import BuildResult, build, build_on_layout, check_variant, default_output
    from distill.oci.load import choose_engine, load_form, load_into, qualified
    from distill.oci.sink import check_tag

    check_variant(args.variant)
    spec, path = load(args)
    lock_file = lock_path(args, path, "lock")
    opts = options(args)
    opts.source_date_epoch = source_date_epoch()
    archs: list[str] = list(spec.archs)
    lock: Lock | None = None
    if spec.base_layout is None and ((lock_file.exists() or lock_file.is_symlink()) or args.locked):
        lock = read_lock(lock_file)
        check_current(lock, spec_checksum(spec), lock_file, archs, spec.distro)
    archive = None

    def open_() -> Any:
        nonlocal archive
        if archive is None:
            from distill.pipeline import open_archive

            archive = open_archive(spec, opts)
        return archive

    def fetch(packages: list[Any]) -> None:
        from distill.fetch import fetch_debs

        a = open_()
        fetch_debs(packages, a, a.cache, reporter=opts.reporter, jobs=opts.jobs)

    name = spec.levels[-1][0]
    output = args.output or default_output(name, args.variant)
    tag = check_tag(args.tag) if args.tag else f"{name}:{args.variant}"
    engine = choose_engine(args.load) if args.load else None
    scratch = None
    # podman's storage takes an OCI layout through skopeo, copying only new layers;
    # docker (or podman without skopeo) loads an archive.
    load_kind = load_form(engine) if engine else ".tar"
    if engine and (args.output is None or (args.output.suffix == ".tar") != (load_kind == ".tar")):
        scratch = Path(tempfile.mkdtemp(prefix="distill-load-"))
    try:
        if scratch is not None and args.output is None:
            output = scratch / f"image{load_kind}"  # only loaded, not kept

        def run_build(out: Path) -> BuildResult:
            nonlocal lock
            per_arch_tags = args.per_arch_tags and out == output  # not in the extra form --load takes
            if spec.base_layout is not None:
                return build_on_layout(spec, opts, variant=args.variant, archs=archs, output=out, tag=tag,
                                       spec_path=path, per_arch_tags=per_arch_tags)  # fmt: skip
            if lock is None:
                from distill.pipeline import make_lock, resolve

                lock = make_lock(spec, open_(), resolve(spec, open_()))
            return build(spec, lock, opts, variant=args.variant, archs=archs, output=out, tag=tag, fetch=fetch,
                         spec_path=path, per_arch_tags=per_arch_tags)  # fmt: skip

        result = run_build(output)
        if engine:
            load_from = output
            if (output.suffix == ".tar") != (load_kind == ".tar"):  # the form to load is extra
                assert scratch is not None
                load_from = scratch / f"image{load_kind}"
                run_build(load_from)
            load_into(engine, load_from, tag)
    finally:
        if archive is not None:
            archive.close()
        opts.reporter.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if args.quiet:  # the digest alone
        print(result.digest)
        return 0
    for image in result.images:
        print(
            f"{image.arch}: {len(image.layers)} layers ({', '.join(image.layer_names)}), {image.packages} packages, "
            f"{image.files} files, {mib(image.size)} compressed, {mib(image.tar_size)} uncompressed"
        )
    kind = "archive" if output.suffix == ".tar" else "OCI layout"
    state = "wrote" if result.written else "up to date:"
    if not (engine and args.output is None):
        print(
            f"{state} {kind} {output} ({result.layers_written} layers written, {result.layers_reused} reused)"
        )
    if engine:
        print(f"loaded into {engine} as {qualified(tag)}")
    print(result.digest)
    return 0
