"""The local container engines' command lines (podman, docker, and kubectl for debug):
found on ``PATH``, run with a time limit, a failure told as one line — the last line
of what the tool wrote to stderr, cut short (never its whole output)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from distill.errors import DistillError, ImageError

MAX_MESSAGE = 200


def executable(tool: str, what: str, error: type[DistillError] = ImageError, hint: str | None = None) -> str:
    """The path of ``tool`` on PATH; ``error`` ("WHAT: TOOL is not installed") without it."""
    exe = shutil.which(tool)
    if exe is None:
        raise error(f"{what}: {tool} is not installed", hint=hint)
    return exe


def last_line(stderr: str, code: int) -> str:
    """The last non-blank line of a tool's stderr (at most MAX_MESSAGE characters), else
    its exit status."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    return lines[-1][:MAX_MESSAGE] if lines else f"exit status {code}"


def run(
    cmd: Sequence[str],
    what: str,
    *,
    timeout: float,
    error: type[DistillError] = ImageError,
    env: dict[str, str] | None = None,
    check: bool = True,
    hint: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a tool, its output captured; ``error`` when it cannot start, outlives
    ``timeout`` seconds, or (``check``) exits non-zero: "WHAT: TOOL SUBCOMMAND failed: LAST LINE"."""
    name = f"{os.path.basename(cmd[0])} {cmd[1]}" if len(cmd) > 1 else os.path.basename(cmd[0])
    try:
        # Decoded with replacement: a tool's output is input too (a byte that is not UTF-8
        # must not become a traceback).
        proc = subprocess.run(
            list(cmd), capture_output=True, text=True, errors="replace", timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        raise error(f"{what}: {name} did not finish in {timeout:.0f} s") from None
    except OSError as exc:
        raise error(f"{what}: {name} cannot start: {exc.strerror or exc}") from None
    if check and proc.returncode != 0:
        raise error(f"{what}: {name} failed: {last_line(proc.stderr, proc.returncode)}", hint=hint)
    return proc


__all__ = ["MAX_MESSAGE", "executable", "last_line", "run"]
