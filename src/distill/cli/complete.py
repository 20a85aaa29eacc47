"""Shell completion (bash, zsh, fish) through argcomplete: commands and flags come
from the parser; SPEC completes to the built-in names and ``*.yaml``/``*.yml`` files,
``--arch`` to Debian's architecture names, the fleet's INPUT to manifests, JSON and lists. ``distill completion SHELL`` prints the
script a shell sources (README.md, "Shell completion")."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

from distill.cli.common import Parser, Subparsers

SHELLS = ("bash", "zsh", "fish")


def choices(values: Iterable[str]) -> Callable[..., list[str]]:
    fixed = list(values)

    def complete(prefix: str, **_: Any) -> list[str]:
        return [v for v in fixed if v.startswith(prefix)]

    return complete


def spec_completer(prefix: str, **_: Any) -> list[str]:
    """Built-in names, then spec files and the directories that may hold them."""
    from argcomplete.completers import FilesCompleter

    from distill.builtins import builtin_names

    files = FilesCompleter(allowednames=("yaml", "yml"), directories=True)
    return [n for n in builtin_names() if n.startswith(prefix)] + list(files(prefix))


def files_completer(*extensions: str) -> Callable[..., list[str]]:
    """Files with these extensions, and directories (the fleet's inputs, a baseline)."""

    def complete(prefix: str, **_: Any) -> list[str]:
        from argcomplete.completers import FilesCompleter

        return list(FilesCompleter(allowednames=extensions, directories=True)(prefix))

    return complete


def autocomplete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell's completion request and exit, when this run is one."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    argcomplete.autocomplete(parser)


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "completion",
        help="print the shell completion script (bash, zsh or fish)",
        description="Print the script that makes SHELL complete distill's commands, flags, built-in "
        'names and spec files. bash: eval "$(distill completion bash)" in ~/.bashrc; zsh: the same '
        "in ~/.zshrc; fish: distill completion fish | source, in ~/.config/fish/config.fish.",
    )
    p.add_argument("shell", choices=SHELLS, metavar="SHELL", help="bash, zsh or fish")
    p.set_defaults(func=cmd_completion)


def cmd_completion(args: argparse.Namespace) -> int:
    from argcomplete.shell_integration import shellcode

    sys.stdout.write(shellcode(["distill"], shell=args.shell))
    return 0


__all__ = ["SHELLS", "Parser", "autocomplete", "choices", "files_completer", "register", "spec_completer"]
