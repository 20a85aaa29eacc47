from __future__ import annotations

from pathlib import Path

import pytest

from distill.errors import SpecError
from distill.spec.load import load_spec, spec_checksum, spec_schema


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.write_text(text)
    return p


def test_builtin_specs_compose_without_repetition() -> None:
    static, _ = load_spec("static")
    base, _ = load_spec("base")
    python3, _ = load_spec("python3")
    assert static.archs == ["amd64", "arm64"]
    assert base.packages[: len(static.packages)] == static.packages
    assert "libc6" in base.packages and "python3-minimal" in python3.packages
    assert python3.name == "python3"
    # every spec is composed from the one below: its own file repeats no package of its parents
    import yaml

    images = Path(__file__).parents[1] / "images"
    inherited: set[str] = set()
    for name in ("static", "base-nossl", "base", "cc", "python3"):
        own = yaml.safe_load((images / f"{name}.yaml").read_text())
        assert own.get("extends") in (None, "static", "base-nossl", "base", "cc")
        assert own["packages"] and not set(own["packages"]) & inherited, name
        inherited |= set(own["packages"])


def test_extends_relative_path_and_lists_add_up(tmp_path: Path) -> None:
    write(tmp_path, "parent.yaml", "archs: [arm64]\npackages: [a, b]\nexclude: [x]\nprune: {keep: [awk]}\n")
    child = write(
        tmp_path,
        "child.yaml",
        "extends: parent.yaml\npackages: [b, c]\nexclude: [y]\nprune: {keep: [dpkg]}\n",
    )
    spec, _ = load_spec(child)
    assert spec.packages == ["a", "b", "c"]
    assert spec.exclude == ["x", "y"]
    assert spec.prune.keep == ["awk", "dpkg"]
    assert spec.archs == ["arm64"]


def test_extends_cycle_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "extends: b.yaml\npackages: [x]\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    with pytest.raises(SpecError, match="cycle"):
        load_spec(tmp_path / "a.yaml")


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("packages: [a\n", r"s\.yaml:2:1: invalid YAML"),
        (
            "packages: [a]\npakages: [b]\n",
            r"s\.yaml:2:1: unknown field 'pakages' \(did you mean 'packages'\?\)",
        ),
        (
            "distro: debian11\npackages: [a]\n",
            r"s\.yaml:1:9: distro: Input should be 'debian13' or 'debian12'",
        ),
        ("archs: [amd64, sparc]\npackages: [a]\n", r"s\.yaml:1:16: archs\.1: Input should be"),
        ("packages: ['libc6 (>= )']\n", r"s\.yaml:1:12: packages\.0: not a Debian relation"),
        ("- a\n- b\n", r"s\.yaml:1:1: a spec must be a mapping"),
        ("packages: [a]\npackages: [b]\n", r"s\.yaml:2:1: duplicate key 'packages'"),
        ("archs: [amd64, amd64]\npackages: [a]\n", r"archs: lists an architecture twice"),
        ("sources: [{url: 'ftp://x', suites: [s]}]\npackages: [a]\n", r"must start with http"),
    ],
)
def test_bad_specs_name_file_line_column(tmp_path: Path, text: str, pattern: str) -> None:
    with pytest.raises(SpecError, match=pattern):
        load_spec(write(tmp_path, "s.yaml", text))


def test_missing_spec_lists_builtins() -> None:
    with pytest.raises(SpecError) as err:
        load_spec("no-such-flavor")
    assert err.value.hint is not None and "python3" in err.value.hint


def test_exact_pin_syntax(tmp_path: Path) -> None:
    spec, _ = load_spec(
        write(tmp_path, "s.yaml", "packages: ['tzdata=2025b-1', 'libc6 (>= 2.36)', 'a | b']\n")
    )
    clauses = spec.requests()
    assert (clauses[0][0].name, clauses[0][0].op, clauses[0][0].version) == ("tzdata", "=", "2025b-1")
    assert len(clauses[2]) == 2


def test_checksum_tracks_what_decides_resolution(tmp_path: Path) -> None:
    a, _ = load_spec(write(tmp_path, "a.yaml", "packages: [x]\n"))
    b, _ = load_spec(write(tmp_path, "b.yaml", "name: other\npackages: [x]\n"))
    c, _ = load_spec(write(tmp_path, "c.yaml", "packages: [x, y]\n"))
    assert spec_checksum(a) == spec_checksum(b)
    assert spec_checksum(a) != spec_checksum(c)


def test_schema_describes_fields() -> None:
    schema = spec_schema()
    assert schema["additionalProperties"] is False
    assert {"distro", "archs", "packages", "exclude", "prune", "extends", "sources", "keyring"} <= set(
        schema["properties"]
    )
