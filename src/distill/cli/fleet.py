"""``distill fleet``: every workload of a fleet, its images audited once per digest."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from distill.cli.common import (
    EXIT_ERROR,
    Subparsers,
    add_arch,
    add_cache_dir,
    add_fail_on,
    add_quiet,
    add_registry,
    check_archs,
    registry_settings,
)
from distill.errors import FleetError, SpecError
from distill.progress import make_reporter

FORMATS = ("html", "json", "markdown")
_EXTENSIONS = {".html": "html", ".htm": "html", ".json": "json", ".md": "markdown", ".markdown": "markdown"}


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "fleet",
        help="where every workload of a fleet stands: images audited once per digest, migration progress",
        description="Read each INPUT — Kubernetes manifests (a file, a directory, helm template output, List "
        "kinds), the JSON of `kubectl get pods,deployments,statefulsets,daemonsets,cronjobs -A -o json` (a file, "
        "or - for stdin) or a text list of image references (one a line: HOST/REPO:TAG, @sha256:…, podman:NAME, "
        "docker:NAME, an OCI layout or archive) —, resolve every container's image to a digest and audit each "
        "digest once, in parallel, cached by digest (a re-run only resolves tags). Reports per workload its "
        "grade, whether it runs distroless and which flavor fits, shells, package managers, setuid files, root, "
        "debug images, unpinned tags and exec probes; per namespace the migration progress and the attack "
        "surface still removable, the worst offenders first.",
        epilog="Exit status: 0 reported (an image that could not be read is reported with its workload), 1 a "
        "finding at or above --fail-on, 2 nothing could be reported (no workload read) or bad usage. "
        "docs/fleet.md describes the report.",
    )
    from distill.cli.complete import files_completer

    p.add_argument("inputs", metavar="INPUT", nargs="+").completer = files_completer(
        "yaml", "yml", "json", "txt"
    )
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="write the report to FILE (format from its extension)",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="the report's format (default: from -o's extension: .html, .json, .md; without -o the document "
        "goes to stdout and the summary to stderr)",
    )
    p.add_argument(
        "--baseline",
        type=Path,
        metavar="PREVIOUS.json",
        help="a previous JSON report: show the workloads migrated, regressed, new and gone since",
    ).completer = files_completer("json")
    add_fail_on(p, "a workload has a finding that")
    p.add_argument(
        "--default-registry",
        metavar="HOST[:PORT]",
        help="the registry of images named without one (nginx:1.27, team/app), as the container runtime's "
        "default or mirror; one-name images under library/ (default: none, such images are reported unread)",
    )
    p.add_argument(
        "--db",
        action="append",
        metavar="FILE|URL",
        help="vulnerability data for the counts, as for distill scan (default: $DISTILL_VULN_DB); a URL is "
        "read from the cache only, unless --fetch-vuln-data",
    )
    p.add_argument("--fetch-vuln-data", action="store_true", help="download --db URLs missing from the cache")
    p.add_argument(
        "-j", "--jobs", type=int, default=4, metavar="N", help="images read in parallel (default: 4)"
    )
    add_arch(p, "the platform to audit of multi-platform images (default: the host's)")
    add_cache_dir(p)
    add_registry(p)
    add_quiet(p)
    p.set_defaults(func=cmd_fleet)


def _format(args: argparse.Namespace) -> str | None:
    if args.format:
        return str(args.format)
    if args.output is None:
        return None
    fmt = _EXTENSIONS.get(args.output.suffix.lower())
    if fmt is None:
        raise SpecError(
            f"-o {args.output}: the format does not follow from the extension",
            hint="add --format html|json|markdown",
        )
    return fmt


def cmd_fleet(args: argparse.Namespace) -> int:
    from distill.fleet import FleetOptions, run
    from distill.fleet import report as render
    from distill.output import write_output
    from distill.vuln.db import from_environment

    fmt = _format(args)
    if args.jobs < 1:
        raise SpecError("--jobs must be at least 1")
    archs = check_archs(args.archs)
    if len(archs) > 1:
        raise SpecError("distill fleet audits one platform (one --arch)")
    if args.default_registry is not None and (
        not args.default_registry or any(c.isspace() for c in args.default_registry)
    ):
        raise SpecError(f"--default-registry {args.default_registry[:80]!r}: a registry host, as HOST[:PORT]")
    if args.inputs.count("-") > 1:
        raise SpecError("stdin (-) can be read once")
    if "-" in args.inputs and args.password_stdin:
        raise SpecError(
            "--password-stdin and the input - both read stdin", hint="save the inventory to a file"
        )
    options = FleetOptions(
        settings=registry_settings(args),
        cache_dir=args.cache_dir,
        arch=archs[0] if archs else None,
        default_registry=args.default_registry,
        jobs=args.jobs,
        baseline=args.baseline,
        dbs=from_environment(args.db),
        fetch_vuln_data=args.fetch_vuln_data,
    )
    reporter = make_reporter(args.quiet)
    tasks: dict[str, int] = {}

    def progress(what: str, done: int, total: int) -> None:
        if what not in tasks:
            tasks[what] = reporter.task(f"{what} {total} images", total or None)
        if done:
            reporter.advance(tasks[what], 1)
        if done == total:
            reporter.done(tasks[what], f"{what} {total} images: done")

    try:
        doc, inv, images = run(args.inputs, options, progress)
    finally:
        reporter.close()
    if not inv.workloads:
        for e in inv.errors:
            print(f"distill: error: {e}", file=sys.stderr)
        raise FleetError(
            "no workload to report: the inputs hold no Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job "
            "or CronJob, and no image reference"
        )
    for e in doc["errors"]:
        print(f"distill: error: {e}", file=sys.stderr)
    if fmt is not None:
        if fmt == "html":
            from distill.fleet.html import page

            data = page(doc)
        elif fmt == "json":
            data = render.to_json(doc)
        else:
            data = render.markdown(doc)
        if args.output is not None:
            write_output(args.output, data.encode())
        else:
            sys.stdout.write(data)
    render.terminal(doc, sys.stderr if fmt is not None and args.output is None else sys.stdout, args.quiet)
    if not args.quiet and images.audited:
        print(
            f"distill: read {images.audited} images from their sources, the rest from the cache",
            file=sys.stderr,
        )
    if doc["summary"]["images"] == 0 and doc["summary"]["images_failed"] > 0:
        return EXIT_ERROR  # no image could be read: nothing of the fleet's images to report
    return 1 if render.fails(doc, args.fail_on) else 0
