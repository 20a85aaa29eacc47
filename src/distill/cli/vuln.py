"""``distill outdated`` and ``distill scan``: keeping images current."""

from __future__ import annotations

import argparse
import datetime as dt
import io
import sys
from pathlib import Path
from typing import Any

from distill.cli.common import EXIT_ERROR, Subparsers, add_common, add_registry, options, registry_settings
from distill.errors import DistillError, SpecError

TARGETS = (
    "a spec (its lock beside it, or --lock), a lock (NAME.lock.json), an SBOM (SPDX or CycloneDX JSON: "
    "distill's, Syft's, Trivy's) or an image: an OCI layout (DIR[:REF]), an OCI or docker archive, "
    "podman:NAME, docker:NAME, docker://HOST/REPO:TAG"
)


def _target_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", help="the architecture to read (a lock's section, an image's platform)")
    p.add_argument(
        "--distro", choices=["debian13", "debian12"], help="the Debian release, for an SBOM that does not say"
    )
    p.add_argument("--lock", type=Path, help="a spec's lockfile (default: beside the spec)")
    p.add_argument(
        "--keyring",
        action="append",
        type=Path,
        metavar="FILE",
        help="keyring of the release's suites on --mirror (default: the host's Debian keyring)",
    )
    add_registry(p)
    p.add_argument(
        "--plain-http", action="store_true", help="talk HTTP, not HTTPS, to every registry (as distill audit)"
    )
    p.add_argument(
        "-o", "--output", type=Path, help="write the report to a file (atomically) instead of stdout"
    )
    add_common(p)


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "outdated",
        help="list the package updates waiting in the suites, security updates first, with the CVEs they fix",
        description="For every locked or installed Debian package of each TARGET, the newest candidate in the "
        "suites (the target's own and its release's, -updates and -security) and, read from the candidate's "
        f"changelog, the CVE ids and urgency of the uploads in between. TARGET: {TARGETS}.",
        epilog="Exit status: 0 nothing security-relevant waits, 1 a security update waits (for a nightly job "
        "that opens a rebuild), 2 a target could not be read or bad usage. Take updates with "
        "'distill lock SPEC --update [PKG...]'.",
    )
    p.add_argument("targets", metavar="TARGET", nargs="+")
    p.add_argument("--format", choices=["terminal", "json", "markdown"], default="terminal")
    _target_options(p)
    p.set_defaults(func=cmd_outdated)

    p = sub.add_parser(
        "scan",
        help="find the vulnerabilities of specs, locks, SBOMs and images",
        description="Match each TARGET's packages against the archive's changelogs (always), a Debian Security "
        "Tracker JSON export and OSV records (--db or DISTILL_VULN_DB): Debian packages by source package "
        f"and version, PyPI, npm and Maven packages by OSV ranges. TARGET: {TARGETS}.",
        epilog="Exit status: 0 scanned (nothing at or above --fail-on), 1 a finding at or above --fail-on, "
        "2 a target or a data source could not be read, the data does not cover the target's release, "
        "or bad usage.",
    )
    p.add_argument("targets", metavar="TARGET", nargs="+")
    p.add_argument(
        "--db",
        action="append",
        metavar="FILE|DIR|URL",
        help="vulnerability data: the Debian Security Tracker's JSON export, an OSV record, a directory of them "
        "or an ecosystem's all.zip; a path or an http(s) URL (repeatable; default: $DISTILL_VULN_DB, "
        "separated by spaces). Read into an indexed cache once; --offline uses the cached copy of a URL",
    )
    p.add_argument("--format", choices=["terminal", "json", "sarif", "cyclonedx"], default="terminal")
    p.add_argument(
        "--fail-on",
        choices=["none", "unknown", "negligible", "low", "medium", "high", "critical"],
        default="none",
        help="exit 1 when a finding (not waived) is at least this severe (default: none)",
    )
    p.add_argument(
        "--ignore",
        type=Path,
        metavar="FILE",
        help="waivers: YAML 'waivers:' of {id, reason, package, expires}; an expired waiver stops hiding its finding",
    )
    p.add_argument("--only-fixed", action="store_true", help="only findings that have a fix")
    _target_options(p)
    p.set_defaults(func=cmd_scan)


def _write(args: argparse.Namespace, text: str) -> None:
    from distill.output import write_output

    if args.output:
        write_output(args.output, text.encode())
    else:
        sys.stdout.write(text)


def _each(args: argparse.Namespace, opts: Any, fn: Any) -> tuple[list[Any], list[str]]:
    """``fn(target)`` for every target; a target that cannot be read is one error line and
    the others go on (exit status 2 at the end, as ``distill audit`` does)."""
    from distill.vuln import open_target

    if args.lock and len(args.targets) != 1:
        raise SpecError("--lock takes one spec target")
    settings = registry_settings(args, plain_http=args.plain_http)
    out, errors = [], []
    for t in args.targets:
        try:
            target = open_target(
                t,
                opts,
                arch=args.arch,
                distro=args.distro,
                lock_file=args.lock,
                keyrings=tuple(args.keyring) if args.keyring else None,
                settings=settings,
            )
            out.append(fn(target))
        except DistillError as exc:
            errors.append(exc.one_line())
            print(f"distill: error: {exc.one_line()}", file=sys.stderr)
    return out, errors


def cmd_outdated(args: argparse.Namespace) -> int:
    from distill.vuln import outdated
    from distill.vuln import report as render

    opts = options(args)
    try:
        reports, errors = _each(args, opts, lambda t: outdated(t, opts))
    finally:
        opts.reporter.close()
    if args.format == "json":
        _write(args, render.outdated_json(reports, errors))
    elif args.format == "markdown":
        _write(args, render.outdated_markdown(reports))
    elif args.output:
        buf = io.StringIO()
        render.outdated_terminal(reports, buf)
        _write(args, buf.getvalue())
    else:
        render.outdated_terminal(reports, sys.stdout)
    if errors:
        return EXIT_ERROR
    return 1 if any(r.security for r in reports) else 0


def cmd_scan(args: argparse.Namespace) -> int:
    from distill.archive.cache import Cache
    from distill.vuln import db as vdb
    from distill.vuln import report as render
    from distill.vuln import scan
    from distill.vuln.scan import read_waivers

    opts = options(args)
    try:
        waivers = read_waivers(args.ignore) if args.ignore else None
        cache = Cache(opts.cache_dir)
        dbs = [vdb.load(spec, cache, offline=opts.offline) for spec in vdb.from_environment(args.db)]
        results, errors = _each(args, opts, lambda t: scan(t, opts, dbs, waivers, args.only_fixed))
    finally:
        opts.reporter.close()
    if args.format == "json":
        _write(args, render.scan_json(results, errors))
    elif args.format == "sarif":
        _write(args, render.sarif(results, errors))
    elif args.format == "cyclonedx":
        stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        _write(args, render.cyclonedx(results, stamp))
    elif args.output:
        buf = io.StringIO()
        render.scan_terminal(results, buf)
        _write(args, buf.getvalue())
    else:
        render.scan_terminal(results, sys.stdout)
    if errors:
        return EXIT_ERROR
    if args.fail_on != "none" and any(r.at_least(args.fail_on) for r in results):
        return 1
    return 0
