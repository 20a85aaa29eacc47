"""A backtracking resolver for Debian binary-package relations.

It follows ``Pre-Depends`` and ``Depends`` breadth first (so the recorded reason
for each package is a shortest chain), honours alternatives, virtual packages
(``Provides``, versioned too), version relations, architecture qualifiers and
``Multi-Arch``, keeps one version per package name, and refuses any set in which
a ``Conflicts`` or ``Breaks`` holds. Where a clause has more than one viable
candidate it remembers the choice and backtracks to the next one on failure.

Preference, per clause: the alternatives in the order written; for each, real
packages before virtual providers; real packages highest version first; providers
by Priority then name. Nothing depends on dict or set iteration order, so the
result is deterministic.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from distill.archive.index import Universe
from distill.debian.packages import PRIORITY_RANK, Package
from distill.debian.relation import Clause, Relation, format_clause
from distill.errors import ResolveError, UnknownPackageError, UnsatisfiableError
from distill.resolve.policy import PrunePolicy

MAX_STEPS = 200_000


@dataclass(frozen=True)
class Reason:
    """Why a package is in the set: ``parent`` (None: the spec asked) and the relation."""

    parent: str | None
    field: str
    relation: str


@dataclass(frozen=True)
class PrunedEdge:
    package: str
    field: str
    relation: str
    reason: str

    def __str__(self) -> str:
        return f"{self.package} {self.field} {self.relation}: {self.reason}"


@dataclass
class Resolution:
    arch: str
    packages: list[Package]
    reasons: dict[str, Reason]
    pruned: list[PrunedEdge] = field(default_factory=list)

    def chain(self, name: str) -> list[tuple[str, Reason]]:
        """The path from the spec down to ``name`` (spec-requested package first)."""
        out: list[tuple[str, Reason]] = []
        seen: set[str] = set()
        cur: str | None = name
        while cur is not None and cur not in seen:
            seen.add(cur)
            reason = self.reasons[cur]
            out.append((cur, reason))
            cur = reason.parent
        out.reverse()
        return out

    def get(self, name: str) -> Package | None:
        return next((p for p in self.packages if p.name == name), None)


@dataclass
class _Failure:
    clause: Clause
    parent: str | None
    field: str
    detail: str


@dataclass
class _Choice:
    index: int  # agenda position of the clause
    agenda_len: int
    trail_len: int
    pruned_len: int
    remaining: list[Package]


def _arch_ok(rel: Relation, pkg: Package, native: str, via_provides: bool) -> bool:
    q = rel.arch
    if q is None:
        return True
    if q == "any":
        return pkg.multi_arch == "allowed" or (via_provides and pkg.multi_arch == "foreign")
    if q == "native":
        return pkg.architecture in (native, "all")
    return pkg.architecture == q or (pkg.architecture == "all" and q == native)


def matches(rel: Relation, pkg: Package, native: str) -> bool:
    """Whether ``pkg`` satisfies ``rel``, directly or through its Provides."""
    if pkg.name == rel.name and rel.allows(pkg.version) and _arch_ok(rel, pkg, native, False):
        return True
    for prov in pkg.provides:
        if prov.name != rel.name:
            continue
        provided_version = prov.version if prov.op == "=" else None
        if rel.allows(provided_version) and _arch_ok(rel, pkg, native, True):
            return True
    return False


def _cut_reason(cut: list[tuple[str, str]]) -> str:
    """``a, b: why; c: why else`` with names grouped by reason, in first-seen order."""
    by_reason: dict[str, list[str]] = {}
    for name, reason in cut:
        names = by_reason.setdefault(reason, [])
        if name not in names:
            names.append(name)
    return "; ".join(f"{', '.join(names)}: {reason}" for reason, names in by_reason.items())


class Resolver:
    """``prefer`` maps package names to a version tried before the others (a lock's, so
    ``distill lock --update PKG`` moves only PKG and what it needs)."""

    def __init__(
        self, universe: Universe, policy: PrunePolicy | None = None, prefer: dict[str, str] | None = None
    ) -> None:
        self.universe = universe
        self.policy = policy or PrunePolicy.make()
        self.arch = universe.arch
        self.prefer = prefer or {}

    # -- candidates ------------------------------------------------------------

    def _candidates(self, clause: Clause, explicit: bool) -> tuple[list[Package], list[tuple[str, str]]]:
        """Ordered candidates for a clause, and the (name, prune reason) pairs that removed others."""
        out: list[Package] = []
        seen: set[tuple[str, str, str]] = set()
        cut: list[tuple[str, str]] = []
        for rel in clause:
            reason = None if explicit else self.policy.reason(rel.name)
            if reason is not None:
                cut.append((rel.name, reason))
                continue
            real = [p for p in self.universe.candidates(rel.name) if matches(rel, p, self.arch)]
            if rel.name in self.prefer:  # stable: the preferred version first, the rest as they were
                real.sort(key=lambda p: p.version != self.prefer[rel.name])
            provs = [p for p in self.universe.providers(rel.name) if matches(rel, p, self.arch)]
            provs.sort(key=lambda p: (PRIORITY_RANK.get(p.priority, 9), p.name))
            for p in real + provs:
                if p.key in seen:
                    continue
                seen.add(p.key)
                if p.name in self.policy.exclude or (
                    not explicit and p.name != rel.name and self.policy.reason(p.name)
                ):
                    cut.append((p.name, self.policy.reason(p.name) or "excluded by the spec"))
                    continue
                out.append(p)
        return out, cut

    # -- the search --------------------------------------------------------------

    def resolve(self, requests: list[Clause]) -> Resolution:
        self._check_requests(requests)
        chosen: dict[str, Package] = {}
        provided: dict[str, list[Package]] = {}
        reasons: dict[str, Reason] = {}
        trail: list[str] = []
        pruned: list[PrunedEdge] = []
        # (clause, parent, field, explicit)
        agenda: list[tuple[Clause, str | None, str, bool]] = [
            (clause, None, "requested", True) for clause in requests
        ]
        choices: list[_Choice] = []
        first_failure: _Failure | None = None
        steps = 0

        def satisfied(clause: Clause) -> bool:
            for rel in clause:
                p = chosen.get(rel.name)
                if p is not None and matches(rel, p, self.arch):
                    return True
                for q in provided.get(rel.name, ()):
                    if matches(rel, q, self.arch):
                        return True
            return False

        def conflict(cand: Package) -> str | None:
            for fld, clauses in (("Conflicts", cand.conflicts), ("Breaks", cand.breaks)):
                for clause in clauses:
                    for rel in clause:
                        others = [chosen[rel.name]] if rel.name in chosen else []
                        others += provided.get(rel.name, [])
                        for q in others:
                            if q.name != cand.name and matches(rel, q, self.arch):
                                return f"{cand} {fld} {rel}, and {q} is chosen"
            for q in chosen.values():
                for fld, clauses in (("Conflicts", q.conflicts), ("Breaks", q.breaks)):
                    for clause in clauses:
                        for rel in clause:
                            if q.name != cand.name and matches(rel, cand, self.arch):
                                return f"{q} is chosen and {fld} {rel}"
            return None

        def add(pkg: Package, reason: Reason) -> None:
            chosen[pkg.name] = pkg
            reasons[pkg.name] = reason
            trail.append(pkg.name)
            for prov in pkg.provides:
                provided.setdefault(prov.name, []).append(pkg)
            for fld, clauses in (("Pre-Depends", pkg.pre_depends), ("Depends", pkg.depends)):
                for clause in clauses:
                    agenda.append((clause, pkg.name, fld, False))

        def undo_to(trail_len: int) -> None:
            while len(trail) > trail_len:
                name = trail.pop()
                pkg = chosen.pop(name)
                reasons.pop(name, None)
                for prov in pkg.provides:
                    lst = provided.get(prov.name)
                    if lst:
                        lst.remove(pkg)
                        if not lst:
                            del provided[prov.name]

        i = 0
        while i < len(agenda):
            steps += 1
            if steps > MAX_STEPS:
                raise ResolveError(
                    "resolution gave up after too many backtracking steps",
                    hint="pin versions or exclude packages to narrow the search",
                )
            clause, parent, fld, explicit = agenda[i]
            if satisfied(clause):
                i += 1
                continue
            cands, cut = self._candidates(clause, explicit)
            if not cands and cut and not explicit:
                pruned.append(PrunedEdge(parent or "spec", fld, format_clause(clause), _cut_reason(cut)))
                i += 1
                continue
            viable: list[Package] = []
            rejected: list[str] = []
            for c in cands:
                other = chosen.get(c.name)
                if other is not None:
                    rejected.append(f"{other} is already chosen")
                    continue
                why = conflict(c)
                if why is not None:
                    rejected.append(why)
                    continue
                viable.append(c)
            if viable:
                if len(viable) > 1:
                    choices.append(_Choice(i, len(agenda), len(trail), len(pruned), viable[1:]))
                add(viable[0], Reason(parent, fld, format_clause(clause)))
                i += 1
                continue
            # Dead end: remember why, then resume at the latest open choice.
            if first_failure is None:
                first_failure = _Failure(clause, parent, fld, self._describe(clause, cands, rejected))
            while choices:
                ch = choices[-1]
                undo_to(ch.trail_len)
                del agenda[ch.agenda_len :]
                del pruned[ch.pruned_len :]
                nxt = ch.remaining.pop(0)
                if not ch.remaining:
                    choices.pop()
                c_clause, c_parent, c_fld, _ = agenda[ch.index]
                # Entries past agenda_len came from packages now undone; those
                # before it are re-examined from the choice point on.
                if chosen.get(nxt.name) is None and conflict(nxt) is None:
                    add(nxt, Reason(c_parent, c_fld, format_clause(c_clause)))
                    i = ch.index + 1
                    break
            else:
                assert first_failure is not None
                raise self._unsatisfiable(first_failure, reasons)
        packages = sorted(chosen.values(), key=lambda p: p.name)
        return Resolution(self.arch, packages, dict(reasons), pruned)

    # -- errors ----------------------------------------------------------------

    def _describe(self, clause: Clause, cands: list[Package], rejected: list[str]) -> str:
        if rejected:
            return rejected[0]
        parts = []
        for rel in clause:
            versions = [p.version for p in self.universe.candidates(rel.name)]
            if versions:
                parts.append(f"{rel.name} has only {', '.join(versions[:4])}")
            elif self.universe.providers(rel.name):
                parts.append(f"no provider of {rel.name} matches")
            else:
                parts.append(f"no package {rel.name} exists for {self.arch}")
        return "; ".join(parts)

    def _unsatisfiable(self, f: _Failure, reasons: dict[str, Reason]) -> UnsatisfiableError:
        chain: list[str] = []
        cur = f.parent
        seen: set[str] = set()
        while cur is not None and cur not in seen:
            seen.add(cur)
            chain.append(cur)
            r = reasons.get(cur)
            cur = r.parent if r else None
        chain.reverse()
        via = " -> ".join(chain) if chain else "the spec"
        return UnsatisfiableError(
            f"cannot satisfy '{format_clause(f.clause)}' ({f.field} of {via}) on {self.arch}: {f.detail}",
            hint="relax the version, exclude the package that needs it, or pin another version",
        )

    def _check_requests(self, requests: list[Clause]) -> None:
        names: list[str] | None = None
        for clause in requests:
            for rel in clause:
                if rel.name in self.policy.exclude:
                    raise ResolveError(
                        f"{rel.name} is both requested and excluded by the spec",
                        hint="remove it from packages or from exclude",
                    )
            if any(self.universe.known(rel.name) for rel in clause):
                continue
            if names is None:
                names = sorted(self.universe.all_names())
            wanted = clause[0].name
            close = difflib.get_close_matches(wanted, names, n=3, cutoff=0.75)
            hint = f"did you mean {', '.join(close)}?" if close else "check the name and the suites"
            raise UnknownPackageError(
                f"unknown package {format_clause(clause)!r}: no suite has it for {self.arch}",
                hint=hint,
            )
