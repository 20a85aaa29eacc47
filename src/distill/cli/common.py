"""What every command family shares: the parser class, the common flags, loading a
spec with its overrides, the options object, and small formatting helpers."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.distros import ARCHS, DISTROS
from distill.errors import SpecError
from distill.progress import make_reporter

if TYPE_CHECKING:  # imported where used: 'distill push' and 'audit' need no spec model
    from distill.oci.registry import RegistrySettings
    from distill.options import Options
    from distill.spec.model import Spec

EXIT_ERROR = 2


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"distill: error: {message} (hint: see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(EXIT_ERROR)


Subparsers = Any  # argparse's _SubParsersAction is private


# The flags more than one command takes, one function per group, so that each means the
# same wherever it appears. Which command takes which: README.md ("Flags").


def add_cache_dir(g: Any) -> None:
    g.add_argument(
        "--cache-dir", type=Path, metavar="DIR", help="cache directory (default: $XDG_CACHE_HOME/distill)"
    )


def add_offline(g: Any, what: str = "use only the cache") -> None:
    g.add_argument("--offline", action="store_true", help=f"{what}; never touch the network")


def add_quiet(g: Any) -> None:
    g.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only errors, warnings that change the result, and the final line",
    )


def add_fail_on(p: argparse.ArgumentParser, what: str = "a finding") -> None:
    """``--fail-on SEVERITY`` of the audit's severities (audit, fleet)."""
    p.add_argument(
        "--fail-on",
        choices=["none", "info", "low", "medium", "high", "critical"],
        default="none",
        help=f"exit 1 when {what} is at least this severe (default: none)",
    )


def add_common(p: argparse.ArgumentParser) -> None:
    """The Debian archive and the cache: lock, why, fetch, build."""
    g = p.add_argument_group("archive and cache")
    add_cache_dir(g)
    add_offline(g)
    g.add_argument(
        "--mirror",
        metavar="URL",
        help="Debian mirror (default: $DISTILL_MIRROR, else the host's apt sources)",
    )
    g.add_argument(
        "--security-mirror",
        metavar="URL",
        help="mirror for the -security suite (default: $DISTILL_SECURITY_MIRROR, else the host's apt "
        "sources, else MIRROR-security)",
    )
    g.add_argument(
        "--nodejs-mirror",
        metavar="URL",
        help="Node.js release mirror for specs with nodejs: (default: $DISTILL_NODEJS_MIRROR)",
    )
    g.add_argument("-j", "--jobs", type=int, default=4, metavar="N", help="parallel downloads (default: 4)")
    add_quiet(g)


def add_arch(p: argparse.ArgumentParser, help: str) -> None:
    from distill.cli.complete import choices

    action = p.add_argument("--arch", action="append", dest="archs", metavar="ARCH", help=help)
    action.completer = choices(ARCHS)  # type: ignore[attr-defined]


def add_distro(p: argparse.ArgumentParser, help: str = "override the spec's distro") -> None:
    p.add_argument("--distro", choices=list(DISTROS), help=help)


def add_spec_args(p: argparse.ArgumentParser) -> None:
    from distill.builtins import builtin_names
    from distill.cli.complete import spec_completer

    p.add_argument(
        "spec",
        metavar="SPEC",
        help=f"spec file, or a built-in name ({', '.join(builtin_names())})",
    ).completer = spec_completer  # type: ignore[attr-defined]
    add_arch(
        p,
        "only this architecture (repeatable; default: the spec's archs — amd64 and arm64 for the "
        "built-ins, the host's for a spec that names none)",
    )
    add_distro(p)


def check_archs(archs: list[str] | None) -> list[str]:
    """The --arch values, each a known Debian architecture, without repeats."""
    for a in archs or []:
        if a not in ARCHS:
            raise SpecError(f"unknown architecture {a!r}", hint=f"known: {', '.join(ARCHS)}")
    return list(dict.fromkeys(archs or []))


def load(args: argparse.Namespace) -> tuple[Spec, Path]:
    # The spec model (pydantic) is imported when a command reads a spec, not at start-up:
    # sign and verify need none of it.
    from distill.spec.load import load_spec, with_overrides

    spec, path = load_spec(args.spec)
    update: dict[str, Any] = {}
    # A --distro other than the spec's own has its own default lock (lock_path)
    args.lock_distro = args.distro if args.distro and args.distro != spec.distro else None
    if args.distro:
        update["distro"] = args.distro
    if args.archs:
        update["archs"] = check_archs(args.archs)
    return with_overrides(spec, **update), path


def options(args: argparse.Namespace) -> Options:
    from distill.options import Options

    if args.jobs < 1:
        raise SpecError("--jobs must be at least 1")
    return Options(
        cache_dir=args.cache_dir,
        offline=args.offline,
        mirror=args.mirror,
        security_mirror=args.security_mirror,
        nodejs_mirror=args.nodejs_mirror,
        jobs=args.jobs,
        reporter=make_reporter(args.quiet),
    )


def lock_path(args: argparse.Namespace, path: Path, attr: str = "output") -> Path:
    explicit = getattr(args, attr, None)
    if explicit:
        return Path(explicit)
    from distill.builtins import is_builtin
    from distill.resolve.lock import default_lock_path

    return default_lock_path(path, is_builtin(path), getattr(args, "lock_distro", None))


def mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


_MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z


def source_date_epoch() -> int | None:
    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return None
    # ASCII digits only (str.isdigit takes '²', which int() refuses: a traceback), and a
    # time that has a date (9999-12-31 at most: later ones were a ValueError traceback).
    if not (raw.isascii() and raw.isdigit()) or int(raw) > _MAX_EPOCH:
        raise SpecError(f"SOURCE_DATE_EPOCH={raw[:40]!r} is not a number of seconds up to {_MAX_EPOCH}")
    return int(raw)


def days(text: str) -> float:
    """A number of days for --older-than: finite and not negative (nan, inf and -1 are refused)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (0 or more)")
    return value


def add_registry(p: argparse.ArgumentParser) -> None:
    """How to reach registries (push, ``from: docker://``, audit of registry images)."""
    g = p.add_argument_group("registry")
    g.add_argument(
        "--username", help="registry user (else DISTILL_REGISTRY_USERNAME or podman/docker auth files)"
    )
    g.add_argument("--password-stdin", action="store_true", help="read the registry password from stdin")
    g.add_argument(
        "--insecure-registry",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="talk plain HTTP to this registry (repeatable; loopback registries always use HTTP)",
    )
    g.add_argument(
        "--ca-cert",
        type=Path,
        metavar="FILE",
        help="trust this PEM CA certificate for registries too (beside the host's CAs)",
    )


def registry_settings(args: argparse.Namespace, plain_http: bool = False) -> RegistrySettings:
    """The registry flags as settings; the password is read from stdin once, here."""
    from distill.oci.registry import RegistrySettings

    auth = None
    if args.username:
        if not args.password_stdin:
            raise SpecError("--username needs --password-stdin (the password is never a flag)")
        auth = (args.username, sys.stdin.readline().rstrip("\n"))
    elif args.password_stdin:
        raise SpecError("--password-stdin needs --username")
    if args.ca_cert is not None and not args.ca_cert.is_file():
        raise SpecError(f"--ca-cert {args.ca_cert}: no such file")
    for host in args.insecure_registry:
        if not host or "/" in host or any(c.isspace() for c in host):
            raise SpecError(f"--insecure-registry {host[:80]!r}: a registry host, as HOST or HOST:PORT")
    return RegistrySettings(
        auth=auth, insecure=frozenset(args.insecure_registry), ca_cert=args.ca_cert, plain_http=plain_http
    )
