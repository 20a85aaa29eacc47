"""The command line: flags -> spec and options -> library calls; renders errors.

One module per command family, each with ``register(subparsers)``:
:mod:`~distill.cli.packages` (lock, why, fetch), :mod:`~distill.cli.build`, :mod:`~distill.cli.push`,
:mod:`~distill.cli.publish`, :mod:`~distill.cli.sbom`, :mod:`~distill.cli.sign` (keygen, sign, verify,
attest, verify-attestation), :mod:`~distill.cli.audit` (audit, compare), :mod:`~distill.cli.vuln`
(outdated, scan), :mod:`~distill.cli.fleet` (fleet), :mod:`~distill.cli.debug` (debug), :mod:`~distill.cli.cache` (cache, schema), :mod:`~distill.cli.complete`
(completion, and the completers the others attach).

Exit codes: 0 success; 1 a signature or attestation that does not verify
(``distill verify``, ``verify-attestation``); 2 a user-facing error (bad spec,
unreachable mirror, a mirror's failed verification, unsatisfiable request, stale
lock, a wrong password, ...), printed as one line; 130 interrupted; 141 the reader
of stdout went away (``| head``), nothing printed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from distill import __version__
from distill.cli.common import EXIT_ERROR, Parser
from distill.errors import DistillError, VerificationError

FAMILIES = ("packages", "build", "push", "publish", "sbom", "sign", "audit", "vuln", "fleet", "debug", "cache",
            "complete")  # fmt: skip
# Which family registers each command: a command line imports its own family's module
# only (start-up is part of every command's time); --help, completion and an unknown
# command take them all. tests/test_cli.py checks this against what the families register.
COMMANDS = {
    "lock": "packages", "why": "packages", "fetch": "packages", "build": "build", "push": "push",
    "publish": "publish", "sbom": "sbom", "keygen": "sign", "sign": "sign", "verify": "sign", "attest": "sign",
    "verify-attestation": "sign", "audit": "audit", "compare": "audit", "outdated": "vuln", "scan": "vuln",
    "fleet": "fleet", "debug": "debug", "cache": "cache", "schema": "cache", "completion": "complete",
}  # fmt: skip


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every command, or of ``command`` alone (when it is one)."""
    from distill.builtins import builtin_names

    parser = Parser(
        prog="distill",
        description="Build distroless container images straight from Debian packages.",
        epilog=f"Built-in specs: {', '.join(builtin_names())} (each for amd64 and arm64 unless --arch "
        "picks one; a spec of your own builds its archs:, else the host's architecture). Errors are printed "
        "as one line and exit with status 2 (a signature that does not verify: 1). 'distill COMMAND --help' "
        "lists each command's flags; the spec format is in docs/spec.md.",
    )
    parser.add_argument("--version", action="version", version=f"distill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for family in [COMMANDS[command]] if command in COMMANDS else FAMILIES:
        importlib.import_module(f"distill.cli.{family}").register(sub)
    return parser


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (and SIGHUP) unwinds like an exception, so every temporary file and directory is
    # removed on the way out (the default action would kill the process where it stands).
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)  # a lost terminal: the same clean-up
    argv = sys.argv[1:] if argv is None else argv
    if "_ARGCOMPLETE" in os.environ:
        from distill.cli import complete

        complete.autocomplete(build_parser())  # a shell's completion request answers and exits here
    parser = build_parser(argv[0] if argv else None)
    after: list[str] = []
    if argv[:1] == ["debug"] and "--" in argv:
        # 'distill debug TARGET -- COMMAND ...': everything after the first -- is the
        # command, options included (argparse would read them, or eat a second --).
        at = argv.index("--")
        argv, after = argv[:at], argv[at + 1 :]
    args = parser.parse_args(argv)
    if after:
        args.command_args = after
    if args.command is None:
        parser.print_help()
        return EXIT_ERROR
    try:
        code: int = args.func(args)
        sys.stdout.flush()  # here, not at exit: a closed pipe is then the BrokenPipeError below
        return code
    except BrokenPipeError:
        # The reader went away (`distill … | head`): stop quietly, as a command killed by
        # SIGPIPE does, with its status; stdout goes to /dev/null so that the flush at
        # exit has nowhere to fail.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + 13
    except VerificationError as exc:
        print(f"distill: verification failed: {exc.one_line()}", file=sys.stderr)
        from distill.cli.sign import EXIT_VERIFY

        return EXIT_VERIFY
    except DistillError as exc:
        print(f"distill: error: {exc.one_line()}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("distill: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"distill: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_ERROR


__all__ = ["EXIT_ERROR", "build_parser", "main"]
