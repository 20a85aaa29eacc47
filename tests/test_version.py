from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distill.debian.version import compare_versions, satisfies, version_key

# Parts built from the characters Debian versions use, biased towards the tricky ones.
_upstream = st.text(alphabet="0123456789.+~abcz", min_size=0, max_size=7).map(lambda s: "1" + s)
_revision = st.one_of(st.just(""), st.text(alphabet="0123456789.+~ab", min_size=1, max_size=5))
_epoch = st.one_of(st.just(""), st.sampled_from(["0:", "1:", "2:", "10:"]))
versions = st.builds(lambda e, u, r: f"{e}{u}{'-' + r if r else ''}", _epoch, _upstream, _revision)


def dpkg_compare_many(pairs: list[tuple[str, str]]) -> list[int]:
    """dpkg's own answer for each pair (one shell for the batch)."""
    script = "".join(
        f"if dpkg --compare-versions '{a}' lt '{b}'; then echo -1; "
        f"elif dpkg --compare-versions '{a}' eq '{b}'; then echo 0; else echo 1; fi\n"
        for a, b in pairs
    )
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    return [int(x) for x in out.split()]


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is part of every Debian host")
@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(versions, versions), min_size=25, max_size=25))
def test_matches_dpkg_on_generated_pairs(pairs: list[tuple[str, str]]) -> None:
    expected = dpkg_compare_many(pairs)
    got = [compare_versions(a, b) for a, b in pairs]
    assert got == expected, [(p, g, e) for p, g, e in zip(pairs, got, expected, strict=True) if g != e]


@pytest.mark.parametrize(
    ("a", "op", "b"),
    [
        ("1.0~rc1", "<<", "1.0"),
        ("1.0", "<<", "1.0+b1"),
        ("1:0.1", ">>", "2.0"),
        ("1.0", "=", "1.0-0"),
        ("1.0", "=", "0:1.0"),
        ("1.0-1", "<<", "1.0-1.1"),
        ("1.0a", ">>", "1.0"),
        ("1.0a", "<<", "1.0+"),
        ("2.41-12+deb13u4", ">>", "2.41-12"),
        ("3.13.5-2", ">=", "3.13.5-1~"),
        ("1.00", "=", "1.0"),
        ("1.0~~", "<<", "1.0~"),
    ],
)
def test_known_orderings(a: str, op: str, b: str) -> None:
    assert satisfies(a, op, b)
    if op == "=":
        assert version_key(a) == version_key(b)


def test_unknown_operator_is_an_error() -> None:
    with pytest.raises(ValueError):
        satisfies("1", "!=", "2")
