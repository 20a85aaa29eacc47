from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from debrepo import Key, Pkg, Server, write_suite
from distill.archive.index import PackageIndex, Universe, build_table
from leftovers import RUN_CACHE
from leftovers import pytest_sessionfinish as pytest_sessionfinish  # fails a run that leaves things behind
from podmanenv import PodmanStorage


@pytest.fixture(scope="session")
def key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Key]:
    if shutil.which("gpg") is None:
        pytest.fail("gpg is needed to sign the test repositories (apt-get install gpg)")
    k = Key(tmp_path_factory.mktemp("gnupg"))
    yield k
    k.close()


@pytest.fixture(scope="session")
def other_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Key]:
    k = Key(tmp_path_factory.mktemp("gnupg-other"), uid="someone else <other@example.invalid>")
    yield k
    k.close()


BASIC = [
    Pkg("libc6", "2.41-1", multi_arch="same", depends="libgcc-s1"),
    Pkg("libgcc-s1", "14.2-1", multi_arch="same", depends="gcc-base (= 14.2-1), libc6 (>= 2.35)"),
    Pkg("gcc-base", "14.2-1", multi_arch="same"),
    Pkg("base-files", "13.8", arch="amd64", pre_depends="awk", provides="base"),
    Pkg("mawk", "1.3.4-1", priority="required", provides="awk", depends="libc6"),
    Pkg("tzdata", "2025b-1", arch="all", depends="debconf (>= 0.5) | debconf-2.0"),
    Pkg("debconf", "1.5", arch="all", provides="debconf-2.0", depends="perl-base"),
    Pkg("perl-base", "5.40", priority="required"),
    Pkg("app", "1.0", depends="libc6 (>= 2.36), tzdata"),
]


@pytest.fixture
def make_repo(tmp_path: Path, key: Key) -> Iterator[Callable[..., tuple[Server, Path]]]:
    """Build and serve a repository: make_repo({suite: [Pkg...]}, **write_suite kwargs)."""
    servers: list[Server] = []
    counter = [0]

    def make(suites: dict[str, list[Pkg]] | None = None, **kw: object) -> tuple[Server, Path]:
        counter[0] += 1
        root = tmp_path / f"repo{counter[0]}"
        for suite, pkgs in (suites or {"stable": BASIC}).items():
            write_suite(root, suite, pkgs, key, **kw)  # type: ignore[arg-type]
        server = Server(root)
        servers.append(server)
        return server, root

    yield make
    for s in servers:
        s.close()


@pytest.fixture
def universe(tmp_path: Path) -> Callable[..., Universe]:
    """A Universe straight from package definitions (no network), one index per list."""
    counter = [0]

    def make(*suites: list[Pkg], arch: str = "amd64") -> Universe:
        indexes = []
        for i, pkgs in enumerate(suites):
            counter[0] += 1
            text = "\n".join(
                p.control() + f"Filename: pool/{p.name}_{p.version}.deb\nSize: 1\nSHA256: {'0' * 64}\n"
                for p in pkgs
            ).encode()
            path = tmp_path / f"Packages{counter[0]}"
            path.write_bytes(text)
            names, provides = build_table(text, tmp_path / f"Packages{counter[0]}.idx")
            indexes.append(PackageIndex(path, names, provides, suite=f"suite{i}", component="main"))
        return Universe(arch, indexes)

    return make


REPO = Path(__file__).resolve().parent.parent


def _run_root(factory: pytest.TempPathFactory) -> Path:
    """This run's base temporary directory (under xdist: the one all workers' are in)."""
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def test_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The distill cache of the real archive's packages: $DISTILL_TEST_CACHE (kept between
    runs), else one for this run that every worker shares (concurrent use of one cache is
    safe by design), removed when the run ends (tests/leftovers.py)."""
    shared = os.environ.get("DISTILL_TEST_CACHE")
    if shared:
        return Path(shared)
    path = _run_root(tmp_path_factory) / RUN_CACHE
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory, test_cache: Path) -> Iterator[dict[str, str]]:
    for tool in ("podman", "skopeo", "umoci", "runc"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: run scripts/setup.sh (it installs podman, runc, skopeo, umoci)")
    storage = PodmanStorage(tmp_path_factory.mktemp("containers"))  # its run root under 50 characters
    yield {**os.environ, **storage.env, "DISTILL_TEST_CACHE": str(test_cache)}
    storage.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that runs containers (it takes the ``env`` fixture: podman's own
    configuration and storage) carries the ``podman`` marker, so that
    ``scripts/test.sh -m "not podman"`` leaves out exactly those."""
    unmarked = [
        item.nodeid
        for item in items
        if "env" in getattr(item, "fixturenames", ())
        and "env" not in getattr(getattr(item, "callspec", None), "params", {})
        and item.get_closest_marker("podman") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            f"tests that use podman (the env fixture) without @pytest.mark.podman: {unmarked}"
        )
