from __future__ import annotations

import pytest

from distill.debian.relation import Relation, RelationSyntaxError, parse_relations


def test_grammar() -> None:
    field = "libc6 (>= 2.36), debconf (>= 0.5) | debconf-2.0, python3:any, foo:native (<< 2~), bar [amd64] <!nocheck>"
    clauses = parse_relations(field)
    assert clauses[0] == (Relation("libc6", ">=", "2.36"),)
    assert clauses[1] == (Relation("debconf", ">=", "0.5"), Relation("debconf-2.0"))
    assert clauses[2] == (Relation("python3", arch="any"),)
    assert clauses[3] == (Relation("foo", "<<", "2~", "native"),)
    assert clauses[4] == (Relation("bar"),)


def test_obsolete_operators_mean_or_equal() -> None:
    assert parse_relations("a (< 2), b (> 1)") == ((Relation("a", "<=", "2"),), (Relation("b", ">=", "1"),))


def test_allows() -> None:
    assert Relation("a", ">=", "1.0").allows("1.0")
    assert not Relation("a", ">>", "1.0").allows("1.0")
    assert Relation("a").allows(None)
    assert not Relation("a", "=", "1").allows(None)  # an unversioned Provides never meets a bound


@pytest.mark.parametrize("bad", ["Foo", "a (>= )", "a (~ 1)", "a b"])
def test_syntax_errors(bad: str) -> None:
    with pytest.raises(RelationSyntaxError):
        parse_relations(bad)
