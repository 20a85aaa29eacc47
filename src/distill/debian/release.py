"""Release files: the signed table of contents of one suite."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime

from distill.debian.deb822 import parse_paragraph
from distill.errors import DistillError


class ReleaseFormatError(DistillError, ValueError):
    """The Release text lacks a required field or has a malformed one."""


@dataclass(frozen=True)
class FileEntry:
    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Release:
    suite: str
    codename: str
    date: datetime | None
    valid_until: datetime | None
    architectures: tuple[str, ...]
    components: tuple[str, ...]
    acquire_by_hash: bool
    all_in_arch_indexes: bool
    files: dict[str, FileEntry] = field(repr=False)

    def matches(self, suite: str) -> bool:
        """Whether this Release is for ``suite`` (its Suite or Codename)."""
        return suite in (self.suite, self.codename)

    def wants_binary_all(self) -> bool:
        """Whether arch:all packages live only in binary-all (apt's rule)."""
        return "all" in self.architectures and not self.all_in_arch_indexes


def _date(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError) as exc:
        raise ReleaseFormatError(f"malformed {name}: {value!r}") from exc


def parse_release(text: str) -> Release:
    fields = parse_paragraph(text)
    files: dict[str, FileEntry] = {}
    for line in fields.get("SHA256", "").splitlines():
        parts = line.split()
        if len(parts) != 3:
            continue
        digest, size, path = parts
        if len(digest) != 64 or not size.isdigit():
            raise ReleaseFormatError(f"malformed SHA256 line: {line.strip()!r}")
        files[path] = FileEntry(path, digest.lower(), int(size))
    if not files:
        raise ReleaseFormatError("the Release file lists no SHA256 checksums")
    suite = fields.get("Suite", "")
    codename = fields.get("Codename", "")
    if not suite and not codename:
        raise ReleaseFormatError("the Release file names neither Suite nor Codename")
    return Release(
        suite=suite,
        codename=codename,
        date=_date(fields.get("Date"), "Date"),
        valid_until=_date(fields.get("Valid-Until"), "Valid-Until"),
        architectures=tuple(fields.get("Architectures", "").split()),
        components=tuple(fields.get("Components", "").split()),
        acquire_by_hash=fields.get("Acquire-By-Hash", "").strip().lower() == "yes",
        all_in_arch_indexes=fields.get("No-Support-for-Architecture-all", "").strip() == "Packages",
        files=files,
    )
