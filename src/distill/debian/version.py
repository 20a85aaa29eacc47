"""Debian version comparison, exactly as dpkg does it.

A version is ``[epoch:]upstream[-revision]``. Comparison goes epoch (numeric), then
upstream, then revision, each with dpkg's ``verrevcmp``: alternating runs of
non-digits (compared character by character, ``~`` before everything, even the end,
letters before other characters) and digits (compared as numbers).

:func:`version_key` turns a version into a tuple that sorts the same way, so
``sorted(versions, key=version_key)`` is dpkg's order and keys can be cached.
"""

from __future__ import annotations

import re
from functools import lru_cache

_RUN = re.compile(r"([^0-9]*)([0-9]*)")

# Key of an exhausted string: non-digit part "end of string" and number 0.
_END: tuple[tuple[int, ...], int] = ((0,), 0)

_ORDER: dict[str, int] = {}


def _order(c: str) -> int:
    o = _ORDER.get(c)
    if o is None:
        if c == "~":
            o = -1
        elif c.isalpha() and c.isascii():
            o = ord(c)
        else:
            o = ord(c) + 256
        _ORDER[c] = o
    return o


def _part_key(s: str) -> tuple[tuple[tuple[int, ...], int], ...]:
    runs: list[tuple[tuple[int, ...], int]] = []
    pos = 0
    n = len(s)
    while pos < n:
        m = _RUN.match(s, pos)
        assert m is not None
        letters, digits = m.group(1), m.group(2)
        runs.append(((*tuple(_order(c) for c in letters), 0), int(digits) if digits else 0))
        pos = m.end()
    # "" and "0" compare equal in dpkg; trailing empty runs carry no information.
    while runs and runs[-1] == _END:
        runs.pop()
    runs.append(_END)
    return tuple(runs)


VersionKey = tuple[int, tuple[tuple[tuple[int, ...], int], ...], tuple[tuple[tuple[int, ...], int], ...]]


@lru_cache(maxsize=65536)
def version_key(version: str) -> VersionKey:
    """A sort key with dpkg's ordering for ``version``."""
    epoch = 0
    rest = version
    colon = version.find(":")
    if colon != -1:
        head = version[:colon]
        if head.isdigit():
            epoch = int(head)
            rest = version[colon + 1 :]
    dash = rest.rfind("-")
    if dash != -1:
        upstream, revision = rest[:dash], rest[dash + 1 :]
    else:
        upstream, revision = rest, ""
    return (epoch, _part_key(upstream), _part_key(revision))


def compare_versions(a: str, b: str) -> int:
    """-1, 0 or 1 as ``a`` sorts before, equal to, or after ``b`` (dpkg's order)."""
    ka, kb = version_key(a), version_key(b)
    return (ka > kb) - (ka < kb)


def satisfies(version: str, op: str, target: str) -> bool:
    """Whether ``version op target`` holds for a Debian relation operator."""
    c = compare_versions(version, target)
    if op == "=":
        return c == 0
    if op == ">=":
        return c >= 0
    if op == "<=":
        return c <= 0
    if op == ">>":
        return c > 0
    if op == "<<":
        return c < 0
    raise ValueError(f"unknown version operator {op!r}")
