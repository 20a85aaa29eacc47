"""``distill audit`` and ``distill compare``: images, Dockerfiles and manifests judged."""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path
from typing import Any

from distill.cli.common import (
    EXIT_ERROR,
    Subparsers,
    add_arch,
    add_distro,
    add_fail_on,
    add_offline,
    add_quiet,
    add_registry,
    check_archs,
    registry_settings,
)
from distill.errors import DistillError, SpecError
from distill.progress import make_reporter


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "audit",
        help="find the attack surface in images, Dockerfiles and Kubernetes manifests",
        description="Audit each TARGET: an OCI layout (DIR or DIR:REF), an OCI or docker archive (FILE.tar), "
        "a local image (podman:NAME, docker:NAME), a registry image (docker://HOST/REPO:TAG or @sha256:...), "
        "a Dockerfile, a Kubernetes YAML file, or a directory of Dockerfiles and manifests. Images are streamed "
        "layer by layer (verified, nothing extracted); each gets facts, findings, a grade and the distill flavor "
        "that would run it.",
        epilog="Exit status: 0 audited (no finding at or above --fail-on), 1 a finding at or above --fail-on, "
        "2 a target could not be read (corrupt, unreachable, unparsable) or bad usage.",
    )
    p.add_argument("targets", metavar="TARGET", nargs="+")
    _audit_options(p)
    p.add_argument(
        "--format",
        choices=["terminal", "json", "sarif", "markdown"],
        default="terminal",
        help="report format (default: terminal; colour on a TTY)",
    )
    p.add_argument(
        "-o", "--output", type=Path, help="write the report to a file (atomically) instead of stdout"
    )
    add_fail_on(p)
    p.add_argument(
        "--write-spec",
        type=Path,
        metavar="FILE",
        help="write the distill spec that builds the migrated image (one image or Dockerfile target), and "
        "beside it what the image had installed: a pinned requirements.txt, or its package-lock.json",
    )
    add_distro(
        p,
        "the --write-spec spec's distro (default: the one whose Python the image ran, else the flavor's)",
    )
    p.set_defaults(func=cmd_audit)

    p = sub.add_parser(
        "compare",
        help="compare images side by side (size, packages, shell, package manager, setuid, user, findings)",
        description="Audit each IMAGE (any image target of `distill audit`) and print one row per image.",
        epilog="Exit status: 0, or 2 when an image could not be read.",
    )
    p.add_argument("targets", metavar="IMAGE", nargs="+")
    _audit_options(p)
    p.add_argument("--format", choices=["terminal", "json", "markdown"], default="terminal")
    p.set_defaults(func=cmd_compare)


def _audit_options(p: argparse.ArgumentParser) -> None:
    add_arch(
        p,
        "the platform to read from a multi-platform image (repeatable: each platform is one report; "
        "default: the host's, else the first)",
    )
    add_offline(p, "read only local images and files (a docker:// target is an error)")
    add_registry(p)
    p.add_argument(
        "--plain-http",
        action="store_true",
        help="talk HTTP, not HTTPS, to every registry (--insecure-registry names one)",
    )
    add_quiet(p)


def _audit_reports(args: argparse.Namespace, images_only: bool) -> tuple[list[Any], list[str]]:
    from distill.audit import audit, expand_targets

    settings = registry_settings(args, plain_http=args.plain_http)
    reports, errors = [], []
    archs: list[str | None] = [*check_archs(args.archs)] or [None]
    reporter = make_reporter(args.quiet)
    try:
        for target in args.targets:
            try:
                expanded = expand_targets([target])
            except DistillError as exc:
                errors.append(exc.one_line())
                print(f"distill: error: {exc.one_line()}", file=sys.stderr)
                continue
            for t, kind in expanded:
                for arch in archs if kind == "image" else [None]:
                    task = reporter.task(f"auditing {t}" + (f" ({arch})" if arch else ""), None)

                    def progress(done: int, total: int, task: int = task) -> None:
                        reporter.advance(task, 1)

                    t0 = time.perf_counter()
                    try:
                        if images_only and kind != "image":
                            raise SpecError(f"{t} is a {kind}, not an image", hint="distill audit reads it")
                        if args.offline and t.startswith("docker://"):
                            raise SpecError(f"--offline, and {t} is in a registry", hint="drop --offline")
                        reports.append(audit(t, kind, arch=arch, settings=settings, progress=progress))
                    except DistillError as exc:
                        errors.append(exc.one_line())
                        print(f"distill: error: {exc.one_line()}", file=sys.stderr)
                        continue
                    reporter.done(task, f"audited {t} ({time.perf_counter() - t0:.2f} s)")
    finally:
        reporter.close()
    return reports, errors


def cmd_audit(args: argparse.Namespace) -> int:
    from distill.audit import rank
    from distill.audit import report as render
    from distill.audit.recommend import dockerfile_name, spec_for, write_spec
    from distill.output import write_output

    if args.write_spec and (len(args.targets) != 1 or len(args.archs or []) > 1):
        raise SpecError("--write-spec takes one image or Dockerfile target (and at most one --arch)")
    reports, errors = _audit_reports(args, False)
    buf = io.StringIO()
    if args.format == "json":
        buf.write(render.to_json(reports, errors))
    elif args.format == "sarif":
        buf.write(render.sarif(reports, errors))
    elif args.format == "markdown":
        buf.write(render.markdown(reports, errors))
    if args.format == "terminal":
        if args.output:
            render.terminal(reports, errors, buf)
        else:
            render.terminal(reports, [], sys.stdout)
    if args.output:
        write_output(args.output, buf.getvalue().encode())
    elif args.format != "terminal":
        sys.stdout.write(buf.getvalue())
    if args.write_spec and reports:
        r = reports[0]
        rec = r.recommendation or {}
        if r.kind == "kubernetes":
            raise SpecError("--write-spec needs an image or a Dockerfile target")
        text = spec_for(
            rec,
            dockerfile_name(r.target if r.kind == "image" else Path(r.target).parent.name or "app"),
            r.target,
            rec.get("ports", []),
            rec.get("architecture") or (args.archs[0] if args.archs else None),
            args.distro,
            r.files,
        )
        written = write_spec(args.write_spec, text, r.files)
        if not args.quiet:
            print(
                f"distill: wrote {', '.join(map(str, written))} (distill {rec['flavor']}); build it with "
                f"`distill build {args.write_spec} --load`",
                file=sys.stderr,
            )
    if errors:
        return EXIT_ERROR
    if args.fail_on != "none" and any(
        rank(f.severity) >= rank(args.fail_on) for r in reports for f in r.findings
    ):
        return 1
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from distill.audit import report as render

    reports, errors = _audit_reports(args, True)
    if reports:
        render.compare_table(reports, sys.stdout, args.format)
    return EXIT_ERROR if errors else 0
