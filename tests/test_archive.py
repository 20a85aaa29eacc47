from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from debrepo import Key, Pkg, Server
from distill.archive.cache import Cache
from distill.archive.repo import Archive
from distill.archive.sources import Source
from distill.archive.transport import Transport
from distill.errors import CacheMissError, IntegrityError, NetworkError, SignatureError
from distill.fetch import fetch_debs
from distill.resolve.lock import LockedPackage

MakeRepo = Callable[..., tuple[Server, Path]]


def archive(url: str, keyring: Path, cache: Path, *, offline: bool = False, suite: str = "stable") -> Archive:
    transport = None if offline else Transport(retries=2, backoff=0.01)
    return Archive(
        [Source(url, suite, ("main",), (keyring,))], cache=Cache(cache), offline=offline, transport=transport
    )


def locked(pkg_name: str, a: Archive) -> LockedPackage:
    p = a.universe("amd64").candidates(pkg_name)[0]
    return LockedPackage(
        p.name, p.version, p.architecture, p.sha256, p.size, p.filename, p.suite, p.component,
        p.source, p.source_version, p.installed_size, None, p.name,
    )  # fmt: skip


def test_good_signature_loads_the_universe(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    server, _ = make_repo()
    u = archive(server.url, key.keyring, tmp_path / "c").universe("amd64")
    assert u.candidates("app")[0].version == "1.0"
    assert u.candidates("tzdata")[0].architecture == "all"
    assert server.faults.hits.get("/dists/stable/InRelease") == 1
    # Packages came by hash, as the Release allows
    assert any("/by-hash/SHA256/" in p for p in server.faults.hits)


def test_armored_keyring_works(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    server, _ = make_repo()
    armored = tmp_path / "key.asc"
    armored.write_bytes(key._gpg("--armor", "--export"))
    assert archive(server.url, armored, tmp_path / "c").universe("amd64").candidates("app")


def test_bad_signature_rejected(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    server, root = make_repo()
    inrel = root / "dists/stable/InRelease"
    inrel.write_bytes(inrel.read_bytes().replace(b"Origin: distill-test", b"Origin: distill-evil"))
    with pytest.raises(SignatureError, match="BAD signature"):
        archive(server.url, key.keyring, tmp_path / "c").universe("amd64")
    assert not list((tmp_path / "c").glob("lists/*.InRelease"))  # never cached


def test_unsigned_release_rejected(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    server, root = make_repo()
    shutil.copy(root / "dists/stable/Release", root / "dists/stable/InRelease")
    with pytest.raises(SignatureError, match="not signed"):
        archive(server.url, key.keyring, tmp_path / "c").universe("amd64")


def test_missing_inrelease_rejected(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    server, root = make_repo()
    (root / "dists/stable/InRelease").unlink()
    with pytest.raises(SignatureError, match="no InRelease"):
        archive(server.url, key.keyring, tmp_path / "c").universe("amd64")


def test_unknown_key_rejected(make_repo: MakeRepo, other_key: Key, tmp_path: Path) -> None:
    server, _ = make_repo()
    with pytest.raises(SignatureError, match="not signed by any key"):
        archive(server.url, other_key.keyring, tmp_path / "c").universe("amd64")


def test_expired_release_rejected(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    server, _ = make_repo(valid_until=datetime.now(UTC) - timedelta(hours=1))
    with pytest.raises(SignatureError, match="expired"):
        archive(server.url, key.keyring, tmp_path / "c").universe("amd64")


def test_valid_until_in_future_is_fine(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    server, _ = make_repo(valid_until=datetime.now(UTC) + timedelta(days=7))
    assert archive(server.url, key.keyring, tmp_path / "c").universe("amd64").candidates("app")


def test_release_of_another_suite_rejected(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    server, root = make_repo({"stable": [Pkg("a")], "oldstable": [Pkg("a", "0.9")]})
    shutil.copy(root / "dists/oldstable/InRelease", root / "dists/stable/InRelease")
    with pytest.raises(SignatureError, match="is for suite 'oldstable'"):
        archive(server.url, key.keyring, tmp_path / "c").universe("amd64")


def test_packages_hash_mismatch_rejected_and_not_cached(
    make_repo: MakeRepo, key: Key, tmp_path: Path
) -> None:
    server, root = make_repo()
    for p in (root / "dists/stable/main/binary-amd64").rglob("*"):
        if p.is_file():
            p.write_bytes(p.read_bytes()[:-8] + b"tampered")
    with pytest.raises(IntegrityError, match="SHA256"):
        archive(server.url, key.keyring, tmp_path / "c").universe("amd64")
    assert not [p for p in (tmp_path / "c/indexes").glob("*") if p.is_file()]


def test_deb_fetched_verified_and_cached(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    server, _ = make_repo()
    a = archive(server.url, key.keyring, tmp_path / "c")
    lp = locked("app", a)
    result = fetch_debs([lp], a, a.cache)
    data = result.paths[lp.sha256].read_bytes()
    assert data.startswith(b"!<arch>\n") and hashlib.sha256(data).hexdigest() == lp.sha256
    again = fetch_debs([lp], a, a.cache)
    assert again.downloaded == 0  # served from the cache


def test_deb_hash_mismatch_rejected_and_not_cached(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    server, root = make_repo()
    a = archive(server.url, key.keyring, tmp_path / "c")
    lp = locked("app", a)
    deb = root / lp.filename
    deb.write_bytes(deb.read_bytes()[:-4] + b"evil")  # same size, other bytes
    with pytest.raises(IntegrityError, match="SHA256"):
        fetch_debs([lp], a, a.cache)
    assert not a.cache.has_deb(lp.sha256)
    assert not a.cache.partial_path(lp.sha256).exists()


def test_interrupted_download_resumes_with_range(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    server, _ = make_repo()
    a = archive(server.url, key.keyring, tmp_path / "c")
    lp = locked("app", a)
    server.faults.cut_after[f"/{lp.filename}"] = 100
    fetch_debs([lp], a, a.cache)
    assert a.cache.has_deb(lp.sha256)
    assert f"/{lp.filename} bytes=100-" in server.faults.ranges
    assert server.faults.hits[f"/{lp.filename}"] == 2


def test_interrupted_download_restarts_when_range_ignored(
    make_repo: MakeRepo, key: Key, tmp_path: Path
) -> None:
    server, _ = make_repo()
    a = archive(server.url, key.keyring, tmp_path / "c")
    lp = locked("app", a)
    path = f"/{lp.filename}"
    server.faults.cut_after[path] = 100
    server.faults.ignore_range.add(path)
    fetch_debs([lp], a, a.cache)
    data = a.cache.deb_path(lp.sha256).read_bytes()
    assert hashlib.sha256(data).hexdigest() == lp.sha256  # restarted from zero, not appended


def test_partial_from_an_earlier_run_is_resumed(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    server, root = make_repo()
    a = archive(server.url, key.keyring, tmp_path / "c")
    lp = locked("app", a)
    full = (root / lp.filename).read_bytes()
    a.cache.partial_path(lp.sha256).write_bytes(full[:300])
    fetch_debs([lp], a, a.cache)
    assert f"/{lp.filename} bytes=300-" in server.faults.ranges
    assert a.cache.deb_path(lp.sha256).read_bytes() == full


def test_offline_works_from_cache_alone(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    server, _ = make_repo()
    a = archive(server.url, key.keyring, tmp_path / "c")
    lp = locked("app", a)
    fetch_debs([lp], a, a.cache)
    server.close()
    off = archive(server.url, key.keyring, tmp_path / "c", offline=True)
    assert off.universe("amd64").candidates("app")[0].sha256 == lp.sha256
    assert fetch_debs([lp], off, off.cache).downloaded == 0


def test_offline_without_cache_is_a_clear_miss(key: Key, tmp_path: Path) -> None:
    with pytest.raises(CacheMissError, match="--offline"):
        archive("http://127.0.0.1:9", key.keyring, tmp_path / "c", offline=True).universe("amd64")


def test_unreachable_mirror_hints_offline(key: Key, tmp_path: Path) -> None:
    with pytest.raises(NetworkError) as err:
        archive("http://127.0.0.1:9", key.keyring, tmp_path / "c").universe("amd64")
    assert err.value.hint is not None and "--offline" in err.value.hint


def test_new_inrelease_is_picked_up(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    server, root = make_repo({"stable": [Pkg("a", "1.0")]})
    assert (
        archive(server.url, key.keyring, tmp_path / "c").universe("amd64").candidates("a")[0].version == "1.0"
    )
    from debrepo import write_suite

    write_suite(root, "stable", [Pkg("a", "2.0")], key)
    u = archive(server.url, key.keyring, tmp_path / "c").universe("amd64")
    assert u.candidates("a")[0].version == "2.0"


def test_prefers_gz_and_falls_back_to_xz(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    server, root = make_repo()
    u = archive(server.url, key.keyring, tmp_path / "c1").universe("amd64")
    assert u.candidates("app")
    served = [root / path.lstrip("/") for path in server.faults.hits]
    assert any(f.is_file() and f.read_bytes()[:2] == b"\x1f\x8b" for f in served)  # a gzip index
    assert not any(f.is_file() and f.read_bytes()[:6] == b"\xfd7zXZ\x00" for f in served)
    for p in (root / "dists/stable/main/binary-amd64").rglob("*"):
        if p.is_file() and (p.name.endswith(".gz") or p.read_bytes()[:2] == b"\x1f\x8b"):
            p.unlink()
    server.faults.hits.clear()
    u = archive(server.url, key.keyring, tmp_path / "c2").universe("amd64")
    assert u.candidates("app")
    served = [root / path.lstrip("/") for path in server.faults.hits]
    assert any(f.is_file() and f.read_bytes()[:6] == b"\xfd7zXZ\x00" for f in served)  # an xz index
