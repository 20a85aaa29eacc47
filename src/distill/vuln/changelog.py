"""Debian changelogs (``usr/share/doc/PKG/changelog.Debian.gz``): the uploads of a source
package, newest first, each with its version, distributions, urgency and the CVE ids
its text names.

A security upload names the CVEs it fixes (``* CVE-2024-5535: ...``), so the entries
between an installed version and a newer candidate say which CVEs the update fixes:
the archive itself is a vulnerability source that is always reachable where distill
builds. The format is deb-changelog(5); text after the last entry in another format
(``Old Changelog:``, Emacs variables) is skipped, as dpkg-parsechangelog does.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from dataclasses import dataclass, field

from distill.debian.version import version_key
from distill.errors import DistillError
from distill.limits import MiB, env_limit

# The largest changelog.Debian in Debian 13 (linux's) is under 3 MiB; gcc's about 1 MiB.
MAX_CHANGELOG = 32 * MiB
MAX_ENTRIES = 100_000
MAX_NOTE = 200  # characters of the change item kept beside each CVE id

_HEADER = re.compile(r"^(\w[-+0-9a-z.]*) \(([^() \t]+)\)((?:\s+[-+0-9a-z./]+)+);(.*)$", re.I)
_TRAILER = re.compile(r"^ -- (.*?)  ?(\S.*)$")
CVE_ID = re.compile(r"\bCVE-\d{4}-\d{4,}\b")
_ITEM = re.compile(r"^\s*[*+-]\s")


class ChangelogError(DistillError):
    """A changelog that cannot be read (not gzip, too large)."""


@dataclass(frozen=True)
class Entry:
    """One upload: ``source (version) distributions; urgency=...``."""

    source: str
    version: str
    distributions: tuple[str, ...]
    urgency: str
    cves: tuple[str, ...] = ()
    notes: dict[str, str] = field(default_factory=dict)  # CVE id -> the change item naming it
    date: str = ""

    @property
    def security(self) -> bool:
        return any(d.endswith("-security") or d.endswith("/updates") for d in self.distributions)

    def to_json(self) -> list[object]:
        return [
            self.source,
            self.version,
            list(self.distributions),
            self.urgency,
            list(self.cves),
            self.notes,
            self.date,
        ]

    @classmethod
    def from_json(cls, doc: object) -> Entry:
        if not (isinstance(doc, list) and len(doc) == 7):
            raise ValueError("not a changelog entry")
        source, version, dists, urgency, cves, notes, date = doc
        if not (
            isinstance(source, str)
            and isinstance(version, str)
            and isinstance(urgency, str)
            and isinstance(date, str)
            and isinstance(dists, list)
            and all(isinstance(d, str) for d in dists)
            and isinstance(cves, list)
            and all(isinstance(c, str) and CVE_ID.fullmatch(c) for c in cves)
            and isinstance(notes, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in notes.items())
        ):
            raise ValueError("not a changelog entry")
        return cls(source, version, tuple(dists), urgency, tuple(cves), notes, date)


def _urgency(rest: str) -> str:
    for part in rest.split(","):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "urgency":
            return value.strip().split()[0].lower() if value.strip() else "unknown"
    return "unknown"


def _notes(body: list[str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """The CVE ids of an entry's text (first mention first) and, for each, its change item."""
    items: list[str] = []
    for line in body:
        if _ITEM.match(line) or not items:
            items.append(line.strip())
        else:
            items[-1] += " " + line.strip()
    cves: dict[str, str] = {}
    for item in items:
        for cve in CVE_ID.findall(item):
            if cve not in cves:
                text = " ".join(item.lstrip("*+- ").split())
                cves[cve] = text[:MAX_NOTE] + ("…" if len(text) > MAX_NOTE else "")
    return tuple(cves), cves


def parse(text: str, what: str = "changelog") -> list[Entry]:
    """The entries of a changelog, in file order (newest first)."""
    entries: list[Entry] = []
    head: re.Match[str] | None = None
    body: list[str] = []

    def close(date: str) -> None:
        assert head is not None
        cves, notes = _notes(body)
        entries.append(
            Entry(
                head.group(1),
                head.group(2),
                tuple(head.group(3).split()),
                _urgency(head.group(4)),
                cves,
                notes,
                date,
            )
        )
        if len(entries) > MAX_ENTRIES:
            raise ChangelogError(f"{what}: more than {MAX_ENTRIES} entries")

    for line in text.splitlines():
        if head is None:
            m = _HEADER.match(line)
            if m:
                head, body = m, []
            continue
        t = _TRAILER.match(line)
        if t:
            close(t.group(2).strip())
            head = None
            continue
        if _HEADER.match(line):  # an entry without its trailer: closed here
            close("")
            head, body = _HEADER.match(line), []
            continue
        if line.strip():
            body.append(line)
    if head is not None:
        close("")
    return entries


def decompress(data: bytes, what: str) -> str:
    """A gzip'd changelog, bounded (:data:`MAX_CHANGELOG`, ``DISTILL_MAX_CHANGELOG_MIB``)."""
    limit = env_limit("MAX_CHANGELOG_MIB", MAX_CHANGELOG // MiB) * MiB
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            text = f.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise ChangelogError(f"{what}: not a gzip file ({exc})") from None
    if len(text) > limit:
        raise ChangelogError(
            f"{what}: expands beyond {limit >> 20} MiB", hint="DISTILL_MAX_CHANGELOG_MIB raises the limit"
        )
    return text.decode("utf-8", "replace")


def between(entries: list[Entry], after: str, upto: str) -> list[Entry]:
    """The entries with ``after < version <= upto`` (dpkg order): what an update from
    ``after`` to ``upto`` brings."""
    low, high = version_key(after), version_key(upto)
    return [e for e in entries if low < version_key(e.version) <= high]
