from __future__ import annotations

from collections.abc import Callable

import pytest

from conftest import BASIC
from debrepo import Pkg
from distill.archive.index import Universe
from distill.debian.relation import parse_relations
from distill.errors import ResolveError, UnknownPackageError, UnsatisfiableError
from distill.resolve.policy import PrunePolicy
from distill.resolve.solver import Resolver

U = Callable[..., Universe]


def solve(u: Universe, *names: str, policy: PrunePolicy | None = None) -> dict[str, str]:
    requests = [c for n in names for c in parse_relations(n)]
    res = Resolver(u, policy).resolve(requests)
    return {p.name: p.version for p in res.packages}


def test_follows_depends_and_prunes_script_only_edges(universe: U) -> None:
    u = universe(BASIC)
    res = Resolver(u).resolve(list(parse_relations("app, base-files")))
    names = [p.name for p in res.packages]
    assert names == ["app", "base-files", "gcc-base", "libc6", "libgcc-s1", "tzdata"]
    pruned = {(e.package, e.relation) for e in res.pruned}
    assert pruned == {("base-files", "awk"), ("tzdata", "debconf (>= 0.5) | debconf-2.0")}
    # the chain that pulled gcc-base in, shortest first
    assert [n for n, _ in res.chain("gcc-base")] == ["app", "libc6", "libgcc-s1", "gcc-base"]


def test_without_default_policy_everything_is_followed(universe: U) -> None:
    got = solve(universe(BASIC), "app", "base-files", policy=PrunePolicy.make(defaults=False))
    assert {"mawk", "debconf", "perl-base"} <= set(got)


def test_keep_and_exclude(universe: U) -> None:
    got = solve(universe(BASIC), "app", "base-files", policy=PrunePolicy.make(keep=["awk", "mawk"]))
    assert "mawk" in got and "debconf" not in got
    got = solve(universe(BASIC), "app", policy=PrunePolicy.make(exclude=["gcc-base"]))
    assert "gcc-base" not in got and "libgcc-s1" in got
    with pytest.raises(ResolveError, match="both requested and excluded"):
        solve(universe(BASIC), "app", policy=PrunePolicy.make(exclude=["app"]))


def test_explicit_request_beats_default_policy(universe: U) -> None:
    assert "perl-base" in solve(universe(BASIC), "perl-base")


def test_alternatives_in_order_and_fallback(universe: U) -> None:
    u = universe([Pkg("x", depends="a | b"), Pkg("y", depends="missing | b"), Pkg("a"), Pkg("b")])
    assert set(solve(u, "x")) == {"x", "a"}
    assert set(solve(u, "y")) == {"y", "b"}


def test_real_package_preferred_over_provider(universe: U) -> None:
    u = universe([Pkg("x", depends="foo"), Pkg("foo", "1"), Pkg("aaa-provides-foo", provides="foo")])
    assert set(solve(u, "x")) == {"x", "foo"}


def test_virtual_and_versioned_provides(universe: U) -> None:
    u = universe(
        [
            Pkg("x", depends="mta"),
            Pkg("y", depends="libssl3 (>= 3.5)"),
            Pkg("z", depends="libold (>= 2)"),
            Pkg("exim", priority="standard", provides="mta"),
            Pkg("postfix", priority="optional", provides="mta"),
            Pkg("libssl3t64", "3.5.1", provides="libssl3 (= 3.5.1)"),
            Pkg("libold-unversioned", provides="libold"),
        ]
    )
    assert set(solve(u, "x")) == {"x", "exim"}  # by Priority, then name
    assert set(solve(u, "y")) == {"y", "libssl3t64"}
    with pytest.raises(UnsatisfiableError, match="libold"):
        solve(u, "z")  # an unversioned Provides never satisfies a versioned relation


def test_version_relations_pick_matching_version(universe: U) -> None:
    u = universe(
        [Pkg("lib", "1.0"), Pkg("lib", "2.0"), Pkg("lib", "3.0"), Pkg("old-user", depends="lib (<< 3)")],
    )
    assert solve(u, "old-user")["lib"] == "2.0"
    assert solve(u, "lib")["lib"] == "3.0"
    assert solve(u, "lib (= 1.0)")["lib"] == "1.0"


