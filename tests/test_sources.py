from __future__ import annotations

from pathlib import Path

import pytest

from distill.archive.sources import distro_sources, host_mirrors, read_host_sources
from distill.distros import DISTROS
from distill.errors import ArchiveError, KeyringError


def fake_root(tmp: Path, sources: str | None = None, listfile: str | None = None) -> Path:
    (tmp / "etc/apt/sources.list.d").mkdir(parents=True)
    if sources is not None:
        (tmp / "etc/apt/sources.list.d/debian.sources").write_text(sources)
    if listfile is not None:
        (tmp / "etc/apt/sources.list").write_text(listfile)
    return tmp


DEB822 = """Types: deb
URIs: http://127.0.0.1:1/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: {key}

Types: deb deb-src
URIs: http://127.0.0.1:1/debian-security
Suites: bookworm-security
Components: main
Signed-By: {key}

Types: deb
URIs: http://127.0.0.1:1/other
Suites: nodistro
Components: main
"""


def test_deb822_host_sources(tmp_path: Path) -> None:
    key = tmp_path / "k.gpg"
    key.write_bytes(b"x")
    root = fake_root(tmp_path, DEB822.format(key=key))
    assert len(read_host_sources(root)) == 3
    m = host_mirrors(root)
    assert m is not None
    assert (m.main, m.security, m.keyrings) == (
        "http://127.0.0.1:1/debian",
        "http://127.0.0.1:1/debian-security",
        (key,),
    )
    srcs = distro_sources(DISTROS["debian13"], root=root, env={})
    assert [(s.url, s.suite) for s in srcs] == [
        ("http://127.0.0.1:1/debian", "trixie"),
        ("http://127.0.0.1:1/debian", "trixie-updates"),
        ("http://127.0.0.1:1/debian-security", "trixie-security"),
    ]


def test_one_line_sources_list(tmp_path: Path) -> None:
    key = tmp_path / "k.gpg"
    key.write_bytes(b"x")
    root = fake_root(
        tmp_path,
        listfile=f"# comment\ndeb [arch=amd64 signed-by={key}] http://127.0.0.1:2/debian trixie main\n"
        "deb http://127.0.0.1:2/debian-security trixie-security main\n",
    )
    m = host_mirrors(root)
    assert m is not None and m.main == "http://127.0.0.1:2/debian" and m.keyrings == (key,)


def test_flag_beats_env_beats_host(tmp_path: Path) -> None:
    key = tmp_path / "k.gpg"
    key.write_bytes(b"x")
    root = fake_root(tmp_path, DEB822.format(key=key))
    env = {"DISTILL_MIRROR": "http://127.0.0.1:3/env"}
    assert distro_sources(DISTROS["debian12"], root=root, env=env)[0].url == "http://127.0.0.1:3/env"
    # a user-chosen mirror does not silently mix with the host's security mirror
    assert distro_sources(DISTROS["debian12"], root=root, env=env)[2].url == "http://127.0.0.1:3/env-security"
    flag = distro_sources(DISTROS["debian12"], mirror="http://127.0.0.1:4/flag", root=root, env=env)
    assert flag[0].url == "http://127.0.0.1:4/flag"


def test_no_debian_source_is_a_clear_error(tmp_path: Path) -> None:
    root = fake_root(
        tmp_path, "Types: deb\nURIs: http://127.0.0.1:1/ubuntu\nSuites: noble\nComponents: main\n"
    )
    with pytest.raises(ArchiveError, match="no Debian mirror") as err:
        distro_sources(DISTROS["debian13"], root=root, env={})
    assert err.value.hint is not None and "DISTILL_MIRROR" in err.value.hint


def test_missing_keyring_is_a_clear_error(tmp_path: Path) -> None:
    root = fake_root(tmp_path, DEB822.format(key=tmp_path / "absent.gpg"))
    with pytest.raises(KeyringError, match="does not exist"):
        distro_sources(DISTROS["debian13"], root=root, env={})
