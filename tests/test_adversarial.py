"""Found by an adversarial pass over the fixes of issues 11 and 17: a damaged output
reported "up to date", a base layout whose diff_ids or sizes lie reused as it is, a
corrupt gzip layer ending in a traceback."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

import test_cli
from debrepo import Server
from ocitools import F, layer_tar, write_layout
from test_cli import assert_one_line_error, run

project = test_cli.project  # a signed repository on 127.0.0.1 and app.yaml


def _blobs_match(layout: Path) -> bool:
    return all(
        hashlib.sha256(b.read_bytes()).hexdigest() == b.name for b in (layout / "blobs" / "sha256").iterdir()
    )


def _flip_middle(path: Path, offset: int, size: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset + size // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_damaged_output_is_written_again_not_up_to_date(
    project: tuple[Server, Path], tmp_path: Path
) -> None:
    """The check that skips rewriting an identical output compared index.json and the
    blobs' sizes (a layout) or index.json and manifest.json only (an archive): a flipped
    byte in a blob stayed, with "up to date" and exit 0."""
    _, work = project
    cache = tmp_path / "cache"
    for args in (("-o", "out"), ("-o", "out"), ("-o", "img.tar"), ("-o", "img.tar")):
        assert run("build", "app.yaml", *args, cwd=work, cache=cache).returncode == 0
    layer = max((work / "out" / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    _flip_middle(layer, 0, layer.stat().st_size)
    proc = run("build", "app.yaml", "-o", "out", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert "wrote OCI layout out" in proc.stdout and _blobs_match(work / "out")

    with tarfile.open(work / "img.tar") as tf:
        blob = max((m for m in tf if m.name.startswith("blobs/sha256/") and m.isfile()), key=lambda m: m.size)
    _flip_middle(work / "img.tar", blob.offset_data, blob.size)
    proc = run("build", "app.yaml", "-o", "img.tar", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert "wrote archive img.tar" in proc.stdout
    with tarfile.open(work / "img.tar") as tf:
        for m in tf:
            if m.name.startswith("blobs/sha256/") and m.isfile():
                f = tf.extractfile(m)
                assert f is not None and hashlib.sha256(f.read()).hexdigest() == m.name.rpartition("/")[2]


def _put(root: Path, doc: dict[str, Any]) -> dict[str, Any]:
    data = json.dumps(doc).encode()
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _relink(root: Path, manifest: dict[str, Any], config: dict[str, Any]) -> None:
    """Store ``config`` and ``manifest`` (pointing at it) and make index.json name them."""
    manifest["config"].update(_put(root, config))
    index = json.loads((root / "index.json").read_text())
    index["manifests"][0].update(_put(root, manifest))
    (root / "index.json").write_text(json.dumps(index))


def _config(root: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(
        (root / "blobs" / "sha256" / manifest["config"]["digest"][7:]).read_text()
    )
    return config


def _app_on(root: Path, tmp_path: Path) -> Path:
    src = tmp_path / "src"
    (src / "myapp").mkdir(parents=True)
    (src / "myapp" / "__main__.py").write_text("print('hi')\n")
    (src / "app.yaml").write_text(
        f"name: x\nfrom: oci:{root}\narchs: [amd64]\napp: {{kind: python, entrypoint: [-m, myapp]}}\n"
    )
    return src


@pytest.mark.parametrize("lie", ["diff_id", "size"])
def test_a_base_layout_whose_descriptors_lie_is_refused(tmp_path: Path, lie: str) -> None:
    """A base layout's layers are reused as they are, under its config's diff_ids and its
    manifest's sizes: only the compressed digest was checked, so a wrong diff_id gave an
    image umoci and podman refuse (exit 0), and a wrong size was blamed on the cache
    (whose good blob was deleted)."""
    root = tmp_path / "base"
    manifest = write_layout(root, [layer_tar([F("usr/bin/python3", b"\x7fELF"), F("etc/hostname", b"x\n")])])
    config = _config(root, manifest)
    if lie == "diff_id":
        config["rootfs"]["diff_ids"] = ["sha256:" + "1" * 64]
        needle = "does not decompress to the config's diff_id sha256:1111"
    else:
        manifest["layers"][0]["size"] += 1
        needle = "but the manifest says"
    _relink(root, manifest, config)
    src = _app_on(root, tmp_path)
    proc = run("build", "app.yaml", "-o", "out", cwd=src, cache=tmp_path / "cache")
    assert_one_line_error(proc, needle)
    assert not (src / "out").exists()
    blobs = tmp_path / "cache" / "distill" / "blobs" / "sha256"
    assert not blobs.exists() or not list(blobs.iterdir())


def test_a_corrupt_gzip_layer_is_one_line(tmp_path: Path) -> None:
    """A flipped byte inside a gzip layer: ISA-L raises its own IsalError (not zlib.error),
    a traceback for `distill audit`, `compare` and a build `from: oci:`."""
    root = tmp_path / "base"
    tar = layer_tar([F(f"usr/share/f{i}", bytes(range(256)) * 40) for i in range(8)])
    blob = bytearray(gzip.compress(tar, mtime=0))
    blob[len(blob) // 3] ^= 0x55  # inside the deflate stream: an invalid code, not a CRC error
    write_layout(root, [], raw_layers=[bytes(blob)])
    write_layout(tmp_path / "good", [tar])
    for args in (("audit", str(root)), ("compare", str(root), str(tmp_path / "good"))):
        assert_one_line_error(run(*args, cwd=tmp_path, cache=tmp_path / "cache"), "is not a readable tar")
    src = _app_on(root, tmp_path)
    proc = run("build", "app.yaml", "-o", "out", cwd=src, cache=tmp_path / "cache")
    assert_one_line_error(proc, "is not a readable tar")


def test_cache_commands_refuse_a_directory_that_is_not_a_cache(tmp_path: Path) -> None:
    """`cache prune --cache-dir IMAGE.oci --max-size 0` deleted every blob of the user's
    layout, and `cache verify --cache-dir PROJECT` any file under its debs/ whose name is
    not a digest: a mistyped --cache-dir must remove nothing."""
    layout = tmp_path / "image.oci"
    write_layout(layout, [layer_tar([F("etc/hostname", b"x\n")])])
    project = tmp_path / "project"
    (project / "debs").mkdir(parents=True)
    (project / "debs" / "mine.deb").write_bytes(b"!<arch>\n")
    (project / "README").write_text("x\n")
    before = {p: p.read_bytes() for d in (layout, project) for p in d.rglob("*") if p.is_file()}
    for args in (
        ("cache", "prune", "--cache-dir", str(layout), "--max-size", "0"),
        ("cache", "verify", "--cache-dir", str(layout)),
        ("cache", "prune", "--cache-dir", str(project), "--older-than", "0"),
        ("cache", "verify", "--cache-dir", str(project)),
    ):
        assert_one_line_error(run(*args, cwd=tmp_path, cache=tmp_path / "cache"), "is not a distill cache")
    assert {p: p.read_bytes() for d in (layout, project) for p in d.rglob("*") if p.is_file()} == before


def _fifo_in_place_of(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


@pytest.mark.parametrize("entry", ["layers/*.json", "expanded/*.idx", "blobs/sha256/*", "debs/*.deb"])
def test_a_fifo_in_the_cache_is_an_entry_made_again_not_a_hang(
    project: tuple[Server, Path], tmp_path: Path, entry: str
) -> None:
    """A FIFO where a cache entry belongs (a layer record, an expanded package's index, a
    blob, a .deb) blocked the build forever in open(); one in a worker thread made it
    ignore SIGTERM too. Now it is a damaged entry: removed and made again. `cache
    verify` skipped such files (exit 0): it removes them (exit 1)."""
    _, work = project
    cache = tmp_path / "cache"
    first = run("build", "app.yaml", "-o", "out", cwd=work, cache=cache)
    assert first.returncode == 0, first.stderr
    root = cache / "distill"
    if entry == "debs/*.deb":  # the .debs are read when nothing derived from them is left
        for d in ("layers", "expanded", "blobs"):
            shutil.rmtree(root / d)
    for p in root.glob(entry):
        _fifo_in_place_of(p)
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    env.pop("DISTILL_MIRROR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "distill", "build", "app.yaml", "-o", "again"],
        cwd=work, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == first.stdout.splitlines()[-1]
    assert _blobs_match(work / "again")
    os.mkfifo(root / "blobs" / "sha256" / ("a" * 64))
    proc = subprocess.run(
        [sys.executable, "-m", "distill", "cache", "verify", "--cache-dir", str(root)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1 and "not a regular file" in proc.stdout, proc.stdout + proc.stderr
    assert not (root / "blobs" / "sha256" / ("a" * 64)).exists()


@pytest.mark.parametrize(("field", "value"), [("name", "libc6"), ("version", "9.9"), ("architecture", "all")])
def test_a_lock_entry_must_name_the_deb_it_pins(
    project: tuple[Server, Path], tmp_path: Path, field: str, value: str
) -> None:
    """The lock's name becomes the package's status.d file while the .deb comes from its
    hash: an edited lock that called gcc-base 'libc6' built an image whose package list
    lacked gcc-base (its files installed, its record overwriting libc6's), exit 0."""
    _, work = project
    cache = tmp_path / "cache"
    assert run("lock", "app.yaml", cwd=work, cache=cache).returncode == 0
    lock_path = work / "app.lock.json"
    doc = json.loads(lock_path.read_text())
    entry = next(p for p in doc["archs"]["amd64"]["packages"] if p["name"] == "gcc-base")
    entry[field] = value
    lock_path.write_text(json.dumps(doc))
    proc = run("build", "app.yaml", "-o", "out", cwd=work, cache=cache)
    assert_one_line_error(proc, "which is 'gcc-base' '14.2-1' ('amd64')")
    assert not (work / "out").exists()


@pytest.mark.parametrize("tag", ["a\nb:1", "a:b:c", "../x", "App:1", "x:" + "t" * 129])
def test_a_tag_that_is_not_an_image_reference_is_refused(
    project: tuple[Server, Path], tmp_path: Path, tag: str
) -> None:
    """--tag went unchecked into ref.name and RepoTags: an archive podman and docker
    refuse to load ("invalid reference format"), written with exit 0."""
    _, work = project
    cache = tmp_path / "cache"
    for out in ("out", "img.tar"):
        proc = run("build", "app.yaml", "-o", out, "--tag", tag, cwd=work, cache=cache)
        assert_one_line_error(proc, "is not an image reference")
        assert not (work / out).exists()
    for good in ("team/app:1.0", "localhost:5000/team/app:v1", "registry.example/x/y"):
        proc = run("build", "app.yaml", "-o", "img.tar", "--tag", good, cwd=work, cache=cache)
        assert proc.returncode == 0, proc.stderr


def _python_base(root: Path) -> None:
    """A layout whose dpkg status says python3.13 and glibc 2.41: enough for a python app."""
    status = b"".join(
        f"Package: {n}\nVersion: {v}\nArchitecture: amd64\nStatus: install ok installed\n\n".encode()
        for n, v in (("libc6", "2.41-1"), ("python3.13-minimal", "3.13.5-1"))
    )
    write_layout(
        root,
        [
            layer_tar(
                [
                    F("var/lib/dpkg/status", status),
                    F("usr/bin/python3.13", b"\x7fELF"),
                    F("usr/bin/python3", kind="symlink", target="python3.13"),
                ]
            )
        ],
    )


def test_a_huge_dockerignore_is_refused_not_matched_for_an_hour(tmp_path: Path) -> None:
    """Every file was matched against every .dockerignore pattern with fnmatch, whose
    cache holds 32768 compiled patterns: 100k patterns (1 MiB, within the 4 MiB text
    limit) took ~4 s per file, an hour for a small project. Now at most 4096 patterns
    (one error line), each compiled once."""
    _python_base(tmp_path / "base")
    src = _app_on(tmp_path / "base", tmp_path)
    (src / ".dockerignore").write_text("".join(f"p{i}x*y\n" for i in range(100_000)))
    t = time.monotonic()
    proc = run("build", "app.yaml", "-o", "out", cwd=src, cache=tmp_path / "cache")
    assert_one_line_error(
        proc, "more than 4096 exclude patterns (.dockerignore, app.exclude and the built-in ones together)"
    )
    assert time.monotonic() - t < 20
    # Under the limit, patterns still apply (and quickly).
    (src / "secret.txt").write_text("x\n")
    (src / ".dockerignore").write_text("".join(f"p{i}x*y\n" for i in range(4000)) + "secret*\n")
    t = time.monotonic()
    proc = run("build", "app.yaml", "-o", "out", cwd=src, cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - t < 30
    index = json.loads((src / "out" / "index.json").read_text())
    manifest = json.loads(
        (src / "out" / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_text()
    )
    top = src / "out" / "blobs" / "sha256" / manifest["layers"][-1]["digest"][7:]
    with tarfile.open(top) as tf:
        names = tf.getnames()
    assert "app/myapp/__main__.py" in names and not any("secret" in n for n in names), names


def test_a_dockerfile_error_never_quotes_a_line_of_the_file(tmp_path: Path) -> None:
    """`distill audit FILE` quoted the first word of an unknown instruction whatever it
    was: a file with a FROM line and a shadow-like line had that line in the error.
    Only a plain identifier (a typo like FROOM) is quoted now (distill.redact)."""
    f = tmp_path / "Dockerfile"
    f.write_text("FROM scratch\nroot:$6$saltSECRET:19000:0:99999:7:::\n")
    proc = run("audit", str(f), cwd=tmp_path, cache=tmp_path / "cache")
    assert_one_line_error(proc, "Dockerfile:2: unparsable Dockerfile (unknown instruction <key>)")
    assert "SECRET" not in proc.stderr + proc.stdout
    f.write_text("FROM scratch\nFROOM x\n")
    proc = run("audit", str(f), cwd=tmp_path, cache=tmp_path / "cache")
    assert_one_line_error(proc, "(unknown instruction 'FROOM')")


def test_a_base_layout_shares_no_inode_with_the_cache(tmp_path: Path) -> None:
    """The base layout's layers were hard-linked into the cache: a base that is itself an
    output of distill then shared inodes with the cache (damaging it in place damaged
    the cache). They are copied, hashed on the way."""
    _python_base(tmp_path / "base")
    src = _app_on(tmp_path / "base", tmp_path)
    proc = run("build", "app.yaml", "-o", "out", cwd=src, cache=tmp_path / "cache")
    assert proc.returncode == 0, proc.stderr
    base = {p.stat().st_ino for p in (tmp_path / "base" / "blobs" / "sha256").iterdir()}
    cached = {p.stat().st_ino for p in (tmp_path / "cache" / "distill" / "blobs" / "sha256").iterdir()}
    assert len(cached) >= 2 and not base & cached


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_damaged_cached_base_layer_is_pulled_again(tmp_path: Path, damage: str) -> None:
    """A base image's layers are kept in the cache's blob store (a locked build reads
    them from there, offline too): one damaged there is removed and pulled again from
    the base (one warning), never a failed build or a wrong image."""
    _python_base(tmp_path / "base")
    src = _app_on(tmp_path / "base", tmp_path)
    first = run("build", "app.yaml", "-o", "out", cwd=src, cache=tmp_path / "cache")
    assert first.returncode == 0, first.stderr
    blobs = tmp_path / "base" / "blobs" / "sha256"
    top = json.loads((tmp_path / "base" / "index.json").read_text())["manifests"][0]["digest"][7:]
    layers = [d["digest"][7:] for d in json.loads((blobs / top).read_text())["layers"]]
    cached = tmp_path / "cache" / "distill" / "blobs" / "sha256" / layers[0]
    data = bytearray(cached.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x55
    else:
        data = data[: len(data) // 2]
    cached.write_bytes(bytes(data))
    again = run("build", "app.yaml", "-o", "again", cwd=src, cache=tmp_path / "cache")
    assert again.returncode == 0, again.stderr
    assert "warning:" in again.stderr and "does not match its digest" in again.stderr, again.stderr
    assert again.stdout.splitlines()[-1] == first.stdout.splitlines()[-1]
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == layers[0]


def test_prune_keeps_a_locked_base_image(tmp_path: Path) -> None:
    """`cache prune --keep-lock` keeps what a lock of an app `from:` an image needs: the
    base's documents and layers in the blob store, so the locked build still runs offline."""
    _python_base(tmp_path / "base")
    src = _app_on(tmp_path / "base", tmp_path)
    cache = tmp_path / "cache"
    assert run("lock", "app.yaml", cwd=src, cache=cache).returncode == 0
    first = run("build", "app.yaml", "--locked", "-o", "out", cwd=src, cache=cache)
    assert first.returncode == 0, first.stderr
    shutil.rmtree(tmp_path / "base" / "blobs")  # from now on only the cache has the image
    root = str(cache / "distill")
    pruned = run(
        "cache",
        "prune",
        "--cache-dir",
        root,
        "--max-size",
        "0",
        "--keep-lock",
        "app.yaml".replace(".yaml", ".lock.json"),
        cwd=src,
        cache=cache,
    )
    assert pruned.returncode == 0, pruned.stderr
    again = run("build", "app.yaml", "--locked", "--offline", "-o", "again", cwd=src, cache=cache)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == first.stdout.splitlines()[-1]
    # without the lock kept, the base is gone from the cache: one line, offline
    run("cache", "prune", "--cache-dir", root, "--max-size", "0", cwd=src, cache=cache)
    proc = run("build", "app.yaml", "--locked", "--offline", "-o", "third", cwd=src, cache=cache)
    assert_one_line_error(proc, "not (wholly) in the cache")


def test_a_long_extends_chain_is_one_clear_line(tmp_path: Path) -> None:
    """Each extends level was a recursion with a YAML parse in it: a chain of ~1000 specs
    ended in Python's recursion limit, reported as 'e982.yaml: invalid YAML: nested too
    deep' about a one-line file. The chain is capped (32) with its own message."""
    for i in range(1, 41):
        (tmp_path / f"e{i}.yaml").write_text(f"extends: e{i + 1}.yaml\n")
    (tmp_path / "e41.yaml").write_text("extends: static\n")
    proc = run("lock", "e1.yaml", "--offline", cwd=tmp_path, cache=tmp_path / "cache")
    assert_one_line_error(proc, "e1.yaml: an extends chain of more than 32 specs")
    for i in range(1, 1201):
        (tmp_path / f"e{i}.yaml").write_text(f"extends: e{i + 1}.yaml\n")
    (tmp_path / "e1201.yaml").write_text("extends: static\n")
    proc = run("lock", "e1.yaml", "--offline", cwd=tmp_path, cache=tmp_path / "cache")
    assert_one_line_error(proc, "e1.yaml: an extends chain of more than 32 specs")


def test_replacing_a_symlinked_output_leaves_no_temporary_name(
    project: tuple[Server, Path], tmp_path: Path
) -> None:
    """-o LINK where LINK is a symlink to a layout: the exchange put the symlink at the
    temporary name, rmtree refused it (ignore_errors), and '.LINK.xxx.tmp' stayed."""
    _, work = project
    cache = tmp_path / "cache"
    assert run("build", "app.yaml", "-o", "real.oci", cwd=work, cache=cache).returncode == 0
    (work / "link").symlink_to("real.oci")
    proc = run("build", "app.yaml", "-o", "link", "--tag", "other:1", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in work.iterdir() if p.name.startswith(".")) == []
    assert (work / "link").is_dir() and not (work / "link").is_symlink() and _blobs_match(work / "link")
    assert (work / "real.oci" / "index.json").is_file()  # the link's target is left alone


@pytest.mark.parametrize("epoch", ["\u00b2", "99999999999999", "\u0661\u0660\u0660"])
def test_source_date_epoch_is_ascii_seconds_with_a_date(
    project: tuple[Server, Path], tmp_path: Path, epoch: str
) -> None:
    """str.isdigit() took '²' (then int() raised: a traceback) and Arabic-Indic digits;
    a time past the year 9999 was a ValueError traceback when the config was dated."""
    _, work = project
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "SOURCE_DATE_EPOCH": epoch}
    env.pop("DISTILL_MIRROR", None)
    proc = subprocess.run(
        [sys.executable, "-m", "distill", "build", "app.yaml", "-o", "out"],
        cwd=work, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert_one_line_error(proc, "is not a number of seconds up to 253402300799")
    assert not (work / "out").exists()


def test_a_url_httpx_cannot_parse_is_one_line(tmp_path: Path) -> None:
    """httpx.InvalidURL is not an httpx.HTTPError: a mirror or registry address with a bad
    port or a control character was a traceback (also a token realm a registry sends)."""
    (tmp_path / "m.yaml").write_text("packages: [x]\n")
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "DISTILL_MIRROR": "http://[::1"}
    proc = subprocess.run(
        [sys.executable, "-m", "distill", "lock", "m.yaml"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert_one_line_error(proc, "not a valid URL (Invalid port")
    proc = run("audit", "docker://[::1/x:1", cwd=tmp_path, cache=tmp_path / "cache")
    assert_one_line_error(proc, "is not a registry reference")


def test_a_directory_tree_1100_levels_deep_is_walked(tmp_path: Path) -> None:
    """Python 3.11's os.walk recurses once per level: `distill audit DIR` (and an app's
    source) 1100 directories deep was a RecursionError traceback."""
    deep = tmp_path / "deep"
    deep.mkdir()
    here = os.getcwd()
    os.chdir(deep)
    try:  # relative mkdirs: the absolute path would pass PATH_MAX
        for _ in range(1100):
            os.mkdir("a")
            os.chdir("a")
        Path("Dockerfile").write_text("FROM scratch\nUSER 1000\n")
    finally:
        os.chdir(here)
    try:
        proc = run("audit", "deep", cwd=tmp_path, cache=tmp_path / "cache")
    finally:  # shutil.rmtree (pytest's clean-up) recurses per level too: remove it here
        subprocess.run(["find", str(deep), "-depth", "-delete"], check=True)
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Dockerfile" in proc.stdout


def test_a_lock_that_is_no_regular_file_is_refused_not_ignored(
    project: tuple[Server, Path], tmp_path: Path
) -> None:
    """A FIFO (or a dangling symlink) where the lock belongs was taken for 'no lock': the
    spec was resolved again and the build exited 0 on packages nobody pinned."""
    _, work = project
    cache = tmp_path / "cache"
    os.mkfifo(work / "app.lock.json")
    proc = run("build", "app.yaml", "-o", "out", cwd=work, cache=cache)
    assert_one_line_error(proc, "not a regular file")
    assert not (work / "out").exists()
    (work / "app.lock.json").unlink()
    (work / "app.lock.json").symlink_to(tmp_path / "gone.json")
    proc = run("build", "app.yaml", "-o", "out", cwd=work, cache=cache)
    assert_one_line_error(proc, "app.lock.json: no such file")
    assert not (work / "out").exists()


@pytest.mark.parametrize("days", ["-1", "nan", "inf", "-inf", "x"])
def test_cache_prune_refuses_days_that_are_no_age(tmp_path: Path, days: str) -> None:
    """--older-than -1 removed every entry (argparse's float takes -1, nan and inf)."""
    cache = tmp_path / "cache"
    entry = cache / "distill" / "debs" / f"{'0' * 64}.deb"
    entry.parent.mkdir(parents=True)
    entry.write_bytes(b"x")
    proc = run("cache", "prune", f"--older-than={days}", cwd=tmp_path, cache=cache)
    assert_one_line_error(proc, "is not a number of days")
    assert entry.exists()
