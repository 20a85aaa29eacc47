"""Typed records for the binary packages of a Packages index."""

from __future__ import annotations

from dataclasses import dataclass

from distill.debian.relation import Clause, Relation, parse_relations
from distill.errors import DistillError

PRIORITY_RANK = {"required": 0, "important": 1, "standard": 2, "optional": 3, "extra": 4}


@dataclass(frozen=True, slots=True)
class Package:
    """One binary package as an archive offers it, with where it came from."""

    name: str
    version: str
    architecture: str
    multi_arch: str
    depends: tuple[Clause, ...]
    pre_depends: tuple[Clause, ...]
    conflicts: tuple[Clause, ...]
    breaks: tuple[Clause, ...]
    provides: tuple[Relation, ...]
    filename: str
    size: int
    sha256: str
    installed_size: int
    source: str
    source_version: str
    priority: str
    essential: bool
    suite: str
    component: str

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.name, self.version, self.architecture)

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.architecture})"

    def provided(self, name: str) -> list[str | None]:
        """Versions at which this package provides ``name`` (None: unversioned)."""
        return [r.version for r in self.provides if r.name == name]


class PackageFormatError(DistillError, ValueError):
    """A Packages paragraph lacks a required field."""


def package_from_fields(fields: dict[str, str], suite: str, component: str) -> Package:
    try:
        name = fields["Package"].strip()
        version = fields["Version"].strip()
        arch = fields["Architecture"].strip()
        filename = fields["Filename"].strip()
        size = int(fields["Size"])
        sha256 = fields["SHA256"].strip().lower()
    except (KeyError, ValueError) as exc:
        raise PackageFormatError(
            f"package paragraph {fields.get('Package', '?')!r} lacks or mangles {exc}"
        ) from exc
    source_field = fields.get("Source", "").strip()
    source, source_version = name, version
    if source_field:
        source, _, rest = source_field.partition(" ")
        if rest.startswith("(") and rest.endswith(")"):
            source_version = rest[1:-1].strip()
    provides: tuple[Relation, ...] = tuple(
        alt for clause in parse_relations(fields.get("Provides", "")) for alt in clause
    )
    installed = fields.get("Installed-Size", "0").strip()
    return Package(
        name=name,
        version=version,
        architecture=arch,
        multi_arch=fields.get("Multi-Arch", "no").strip(),
        depends=parse_relations(fields.get("Depends", "")),
        pre_depends=parse_relations(fields.get("Pre-Depends", "")),
        conflicts=parse_relations(fields.get("Conflicts", "")),
        breaks=parse_relations(fields.get("Breaks", "")),
        provides=provides,
        filename=filename,
        size=size,
        sha256=sha256,
        installed_size=int(installed) if installed.isdigit() else 0,
        source=source,
        source_version=source_version,
        priority=fields.get("Priority", "optional").strip(),
        essential=fields.get("Essential", "").strip() == "yes",
        suite=suite,
        component=component,
    )
