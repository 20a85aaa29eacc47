"""Integration: the real Debian archive, from the host's apt sources (or DISTILL_MIRROR).

Locks the built-in family for Debian 13 and 12, amd64 and arm64, and downloads
the python3 set to check the hash chain end to end.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from distill.archive.repo import Archive
from distill.debian.deb import open_deb
from distill.options import Options
from distill.pipeline import fetch, make_lock, open_archive, resolve
from distill.resolve.solver import Resolution
from distill.spec.load import load_spec, with_overrides
from distill.spec.model import Spec

pytestmark = pytest.mark.network

FLAVORS = ["static", "base-nossl", "base", "cc", "python3"]
NEVER = {"bash", "dash", "busybox", "zsh", "mksh", "dpkg", "apt", "perl", "perl-base", "debconf", "coreutils",
         "util-linux", "mawk", "gawk", "openssl", "login", "passwd"}  # fmt: skip
EXPECT = {
    "debian13": {
        "static": {"base-files", "netbase", "tzdata", "tzdata-legacy", "media-types", "ca-certificates"},
        "base-nossl": {"libc6", "libgcc-s1", "gcc-14-base"},
        "base": {"libssl3t64", "libzstd1", "zlib1g"},
        "cc": {"libstdc++6", "libgomp1"},
        "python3": {"python3.13-minimal", "libpython3.13-minimal", "libpython3.13-stdlib", "libsqlite3-0",
                    "libffi8", "libexpat1", "libbz2-1.0", "liblzma5", "libuuid1", "libc-bin"},
    },
    "debian12": {
        "static": {"base-files", "netbase", "tzdata", "media-types", "ca-certificates"},
        "base-nossl": {"libc6", "libgcc-s1", "gcc-12-base"},
        "base": {"libssl3", "libzstd1", "zlib1g"},
        "cc": {"libstdc++6", "libgomp1"},
        "python3": {"python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libsqlite3-0",
                    "libffi8", "libexpat1", "libbz2-1.0", "liblzma5", "libuuid1", "libc-bin"},
    },
}  # fmt: skip


@pytest.fixture(scope="session")
def cache_dir(test_cache: Path) -> Path:
    return test_cache


def with_distro(name: str, distro: str) -> Spec:
    spec, _ = load_spec(name)
    return with_overrides(spec, distro=distro)


@pytest.fixture(scope="session", params=["debian13", "debian12"])
def distro_archive(request: pytest.FixtureRequest, cache_dir: Path) -> tuple[str, Archive]:
    distro = request.param
    a = open_archive(with_distro("static", distro), Options(cache_dir=cache_dir, jobs=4))
    a.universes(["amd64", "arm64"])
    return distro, a


@pytest.fixture(scope="session")
def locked(distro_archive: tuple[str, Archive]) -> dict[str, dict[str, Resolution]]:
    distro, a = distro_archive
    return {flavor: resolve(with_distro(flavor, distro), a) for flavor in FLAVORS}


def test_each_flavor_locks_for_both_archs(
    distro_archive: tuple[str, Archive], locked: dict[str, dict[str, Resolution]]
) -> None:
    distro, _ = distro_archive
    codename = {"debian13": "trixie", "debian12": "bookworm"}[distro]
    below: set[str] = set()
    for flavor in FLAVORS:
        for arch in ("amd64", "arm64"):
            res = locked[flavor][arch]
            names = {p.name for p in res.packages}
            assert EXPECT[distro][flavor] <= names, (flavor, arch, EXPECT[distro][flavor] - names)
            assert below <= names, (flavor, arch, below - names)  # each flavor contains the one below
            assert not names & NEVER, (flavor, arch, names & NEVER)
            for p in res.packages:
                assert p.architecture in (arch, "all")
                assert len(p.sha256) == 64 and p.filename.startswith("pool/") and p.size > 0
                assert p.suite.split("-")[0] == codename
        below = {p.name for p in locked[flavor]["amd64"].packages}
    static = {p.name for p in locked["static"]["amd64"].packages}
    assert "libc6" not in static
    if distro == "debian12":
        assert "tzdata-legacy" not in static


def test_python3_prunes_installer_edges_and_explains_them(locked: dict[str, dict[str, Resolution]]) -> None:
    res = locked["python3"]["amd64"]
    cut = {(e.package, e.relation.split()[0]) for e in res.pruned}
    assert ("python3-minimal", "dpkg") in cut
    assert ("base-files", "awk") in cut
    assert ("tzdata", "debconf") in cut
    chain = [name for name, _ in res.chain("libsqlite3-0")]
    assert chain[0] == "libpython3-stdlib" and chain[-1] == "libsqlite3-0"


def test_lock_records_suites_and_checksum(distro_archive: tuple[str, Archive]) -> None:
    distro, a = distro_archive
    spec = with_distro("python3", distro)
    lock = make_lock(spec, a, resolve(spec, a))
    assert lock.archs == ["amd64", "arm64"]
    assert [s.suite.split("-")[-1] for s in lock.suites][-1] == "security"
    assert all(len(s.inrelease_sha256) == 64 for s in lock.suites)


def test_python3_debs_download_and_verify(cache_dir: Path) -> None:
    spec, _ = load_spec("python3")  # Debian 13
    options = Options(cache_dir=cache_dir, jobs=4)
    a = open_archive(spec, options)
    lock = make_lock(spec, a, resolve(spec, a, ["amd64"]))
    result = fetch(lock, a, options, ["amd64"])
    assert len(result.paths) == len(lock.packages["amd64"])
    for p in lock.packages["amd64"]:
        data = result.paths[p.sha256].read_bytes()
        assert len(data) == p.size and hashlib.sha256(data).hexdigest() == p.sha256
        assert data.startswith(b"!<arch>\ndebian-binary")
        deb = open_deb(result.paths[p.sha256])
        fields = deb.control().fields
        assert (fields["Package"], fields["Version"]) == (p.name, p.version)
    # the data tar streams without extracting anything
    libc = next(p for p in lock.packages["amd64"] if p.name == "libc6")
    names = [info.name for info, _ in open_deb(result.paths[libc.sha256]).data()]
    assert any(n.endswith("/libc.so.6") for n in names)


def test_cli_lock_real_archive(cache_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    out = tmp_path / "python3.lock.json"
    proc = subprocess.run(
        [sys.executable, "-m", "distill", "lock", "python3", "--distro", "debian12", "--arch", "arm64",
         "--cache-dir", str(cache_dir), "-o", str(out)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "arm64:" in proc.stdout and "pruned: python3-minimal Depends dpkg" in proc.stdout
    assert '"distro": "debian12"' in out.read_text()
