"""``distill publish``: the whole family (or the specs named), every variant and
architecture, built in one process and pushed to one registry namespace."""

from __future__ import annotations

import argparse
from pathlib import Path

from distill.cli.common import Subparsers, add_common, add_registry, mib, options, source_date_epoch
from distill.cli.push import add_push_flags, settings_for_push
from distill.distros import ARCHS, DISTROS
from distill.errors import SpecError

VARIANTS = "latest, nonroot, debug, debug-nonroot"


def register(sub: Subparsers) -> None:
    from distill.family import FAMILY

    p = sub.add_parser(
        "publish",
        help="build the family (every flavor, variant and arch) and push it to a registry",
        description="Build every SPEC (default: the built-in family, "
        + ", ".join(FAMILY)
        + ") in every variant and architecture, and push one multi-arch index per variant to "
        "REGISTRY/NAMESPACE/NAME-DISTRO:VARIANT, plus NAME:VARIANT for the first (default) distro, "
        "as the distroless images are tagged. One resolution per spec (its lock when present and "
        "current), one layer cache, one push session: a layer shared across the family is uploaded "
        "once and mounted elsewhere; an index whose tag already names it is only checked. The last "
        "lines of stdout are REF@sha256:... for every tag (docs/publish.md).",
        epilog="Exit status: 0 published, 2 an error (one line; a tag only ever names a complete image).",
    )
    p.add_argument(
        "specs",
        metavar="SPEC",
        nargs="*",
        help="spec files or built-in names, published in this order (default: the family)",
    )
    p.add_argument(
        "--registry",
        required=True,
        metavar="REGISTRY[/NAMESPACE]",
        help="where the repositories go, e.g. 127.0.0.1:5000/distroless (the host is always named)",
    )
    p.add_argument(
        "--distro",
        action="append",
        dest="distros",
        choices=sorted(DISTROS),
        help="build for this distro (repeatable; the first gets the version-less alias; default: the "
        "spec's own)",
    )
    p.add_argument(
        "--arch",
        action="append",
        dest="archs",
        choices=ARCHS,
        metavar="ARCH",
        help="only this architecture (repeatable; default: the spec's archs)",
    )
    p.add_argument(
        "--variant",
        action="append",
        dest="variants",
        metavar="VARIANT",
        help=f"only this variant (repeatable; default: {VARIANTS})",
    )
    p.add_argument("--no-alias", action="store_true", help="no version-less NAME:VARIANT tags")
    p.add_argument(
        "--lock-dir",
        type=Path,
        metavar="DIR",
        help="read each lock from DIR/NAME-DISTRO.lock.json, and write it there when made afresh "
        "(default: the lock beside the spec, as 'distill build' reads it; never written)",
    )
    p.add_argument("--locked", action="store_true", help="require a current lock for every spec and distro")
    p.add_argument(
        "-o",
        "--summary",
        type=Path,
        metavar="FILE",
        help="write a JSON summary: every reference -> digest, and what each push did",
    )
    p.add_argument("--dry-run", action="store_true", help="print the references it would push, and exit")
    add_push_flags(p)
    add_common(p)
    add_registry(p)
    p.set_defaults(func=cmd_publish)


def cmd_publish(args: argparse.Namespace) -> int:
    from distill.publish import parse_namespace, plan, publish, write_summary

    namespace = parse_namespace(args.registry)
    if args.locked and args.lock_dir is None and len(args.distros or []) > 1:
        raise SpecError(
            "--locked with several --distro needs --lock-dir (one lock beside a spec serves one distro)"
        )
    flavors = plan(args.specs, args.distros, args.archs, alias=not args.no_alias, lock_dir=args.lock_dir)
    variants = list(dict.fromkeys(args.variants or []))
    if args.dry_run:
        from distill.build import VARIANTS, check_variant

        for variant in variants:
            check_variant(variant)
        for flavor in flavors:
            for variant in variants or VARIANTS:
                refs = [str(namespace.ref(r, variant)) for r in flavor.repositories()]
                print(f"{' '.join(refs)}  ({', '.join(flavor.spec.archs)})")
        return 0
    settings = settings_for_push(args)
    opts = options(args)
    opts.source_date_epoch = source_date_epoch()
    try:
        summary = publish(flavors, namespace, opts, settings, variants=variants or None, locked=args.locked)
    finally:
        opts.reporter.close()
    if args.summary is not None:
        write_summary(summary, args.summary)
    for p in summary.images:
        state = (
            "up to date"
            if p.up_to_date
            else f"{_n(p.push.uploaded, 'blob')} uploaded ({mib(p.push.uploaded_bytes)}), {p.push.mounted} mounted, "
            f"{p.push.existing} already there"
        )
        print(f"{p.refs[0]}: {len(p.platforms)} platforms, {mib(p.compressed_bytes)}; {state}")
    totals = summary.to_json()["totals"]
    print(
        f"published {_n(totals['indexes'], 'index', 'indexes')} ({_n(totals['images'], 'image')}) to "
        f"{namespace} in {summary.seconds:.1f} s: {_n(totals['uploaded'], 'blob')} uploaded "
        f"({mib(totals['uploaded_bytes'])}), {totals['mounted']} mounted, {totals['existing']} already "
        f"there; {totals['up_to_date']} up to date"
    )
    for ref, digest in summary.refs().items():
        print(f"{ref}@{digest}")
    return 0


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"
