"""``distill cache verify|prune`` and ``distill schema``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from distill.cli.common import Parser, Subparsers, add_cache_dir, add_quiet, days, mib
from distill.errors import DistillError


def register(sub: Subparsers) -> None:
    p = sub.add_parser("cache", help="check or trim the cache (verify, prune)")
    csub = p.add_subparsers(dest="cache_command", metavar="ACTION", parser_class=Parser, required=True)
    c = csub.add_parser("verify", help="hash every cache entry; remove bad ones (exit 1 if any)")
    add_cache_dir(c)
    add_quiet(c)
    c = csub.add_parser("prune", help="remove old entries, or the least recently used beyond a size")
    add_cache_dir(c)
    add_quiet(c)
    c.add_argument("--older-than", type=days, metavar="DAYS", help="remove entries unused for DAYS")
    c.add_argument(
        "--max-size", metavar="SIZE", help="then trim to SIZE (e.g. 2G), least recently used first"
    )
    c.add_argument("--keep-lock", type=Path, action="append", default=[], metavar="LOCK",
                   help="never remove what this lockfile needs (repeatable)")  # fmt: skip
    p.set_defaults(func=cmd_cache)

    p = sub.add_parser("schema", help="print the JSON schema of the spec format")
    p.add_argument("-o", "--output", type=Path, help="write to a file instead of stdout")
    p.set_defaults(func=cmd_schema)


def cmd_cache(args: argparse.Namespace) -> int:
    from distill import cachecmd
    from distill.archive.cache import default_cache_dir

    root = (args.cache_dir or default_cache_dir()).expanduser()

    def removed(p: Path, why: str) -> None:
        if not args.quiet:
            print(f"removed {p} ({why})")

    if args.cache_command == "verify":
        report = cachecmd.verify(root, removed)
        print(f"{report.checked} entries checked, {len(report.removed)} files removed")
        return 1 if report.removed else 0
    if args.older_than is None and args.max_size is None:
        raise DistillError("cache prune needs --older-than DAYS and/or --max-size SIZE")
    size = cachecmd.parse_size(args.max_size) if args.max_size is not None else None
    report = cachecmd.prune(
        root,
        older_than_days=args.older_than,
        max_size=size,
        keep=cachecmd.lock_needs(args.keep_lock, root),
        on_removed=removed,
    )
    print(f"{len(report.removed)} files removed, {mib(report.freed)} freed")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from distill.spec.load import spec_schema

    text = json.dumps(spec_schema(), indent=2) + "\n"
    if args.output:
        from distill.output import write_output

        write_output(args.output, text.encode())
    else:
        sys.stdout.write(text)
    return 0
