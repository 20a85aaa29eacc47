"""Debian relation fields: ``Depends: a (>= 1) | b:any, c [amd64] <!nocheck>``.

A field is a conjunction of *clauses*; a clause is a disjunction of
:class:`Relation` alternatives. Architecture lists and build profiles (only found
in source packages) are parsed and kept but do not affect binary resolution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from distill.debian.version import satisfies
from distill.errors import DistillError

_REL = re.compile(
    r"""^\s*
    (?P<name>[a-z0-9][a-z0-9.+\-]*)
    (?::(?P<arch>[a-z0-9\-]+))?
    \s*
    (?:\(\s*(?P<op><<|<=|>=|>>|=|<|>)\s*(?P<version>[0-9A-Za-z][^\s)]*)\s*\))?
    \s*
    (?:\[(?P<archs>[^\]]*)\])?
    \s*
    (?P<profiles>(?:<[^>]*>\s*)*)
    $""",
    re.X,
)

_OBSOLETE_OPS = {"<": "<=", ">": ">="}


@dataclass(frozen=True, slots=True)
class Relation:
    """One alternative: a package name, an optional arch qualifier and version bound."""

    name: str
    op: str | None = None
    version: str | None = None
    arch: str | None = None  # "any", "native" or an architecture name

    def allows(self, version: str | None) -> bool:
        """Whether a package (or a provided name) at ``version`` meets the version bound.

        A provided name without a version satisfies only unversioned relations.
        """
        if self.op is None:
            return True
        if version is None:
            return False
        assert self.version is not None
        return satisfies(version, self.op, self.version)

    def __str__(self) -> str:
        text = self.name if self.arch is None else f"{self.name}:{self.arch}"
        if self.op is not None:
            text += f" ({self.op} {self.version})"
        return text


Clause = tuple[Relation, ...]


class RelationSyntaxError(DistillError, ValueError):
    """A relation field that does not follow Debian policy's grammar."""


def parse_relation(text: str) -> Relation:
    m = _REL.match(text)
    if m is None:
        raise RelationSyntaxError(f"not a Debian relation: {text.strip()!r}")
    op = m.group("op")
    if op is not None:
        op = _OBSOLETE_OPS.get(op, op)
    return Relation(m.group("name"), op, m.group("version"), m.group("arch"))


@lru_cache(maxsize=32768)
def parse_relations(field: str) -> tuple[Clause, ...]:
    """Parse a whole relation field into clauses of alternatives."""
    clauses: list[Clause] = []
    for part in field.split(","):
        if not part.strip():
            continue
        clauses.append(tuple(parse_relation(alt) for alt in part.split("|")))
    return tuple(clauses)


def format_clause(clause: Clause) -> str:
    return " | ".join(str(r) for r in clause)
