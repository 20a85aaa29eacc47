"""The cache is input too (issue 17 A, C): digests from a lock never name paths, every
entry is hashed when it is read and a damaged one is made again, outputs never share
inodes with the cache, concurrent runs share one cache, `distill cache verify/prune`,
outputs never replace what the user did not name, temporary files never stay behind."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import test_cli
from debrepo import Server
from distill.app import cachecheck
from distill.archive.cache import Cache, check_digest
from distill.cachecmd import parse_size, prune, verify
from distill.errors import IntegrityError, LockError
from distill.oci.validate import validate_layout
from distill.resolve.lock import read_lock
from test_cli import assert_one_line_error, run

project = test_cli.project  # the same fixture: a signed repository and app.yaml


def build_ok(work: Path, cache: Path, *args: str) -> tuple[str, str]:
    proc = run("build", "app.yaml", *args, cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return proc.stdout.strip().splitlines()[-1], proc.stderr


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "warning:" in line]


# -- A1: a lock's values never name paths ------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("sha256", "./../../evil", "packages[0].sha256: not a SHA256 digest"),
        ("sha256", "A" * 64, "packages[0].sha256: not a SHA256 digest"),
        ("filename", "../../../etc/passwd", "packages[0].filename: not a relative pool path"),
        ("filename", "/etc/passwd", "packages[0].filename: not a relative pool path"),
        ("filename", "pool/a\nb.deb", "packages[0].filename: not a relative pool path"),
        ("suite", "stable/../..", "packages[0].suite: not a Debian archive name"),
        ("component", "main\x00", "packages[0].component: not a Debian archive name"),
        ("size", "12", "packages[0].size: not a size in bytes"),
    ],
)
def test_a_tampered_lock_is_refused_before_anything_is_read(
    project: tuple[Server, Path], tmp_path: Path, field: str, value: object, message: str
) -> None:
    _, work = project
    cache = tmp_path / "cache"
    assert run("lock", "app.yaml", cwd=work, cache=cache).returncode == 0
    lock_path = work / "app.lock.json"
    doc = json.loads(lock_path.read_text())
    doc["archs"]["amd64"]["packages"][0][field] = value
    lock_path.write_text(json.dumps(doc))
    # What the reported attack used: a file where the digest's path leads.
    (cache / "evil.deb").write_bytes(b"!<arch>\n")
    proc = run("build", "app.yaml", "-o", "out", cwd=work, cache=cache)
    assert_one_line_error(proc, message)
    assert not (work / "out").exists()
    proc = run("fetch", "app.yaml", cwd=work, cache=cache)
    assert_one_line_error(proc, message)


def test_cache_paths_take_only_digests(tmp_path: Path) -> None:
    cache = Cache(tmp_path)
    good = "ab" * 32
    assert cache.deb_path(good) == tmp_path / "debs" / f"{good}.deb"
    for bad in ("./../../evil", "../" + good[3:], good.upper(), good + "\n", ""):
        for method in (cache.deb_path, cache.index_path, cache.index_table_path, cache.partial_path):
            with pytest.raises(IntegrityError):
                method(bad)
        with pytest.raises(IntegrityError):
            check_digest(bad)


def test_read_lock_checks_every_package(tmp_path: Path) -> None:
    p = tmp_path / "x.lock.json"
    p.write_text(
        json.dumps(
            {
                "lockVersion": 2,
                "spec_sha256": "0" * 64,
                "distro": "debian13",
                "suites": [],
                "layers": ["image"],
                "archs": {"../x": {"packages": [], "pruned": [], "debug": []}},
            }
        )
    )
    with pytest.raises(LockError, match="not a Debian architecture name"):
        read_lock(p)


# -- A2: hash on read; outputs share nothing with the cache --------------------------


def _one(root: Path, pattern: str) -> Path:
    """The largest file matching ``pattern`` (the one most likely to be read)."""
    files = [p for p in root.glob(pattern) if p.is_file()]
    assert files, pattern
    return max(files, key=lambda p: p.stat().st_size)


def _layer_blob(root: Path, layout: Path) -> Path:
    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads((layout / "blobs/sha256" / index["manifests"][0]["digest"][7:]).read_text())
    return root / "blobs/sha256" / max(manifest["layers"], key=lambda d: d["size"])["digest"][7:]


def _damage(kind: str, root: Path, layout: Path) -> None:
    """Flip one byte in one cache entry of ``kind``, and remove what would hide it (a
    .deb is only read when its expanded form is missing, an expanded tar only when a
    layer has to be written)."""
    if kind == "deb":
        flip(_one(root, "debs/*.deb"))
        for p in (root / "expanded").iterdir():
            p.unlink()
    elif kind == "index":
        flip(_one(root, "indexes/*[0-9a-f]"))
    elif kind == "index-table":
        flip(_one(root, "indexes/*.idx"))
    elif kind == "expanded-tar":
        flip(_one(root, "expanded/*.tar"))
        for p in (root / "layers").iterdir():
            p.unlink()
    elif kind == "expanded-idx":
        flip(_one(root, "expanded/*.idx"))
    elif kind == "layer-record":
        flip(_one(root, "layers/*.json"))
    elif kind == "layer-blob":
        flip(_layer_blob(root, layout))
    else:
        raise AssertionError(kind)


KINDS = ["deb", "index", "index-table", "expanded-tar", "expanded-idx", "layer-record", "layer-blob"]
NEEDS_NETWORK = {"deb", "index"}


@pytest.mark.parametrize("kind", KINDS)
def test_a_damaged_cache_entry_is_made_again_with_one_warning(
    project: tuple[Server, Path], tmp_path: Path, kind: str
) -> None:
    _, work = project
    cache = tmp_path / "cache"
    root = cache / "distill"
    digest, _ = build_ok(work, cache, "-o", "first")
    _damage(kind, root, work / "first")
    again, stderr = build_ok(work, cache, "-o", "second")
    assert again == digest
    assert len(warnings(stderr)) == 1, stderr
    validate_layout(work / "second")  # every blob hashes to its digest
    assert not verify(root).removed  # and the cache is whole again


@pytest.mark.parametrize("kind", KINDS)
def test_offline_a_damaged_entry_that_needs_the_network_is_one_error(
    project: tuple[Server, Path], tmp_path: Path, kind: str
) -> None:
    server, work = project
    cache = tmp_path / "cache"
    root = cache / "distill"
    digest, _ = build_ok(work, cache, "-o", "first")
    _damage(kind, root, work / "first")
    server.close()
    if kind in NEEDS_NETWORK:
        proc = run("build", "app.yaml", "--offline", "-o", "second", cwd=work, cache=cache)
        assert_one_line_error(proc, "does not match its SHA256")
        assert "--offline" in proc.stderr
        assert not (work / "second").exists()
    else:  # made again from what is cached: no network needed
        again, stderr = build_ok(work, cache, "--offline", "-o", "second")
        assert again == digest and len(warnings(stderr)) == 1, stderr
        validate_layout(work / "second")


def test_an_archive_output_never_takes_a_damaged_blob(project: tuple[Server, Path], tmp_path: Path) -> None:
    _, work = project
    cache = tmp_path / "cache"
    digest, _ = build_ok(work, cache, "-o", "first")
    flip(_layer_blob(cache / "distill", work / "first"))
    again, stderr = build_ok(work, cache, "-o", "img.tar")
    assert again == digest and len(warnings(stderr)) == 1, stderr
    out = tmp_path / "unpacked"
    out.mkdir()
    subprocess.run(["tar", "-xf", str(work / "img.tar"), "-C", str(out)], check=True)
    validate_layout(out)


def test_a_layout_shares_no_inode_with_the_cache(project: tuple[Server, Path], tmp_path: Path) -> None:
    _, work = project
    cache = tmp_path / "cache"
    build_ok(work, cache, "-o", "out")
    blobs = list((work / "out/blobs/sha256").iterdir())
    assert blobs
    for b in blobs:
        st = b.stat()
        assert st.st_nlink == 1, b
        assert st.st_ino != (cache / "distill/blobs/sha256" / b.name).stat().st_ino
    # Damaging the output leaves the cache (and the next build) intact.
    flip(max(blobs, key=lambda p: p.stat().st_size))
    assert not verify(cache / "distill").removed


# -- A3: concurrent runs on one cache ------------------------------------------------


def test_eight_concurrent_builds_and_fetches_on_one_empty_cache(
    project: tuple[Server, Path], tmp_path: Path
) -> None:
    server, work = project
    assert run("lock", "app.yaml", cwd=work, cache=tmp_path / "lock-cache").returncode == 0
    server.faults.pause_mid_body = 1.5  # downloads overlap, as on a real mirror (or a slow one)
    cache = tmp_path / "shared"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    env.pop("DISTILL_MIRROR", None)
    commands = [["build", "app.yaml", "-o", f"out{i}"] for i in range(5)] + [["fetch", "app.yaml"]] * 3
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "distill", *c],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for c in commands
    ]
    results = [(p.communicate(timeout=300), p.returncode) for p in procs]
    for (_out, err), rc in results:
        assert rc == 0, err
    digests = {out.strip().splitlines()[-1] for (out, _), _ in results[:5]}
    assert len(digests) == 1
    for i in range(5):
        validate_layout(work / f"out{i}")
    debs = list((cache / "distill/debs").iterdir())
    assert len(debs) == 6
    for deb in debs:
        assert hashlib.sha256(deb.read_bytes()).hexdigest() + ".deb" == deb.name
    report = verify(cache / "distill")
    assert report.checked > 0 and not report.removed
    assert not list((cache / "distill/tmp").iterdir())


# -- A4: distill cache verify / prune ------------------------------------------------


def test_cache_verify_removes_bad_entries_and_exits_1(project: tuple[Server, Path], tmp_path: Path) -> None:
    _, work = project
    cache = tmp_path / "cache"
    root = cache / "distill"
    digest, _ = build_ok(work, cache, "-o", "first")
    proc = run("cache", "verify", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert "0 files removed" in proc.stdout
    deb = _one(root, "debs/*.deb")
    blob = _layer_blob(root, work / "first")
    flip(deb)
    flip(blob)
    (root / "debs" / "not-a-digest.deb").write_bytes(b"x")
    # An application dependency tree (as app/python.py leaves one) damaged after it was made.
    app_entry = root / "apps" / "python" / ("a" * 64)
    (app_entry / "site" / "pkg").mkdir(parents=True)
    (app_entry / "site" / "pkg" / "__init__.py").write_text("x = 1\n")
    cachecheck.write_manifest(app_entry)
    (app_entry / "site" / "pkg" / "__init__.py").write_text("x = 2\n")
    proc = run("cache", "verify", cwd=work, cache=cache)
    assert proc.returncode == 1, proc.stderr
    removed = [line for line in proc.stdout.splitlines() if line.startswith("removed ")]
    # The two damaged files, the stray name, the layer record whose blob went with it, the app tree.
    assert len(removed) == 5, proc.stdout
    assert any(str(app_entry) in line for line in removed) and not app_entry.exists()
    assert any(str(deb) in line for line in removed) and any(str(blob) in line for line in removed)
    assert any("layers/" in line and "its blob is gone" in line for line in removed)
    assert not deb.exists() and not blob.exists()
    assert run("cache", "verify", cwd=work, cache=cache).returncode == 0
    assert build_ok(work, cache, "-o", "second")[0] == digest


def test_cache_prune_by_age_and_size_keeps_what_a_lock_needs(
    project: tuple[Server, Path], tmp_path: Path
) -> None:
    _, work = project
    cache = tmp_path / "cache"
    root = cache / "distill"
    assert run("lock", "app.yaml", cwd=work, cache=cache).returncode == 0
    build_ok(work, cache, "-o", "first")
    lock = read_lock(work / "app.lock.json")
    needed = {p.sha256 for p in lock.packages["amd64"]}
    old = time.time() - 40 * 86400
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, (old, old))
    proc = run("cache", "prune", "--older-than", "30", "--keep-lock", "app.lock.json", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert {p.name.removesuffix(".deb") for p in (root / "debs").iterdir()} == needed
    assert {p.name.split(".")[0] for p in (root / "expanded").iterdir()} == needed
    assert not list((root / "blobs/sha256").iterdir()) and not list((root / "layers").iterdir())
    # The kept entries still build offline.
    build_ok(work, cache, "--offline", "-o", "second")
    # By size: everything unprotected goes, the lock's .debs stay.
    report = prune(root, max_size=0, keep=needed)
    assert report.removed
    assert {p.name.removesuffix(".deb") for p in (root / "debs").iterdir()} == needed
    report = prune(root, max_size=0)
    assert not list((root / "debs").iterdir())
    proc = run("cache", "prune", cwd=work, cache=cache)
    assert_one_line_error(proc, "--older-than")


def test_parse_size() -> None:
    assert parse_size("500M") == 500 << 20
    assert parse_size("2G") == 2 << 30
    assert parse_size("1.5GiB") == int(1.5 * (1 << 30))
    assert parse_size("1024") == 1024
    with pytest.raises(Exception, match="not a size"):
        parse_size("lots")


# -- C7, C8: outputs never replace what the user did not name ------------------------


def test_a_directory_that_is_not_a_layout_is_never_replaced(
    project: tuple[Server, Path], tmp_path: Path
) -> None:
    _, work = project
    cache = tmp_path / "cache"
    (work / "precious").mkdir()
    (work / "precious" / "important.txt").write_text("keep me")
    proc = run("build", "app.yaml", "-o", "precious", cwd=work, cache=cache)
    assert_one_line_error(proc, "refusing to replace")
    assert (work / "precious" / "important.txt").read_text() == "keep me"
    assert sorted(p.name for p in (work / "precious").iterdir()) == ["important.txt"]
    (work / "empty").mkdir()
    build_ok(work, cache, "-o", "empty")
    validate_layout(work / "empty")
    (work / "empty" / "index.json").write_bytes(b"{}")  # an existing (stale) layout is replaced
    build_ok(work, cache, "-o", "empty")
    validate_layout(work / "empty")


def test_a_file_that_is_not_an_image_archive_is_never_overwritten(
    project: tuple[Server, Path], tmp_path: Path
) -> None:
    _, work = project
    cache = tmp_path / "cache"
    (work / "notes.tar").write_text("my notes")
    proc = run("build", "app.yaml", "-o", "notes.tar", cwd=work, cache=cache)
    assert_one_line_error(proc, "refusing to overwrite")
    assert (work / "notes.tar").read_text() == "my notes"
    build_ok(work, cache, "-o", "img.tar")
    (work / "v.yaml").write_text((work / "app.yaml").read_text() + "labels: {v: '2'}\n")
    proc = run("build", "v.yaml", "-o", "img.tar", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr  # an image archive is replaced


def test_a_spec_name_is_an_image_name_never_a_path(project: tuple[Server, Path], tmp_path: Path) -> None:
    _, work = project
    cache = tmp_path / "cache"
    victim = tmp_path / "victim.oci"
    victim.mkdir()
    (victim / "data").write_text("keep")
    spec = (work / "app.yaml").read_text()
    for bad in ("../victim", "/tmp/x", "Team/App", "a//b", "-a"):
        (work / "app.yaml").write_text(f"name: {json.dumps(bad)}\n{spec}")
        proc = run("build", "app.yaml", cwd=work, cache=cache)
        assert_one_line_error(proc, "name")
        assert "app.yaml:1" in proc.stderr
    assert (victim / "data").read_text() == "keep"
    (work / "app.yaml").write_text(f"name: team/my-app\n{spec}")
    build_ok(work, cache)
    validate_layout(work / "team_my-app.oci")
    assert not (work / "team").exists()


# -- C9: no temporary files left behind ----------------------------------------------


def test_no_temporary_files_stay_behind(project: tuple[Server, Path], tmp_path: Path) -> None:
    _, work = project
    cache = tmp_path / "cache"
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "TMPDIR": str(tmpdir)}
    env.pop("DISTILL_MIRROR", None)

    def distill(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "distill", *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def leftovers() -> list[Path]:
        found = list(tmpdir.iterdir()) + [p for p in (cache / "distill").rglob("*") if p.name.startswith(".")]
        tmp = cache / "distill" / "tmp"
        return found + (list(tmp.iterdir()) if tmp.is_dir() else [])

    assert distill("build", "app.yaml", "-o", "ok").returncode == 0
    assert leftovers() == []
    spec = (work / "app.yaml").read_text()
    (work / "app.yaml").write_text(spec.replace("  - app\n", "  - app\n  - nosuchpackage\n"))
    assert distill("build", "app.yaml", "-o", "bad").returncode == 2
    assert leftovers() == []
    (work / "app.yaml").write_text(spec)
    assert distill("lock", "app.yaml").returncode == 0
    doc = json.loads((work / "app.lock.json").read_text())
    doc["archs"]["amd64"]["packages"][0]["sha256"] = "0" * 64  # a lock naming a package nobody has
    (work / "app.lock.json").write_text(json.dumps(doc))
    proc = distill("build", "app.yaml", "-o", "bad2")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert leftovers() == []
    assert not [p for p in work.iterdir() if p.name.startswith(".")]


def test_a_terminated_build_leaves_no_temporary_files(project: tuple[Server, Path], tmp_path: Path) -> None:
    server, work = project
    server.faults.pause_mid_body = 3.0  # the build is caught mid-download
    cache = tmp_path / "cache"
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "TMPDIR": str(tmpdir)}
    env.pop("DISTILL_MIRROR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "distill", "build", "app.yaml", "--load", "podman"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    tmp = cache / "distill" / "tmp"
    deadline = time.monotonic() + 60
    while not (tmp.is_dir() and list(tmp.glob("*.partial")) and list(tmpdir.iterdir())):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.terminate()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "Traceback" not in err
    assert list(tmpdir.iterdir()) == []  # the --load scratch directory
    # Only resumable downloads stay (the next run continues them); no locks, no dot files.
    assert all(p.suffix == ".partial" for p in tmp.iterdir()), list(tmp.iterdir())
    assert not [p for p in (cache / "distill").rglob(".*")]
    assert not [p for p in work.iterdir() if p.name.startswith(".")]


def test_fetch_hashes_what_is_cached(project: tuple[Server, Path], tmp_path: Path) -> None:
    server, work = project
    cache = tmp_path / "cache"
    assert run("fetch", "app.yaml", cwd=work, cache=cache).returncode == 0
    deb = _one(cache / "distill", "debs/*.deb")
    flip(deb)
    proc = run("fetch", "app.yaml", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert len(warnings(proc.stderr)) == 1 and "(1 downloaded" in proc.stdout
    assert hashlib.sha256(deb.read_bytes()).hexdigest() + ".deb" == deb.name
    flip(deb)
    server.close()
    proc = run("fetch", "app.yaml", "--offline", cwd=work, cache=cache)
    assert_one_line_error(proc, "does not match its SHA256")
    assert not deb.exists()
