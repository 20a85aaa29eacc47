"""A directory walk without recursion.

Python 3.11's :func:`os.walk` recurses once per directory level, so a tree a thousand
directories deep (an application source, a directory given to ``distill audit``) ended
in a ``RecursionError`` traceback. :func:`walk` is ``os.walk(top)`` (top-down, symlinked
directories listed but not entered, unreadable directories skipped) with a stack of its
own; like ``os.walk``, the caller may prune the ``dirs`` list in place.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path


def walk(top: str | Path) -> Iterator[tuple[str, list[str], list[str]]]:
    stack = [os.fspath(top)]
    while stack:
        current = stack.pop()
        try:
            with os.scandir(current) as it:
                entries = list(it)
        except OSError:
            continue
        dirs: list[str] = []
        files: list[str] = []
        for e in entries:
            try:
                is_dir = e.is_dir()
            except OSError:
                is_dir = False
            (dirs if is_dir else files).append(e.name)
        yield current, dirs, files
        for name in reversed(dirs):  # the caller's (possibly pruned) list, in its order
            path = os.path.join(current, name)
            if not os.path.islink(path):
                stack.append(path)
