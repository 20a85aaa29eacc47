"""Bounded reading of untrusted input: one place for the size, depth and type limits.

Everything distill reads is input, its own cache included: a spec or requirements file
from someone else's repository, a lock, an image's JSON, a server's answer. The helpers
here refuse what is too large, too deep or not a regular file (a FIFO or a device would
block or never end) with one :class:`~distill.errors.DistillError` line that names the
path and never quotes the file's content. The figures are listed in docs/limits.md.
"""

from __future__ import annotations

import json
import os
import re
import stat
from io import FileIO
from pathlib import Path
from typing import Any

from distill.errors import DistillError

MiB = 1 << 20

# Sizes of single files read whole into memory.
MAX_TEXT = 4 * MiB  # specs, requirements, .dockerignore, .npmrc, Dockerfiles, manifests
MAX_JSON = 64 * MiB  # locks, package-lock.json, OCI index/manifest/config
MAX_JSON_DEPTH = 64  # nesting of arrays/objects in any JSON document
MAX_OCI_JSON = 4 * MiB  # one OCI/docker index, manifest or image config (as containers/image)


def read_regular(
    path: Path, limit: int, *, error: type[DistillError] = DistillError, what: str = ""
) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes.

    Opened without following into a FIFO's wait (``O_NONBLOCK``) and checked with
    ``fstat`` on the open descriptor, so a FIFO, socket or device is refused at once
    instead of blocking, and a file swapped after the check is still the one read.
    """
    label = f"{what} {path}".strip()
    fd, st = _open_regular(path, error, label)
    try:
        if st.st_size > limit:
            raise error(f"{label}: {st.st_size} bytes, larger than the limit of {limit} bytes")
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:  # grew while being read
                raise error(f"{label}: larger than the limit of {limit} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"{label}: cannot be read ({exc.strerror})") from None
    finally:
        os.close(fd)


def read_text(
    path: Path, limit: int = MAX_TEXT, *, error: type[DistillError] = DistillError, what: str = ""
) -> str:
    """A UTF-8 text file (see :func:`read_regular`)."""
    data = read_regular(path, limit, error=error, what=what)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path}: not UTF-8 text (byte {exc.start})".strip()) from None


def json_depth(value: Any) -> int:
    """The nesting depth of a parsed JSON value (iterative: no recursion limit to hit)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in item)
    return deepest


def load_json(
    data: bytes | str,
    *,
    label: str,
    error: type[DistillError] = DistillError,
    limit: int = MAX_JSON,
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """Parse untrusted JSON with a size and nesting limit; errors name ``label`` and a position."""
    if len(data) > limit:
        raise error(f"{label}: {len(data)} bytes of JSON, larger than the limit of {limit} bytes")
    try:
        value = json.loads(data)
    except json.JSONDecodeError as exc:
        raise error(f"{label}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except RecursionError:
        raise error(f"{label}: JSON nested deeper than {max_depth} levels") from None
    except (UnicodeDecodeError, ValueError):
        raise error(f"{label}: not valid JSON") from None
    if json_depth(value) > max_depth:
        raise error(f"{label}: JSON nested deeper than {max_depth} levels")
    return value


def read_json(
    path: Path,
    limit: int = MAX_JSON,
    *,
    error: type[DistillError] = DistillError,
    what: str = "",
    max_depth: int = MAX_JSON_DEPTH,
) -> Any:
    """A JSON file read with :func:`read_regular` and parsed with :func:`load_json`."""
    data = read_regular(path, limit, error=error, what=what)
    return load_json(data, label=f"{what} {path}".strip(), error=error, limit=limit, max_depth=max_depth)


def _open_regular(path: Path, error: type[DistillError], label: str) -> tuple[int, os.stat_result]:
    """A descriptor of a regular file (``O_NONBLOCK``: a FIFO does not block the open),
    and its ``fstat``; anything else is refused with ``error``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{label}: no such file") from None
    except IsADirectoryError:
        raise error(f"{label}: is a directory, not a file") from None
    except OSError as exc:
        raise error(f"{label}: cannot be read ({exc.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = (
                "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file (FIFO, socket or device)"
            )
            raise error(f"{label}: {kind}")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def open_regular(path: Path, *, error: type[DistillError] = DistillError, what: str = "") -> FileIO:
    """A regular file opened for streaming (unbuffered); a FIFO, socket, device or
    directory is refused at once instead of blocking (see :func:`read_regular`)."""
    fd, _ = _open_regular(path, error, f"{what} {path}".strip())
    return os.fdopen(fd, "rb", buffering=0)


# Archives: a stream may expand to EXPANSION_RATIO times its compressed size, or to
# EXPANSION_FLOOR, whichever is more (the audit's rule since its first version; .debs
# and base image layers too). Both can be raised with environment variables.
EXPANSION_RATIO = 100
EXPANSION_FLOOR = 512 * MiB


def env_limit(name: str, default: int) -> int:
    """A limit that the environment variable ``DISTILL_<name>`` may set (a positive integer)."""
    raw = os.environ.get(f"DISTILL_{name}")
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        value = 0
    if value <= 0:
        raise DistillError(f"DISTILL_{name}={raw!r}: not a positive integer")
    return value


def expansion_limit(compressed: int) -> int:
    """How many bytes a compressed stream of ``compressed`` bytes may expand to."""
    ratio = env_limit("MAX_EXPANSION_RATIO", EXPANSION_RATIO)
    floor = env_limit("MAX_EXPANDED_MIB", EXPANSION_FLOOR // MiB) * MiB
    return max(floor, ratio * max(compressed, 0))


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_size(text: str, flag: str = "--max-size") -> int:
    """``500M``, ``2G``, ``1.5GiB``, ``1048576`` -> bytes (binary units), for size flags
    (``cache prune --max-size``, ``push --chunk-size``)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", text)
    if not m:
        raise DistillError(f"{flag} {text[:40]!r} is not a size", hint="e.g. 500M, 2G, 10GiB")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
