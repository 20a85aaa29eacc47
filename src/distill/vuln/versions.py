"""Version order per ecosystem, and OSV range evaluation.

Debian: dpkg's order (:mod:`distill.debian.version`, epochs and ``~``); PyPI: PEP 440
(``packaging``); npm: SemVer 2.0 (``univers``, whose npm order is node-semver's);
Maven: Maven's ComparableVersion (``univers``). A version that does not parse in its
ecosystem matches no range (it is reported, never guessed at).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

from packaging.version import InvalidVersion, Version

from distill.debian.version import version_key


def _pypi(v: str) -> Any:
    return Version(v)


def _npm(v: str) -> Any:
    from univers.versions import SemverVersion  # imported when an npm version is compared

    return SemverVersion(v)


def _maven(v: str) -> Any:
    from univers.versions import MavenVersion

    return MavenVersion(v)


_KEYS: dict[str, Callable[[str], Any]] = {"pypi": _pypi, "npm": _npm, "maven": _maven}


@lru_cache(maxsize=65536)
def sort_key(ecosystem: str, version: str) -> Any:
    """A comparable key for ``version`` in ``ecosystem`` (``deb``/``debian:*`` use dpkg's
    order), or None when it is not a version there."""
    if ecosystem == "deb" or ecosystem.startswith("debian"):
        return version_key(version)
    fn = _KEYS.get(ecosystem)
    if fn is None:
        return None
    try:
        return fn(version)
    except (InvalidVersion, ValueError, TypeError):  # univers' InvalidVersion is a ValueError
        return None


def _zero(kind: str, version: str) -> bool:
    return kind == "introduced" and version == "0"


def in_ranges(
    ecosystem: str,
    version: str,
    ranges: tuple[tuple[tuple[str, str], ...], ...],
    versions: tuple[str, ...] = (),
) -> tuple[bool, str | None]:
    """Whether ``version`` is affected by an OSV record's ranges (or listed in its
    ``versions``), and the version that fixes it (the lowest ``fixed`` event above it)."""
    key = sort_key(ecosystem, version)
    if key is None:
        return False, None
    if version in versions:
        affected, fixed = True, None
    else:
        affected, fixed = False, None
    for events in ranges:
        keyed: list[tuple[int, Any, str, str]] = []
        for kind, v in events:
            if _zero(kind, v):
                keyed.append((0, None, kind, v))
                continue
            k = sort_key(ecosystem, v)
            if k is None:
                break  # an event that is no version here: the range cannot be evaluated
            keyed.append((1, k, kind, v))
        else:
            keyed.sort(key=lambda t: (t[0], t[1]) if t[0] else (0, 0))
            hit = False
            for real, k, kind, _v in keyed:
                if kind == "introduced" and (not real or key >= k):
                    hit = True
                elif real and ((kind == "fixed" and key >= k) or (kind == "last_affected" and key > k)):
                    hit = False
            if hit:
                affected = True
                above = [v for real, k, kind, v in keyed if real and kind == "fixed" and k > key]
                if above and fixed is None:
                    fixed = above[0]
    return affected, fixed
