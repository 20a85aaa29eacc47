from __future__ import annotations

from pathlib import Path
from typing import Any

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


def test_the_oci_document_checks() -> None:
    """oci.schema's checks (plain Python, not pydantic: start-up time): each wrong shape
    is one message naming the field; what passes comes back whole."""
    from distill.errors import ImageError
    from distill.oci.schema import DockerEntry, ImageConfig, Index, Manifest, check

    d = "sha256:" + "a" * 64
    cases: list[tuple[type[Any], Any, str]] = [
        (Manifest, {"config": {"digest": d, "size": 1}}, "x: layers: Field required"),
        (DockerEntry, {"Layers": []}, "x: Config: Field required"),
        (Index, {"manifests": [{"digest": d + "\n"}]}, "x: manifests[0].digest: String should match pattern"),
        (Index, {"manifests": [{"digest": d, "size": True}]}, "x: manifests[0].size: Input should be a valid integer"),
        (Index, {"manifests": [{"digest": d, "size": -1}]}, "x: manifests[0].size: Input should be greater than"),
        (Index, {"manifests": [{"digest": d, "size": 1.0}]}, "x: manifests[0].size: Input should be a valid integer"),
        (Index, {"manifests": [{"digest": d, "platform": []}]}, "x: manifests[0].platform: should be a JSON object"),
        (Index, {"manifests": [{"digest": d, "annotations": {"k": 1}}]}, "x: manifests[0].annotations.k: Input should be a valid string"),
        (ImageConfig, {"rootfs": {"diff_ids": [d, 5]}}, "x: rootfs.diff_ids[1]: Input should be a valid string"),
        (ImageConfig, {"config": {"Env": "PATH=/bin"}}, "x: config.Env: Input should be a valid list"),
        (ImageConfig, [], "x: should be a JSON object, not an array"),
    ]  # fmt: skip
    for model, doc, message in cases:
        with pytest.raises(ImageError) as exc:
            check(model, doc, label="x", error=ImageError)
        assert str(exc.value.message).startswith(message), (doc, exc.value.message)
    entry = {"mediaType": "m", "digest": d, "size": 3, "platform": {"architecture": "arm64", "os": "linux",
             "variant": "v8"}, "annotations": {"a": "b"}, "data": "extra"}  # fmt: skip
    index = check(Index, {"manifests": [entry], "schemaVersion": 2}, label="x", error=ImageError)
    assert index.manifests[0].model_dump(exclude_none=True) == entry
    assert index.manifests[0].platform is not None and index.manifests[0].platform.variant == "v8"
    assert index.model_extra == {"schemaVersion": 2}
    config = check(ImageConfig, {}, label="x", error=ImageError)
    assert config.rootfs.diff_ids == [] and config.config is None