def test_highest_version_across_suites_wins(universe: U) -> None:
    u = universe([Pkg("lib", "1.0-1")], [Pkg("lib", "1.0-1+deb13u1")])
    res = Resolver(u).resolve(list(parse_relations("lib")))
    assert (res.packages[0].version, res.packages[0].suite) == ("1.0-1+deb13u1", "suite1")


def test_arch_qualifiers(universe: U) -> None:
    u = universe(
        [
            Pkg("python3", multi_arch="allowed"),
            Pkg("tcl", multi_arch="no"),
            Pkg("tool", multi_arch="foreign", provides="toolish"),
            Pkg("uses-any", depends="python3:any"),
            Pkg("uses-any-bad", depends="tcl:any"),
            Pkg("uses-native", depends="tcl:native"),
            Pkg("uses-virtual-any", depends="toolish:any"),
            Pkg("uses-other-arch", depends="tcl:arm64"),
            Pkg("indep", arch="all"),
            Pkg("uses-indep-native", depends="indep:native"),
        ]
    )
    assert "python3" in solve(u, "uses-any")
    with pytest.raises(UnsatisfiableError):
        solve(u, "uses-any-bad")  # :any needs Multi-Arch: allowed
    assert "tcl" in solve(u, "uses-native")
    assert "tool" in solve(u, "uses-virtual-any")
    assert "indep" in solve(u, "uses-indep-native")
    with pytest.raises(UnsatisfiableError):
        solve(u, "uses-other-arch")


def test_wrong_arch_packages_are_invisible(universe: U) -> None:
    u = universe([Pkg("armonly", arch="arm64"), Pkg("both", arch="all")])
    assert not u.candidates("armonly")
    with pytest.raises(UnknownPackageError):
        solve(u, "armonly")
    assert "both" in solve(u, "both")


def test_conflicts_force_the_other_alternative(universe: U) -> None:
    u = universe(
        [
            Pkg("app", depends="libfoo, impl-a | impl-b"),
            Pkg("libfoo", conflicts="impl-a"),
            Pkg("impl-a"),
            Pkg("impl-b"),
        ]
    )
    assert set(solve(u, "app")) == {"app", "libfoo", "impl-b"}


def test_backtracking_undoes_a_bad_choice(universe: U) -> None:
    # impl-a is preferred, but its dependency breaks something needed later.
    u = universe(
        [
            Pkg("app", depends="impl-a | impl-b, late"),
            Pkg("impl-a", depends="helper"),
            Pkg("helper"),
            Pkg("impl-b"),
            Pkg("late", breaks="helper"),
        ]
    )
    assert set(solve(u, "app")) == {"app", "impl-b", "late"}


def test_breaks_with_versions(universe: U) -> None:
    u = universe(
        [Pkg("new-libc", "2.41", breaks="old-tool (<< 2)"), Pkg("old-tool", "1.0"), Pkg("tool2", "2.0")]
    )
    with pytest.raises(UnsatisfiableError, match="Breaks"):
        solve(u, "new-libc", "old-tool")


def test_self_conflict_through_provides_is_allowed(universe: U) -> None:
    u = universe([Pkg("mta1", provides="mta", conflicts="mta")])
    assert "mta1" in solve(u, "mta1")


def test_unsatisfiable_names_chain_and_relation(universe: U) -> None:
    u = universe([Pkg("top", depends="mid"), Pkg("mid", depends="leaf (>= 2.0)"), Pkg("leaf", "1.5")])
    with pytest.raises(UnsatisfiableError) as err:
        solve(u, "top")
    msg = err.value.message
    assert "leaf (>= 2.0)" in msg and "top -> mid" in msg and "1.5" in msg


def test_unknown_name_suggests_close_names(universe: U) -> None:
    with pytest.raises(UnknownPackageError) as err:
        solve(universe(BASIC), "libc7")
    assert err.value.hint is not None and "libc6" in err.value.hint


def test_deterministic(universe: U) -> None:
    u = universe(BASIC)
    a = Resolver(u).resolve(list(parse_relations("app, base-files")))
    b = Resolver(universe(list(reversed(BASIC)))).resolve(list(parse_relations("app, base-files")))
    assert [p.key for p in a.packages] == [p.key for p in b.packages]
    assert a.pruned == b.pruned
