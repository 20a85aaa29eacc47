"""Files the user names for a command's output (``-o FILE``, ``--provenance FILE``).

Such a file is written atomically (a reader never sees half of it, and a failed run
leaves the old one), except when the name is a character device or a FIFO
(``-o /dev/null``, ``-o /dev/stdout``, a named pipe): that is written to as it is, because
an atomic write's rename would replace the device with a regular file, for every user
of the machine."""

from __future__ import annotations

import stat
from pathlib import Path

from distill.archive.cache import atomic_write
from distill.errors import OutputError


def is_stream(path: Path) -> bool:
    """Whether ``path`` names (through links) a character device or a FIFO."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


def write_output(path: Path, data: bytes, what: str = "") -> None:
    """Write ``data`` to the user's output ``path``; :class:`OutputError` when it cannot be."""
    try:
        if is_stream(path):
            with path.open("wb") as f:
                f.write(data)
            return
        atomic_write(path, data)
    except OSError as exc:
        label = f"{what} {path}".strip()
        raise OutputError(f"cannot write {label}: {exc.strerror or exc}") from None


__all__ = ["is_stream", "write_output"]
