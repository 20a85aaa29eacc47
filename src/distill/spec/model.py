"""The spec model: *what* image to build. Runtime settings (cache, offline, mirror
overrides) are options of the command, never read from here."""

from __future__ import annotations

import platform
from typing import Annotated, Literal, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from distill.debian.relation import Clause, RelationSyntaxError, parse_relations
from distill.distros import ARCHS, DEFAULT_DISTRO, DISTROS

ArchName = Literal["amd64", "arm64", "armhf", "armel", "i386", "ppc64el", "riscv64", "s390x"]
DistroName = Literal["debian13", "debian12"]

_MACHINE_TO_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "armhf",
    "i686": "i386",
    "ppc64le": "ppc64el",
    "riscv64": "riscv64",
    "s390x": "s390x",
}


def host_arch() -> str:
    return _MACHINE_TO_ARCH.get(platform.machine(), "amd64")


def _check_relation(item: str) -> str:
    to_clause(item)
    return item


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSpec(_Model):
    """A repository suite. Without ``url``, the default mirror (host apt sources,
    ``--mirror`` or ``DISTILL_MIRROR``) is used."""

    url: str | None = Field(default=None, description="Repository base URL (http or https)")
    suites: list[str] = Field(min_length=1, description="Suites, e.g. [trixie, trixie-updates]")
    components: list[str] = Field(default_factory=lambda: ["main"])

    @field_validator("url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v


class PruneSpec(_Model):
    """How dependency edges are pruned (see docs/resolver.md)."""

    defaults: bool = Field(default=True, description="Apply distill's default pruning policy")
    keep: list[str] = Field(
        default_factory=list, description="Names to follow even though the default policy cuts them"
    )


class Spec(_Model):
    """A distill image spec (the parts that choose packages)."""

    extends: str | list[str] | None = Field(
        default=None,
        description="Spec(s) this one builds on: a built-in name (static, base, ...) or a path "
        "relative to this file. Packages, exclude and prune.keep add up; other fields override.",
    )
    name: str | None = Field(default=None, description="A name for the image")
    distro: DistroName = Field(default=cast(DistroName, DEFAULT_DISTRO), description="Debian release")
    archs: list[ArchName] = Field(default_factory=lambda: [host_arch()], min_length=1)  # type: ignore[arg-type]
    sources: list[SourceSpec] | None = Field(
        default=None, description="Repositories; default: the distro's suites on the default mirror"
    )
    keyring: list[str] | None = Field(
        default=None, description="OpenPGP keyring files (binary or armored); paths relative to the spec"
    )
    packages: list[Annotated[str, AfterValidator(_check_relation)]] = Field(
        default_factory=list,
        description="Debian relations: 'name', 'name (>= 1.2)', 'name=1.2-3' (exact), 'a | b'",
    )
    exclude: list[str] = Field(default_factory=list, description="Packages never to install")
    prune: PruneSpec = Field(default_factory=PruneSpec)

    @field_validator("archs")
    @classmethod
    def _archs(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("lists an architecture twice")
        return v

    def requests(self) -> list[Clause]:
        return [to_clause(item) for item in self.packages]


def to_clause(item: str) -> Clause:
    """A package entry as a relation clause; ``name=version`` is an exact pin."""
    text = item.strip()
    if "=" in text and "(" not in text and "|" not in text:
        name, _, version = text.partition("=")
        text = f"{name.strip()} (= {version.strip()})"
    try:
        clauses = parse_relations(text)
    except RelationSyntaxError as exc:
        raise ValueError(str(exc)) from None
    if len(clauses) != 1:
        raise ValueError(f"{item!r} must be one package relation (use one list entry each)")
    return clauses[0]


assert set(ARCHS) == set(ArchName.__args__)  # type: ignore[attr-defined]
assert set(DISTROS) == set(DistroName.__args__)  # type: ignore[attr-defined]
