"""distill audit on real images: conventional Debian images built with mmdebstrap
(minbase, and one with curl and python3 plus an application layer), read from an OCI
layout, OCI and docker archives (made by skopeo), podman's storage and a real
registry server (Debian's docker-registry on 127.0.0.1) without auth, with basic
auth (htpasswd) and with bearer tokens; and the migrated spec built and run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conventional import debian_image
from ocitools import F, layer_tar
from registries import Registry, TokenService, basic_auth, free_port

pytestmark = [pytest.mark.network, pytest.mark.podman]
PIP_DEPS = ("itsdangerous==2.2.0", "six==1.17.0")
REPO = Path(__file__).resolve().parent.parent


def sh(*cmd: str, env: dict[str, str] | None = None, timeout: int = 600, stdin: str | None = None) -> str:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, input=stdin)
    assert proc.returncode == 0, f"{' '.join(cmd)}: {proc.stderr}"
    return proc.stdout


def audit(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, code: int = 0
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "distill", "audit", *args, "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        input=stdin,
    )
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    return proc


def report(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> dict:  # type: ignore[type-arg]
    doc = json.loads(audit(*args, "--format", "json", env=env, stdin=stdin).stdout)
    assert not doc["errors"]
    return doc["reports"][0]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def conventional(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Two Debian 12 images from mmdebstrap, packed into OCI layouts by umoci:
    minbase, and minbase + curl + python3 + an application layer."""
    for tool in ("mmdebstrap", "umoci", "skopeo"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: run scripts/setup.sh")
    d = tmp_path_factory.mktemp("conventional")
    out: dict[str, Path] = {}
    for name, include in (("minbase", None), ("curlpy", "curl,python3")):
        out[f"{name}.tar"], out[name] = debian_image(d, name, include)
    # The application layer: code, a private key left behind, a world-writable data
    # directory, python3.11 rewritten (waste) and dash whited out.
    key = sh("openssl", "genpkey", "-algorithm", "ed25519").encode()
    with tarfile.open(out["curlpy.tar"]) as tf:
        member = tf.extractfile("./usr/bin/python3.11")
        assert member is not None
        python = member.read()
    # What `pip install itsdangerous==2.2.0 six==1.17.0` leaves in a Debian image: installed
    # here by the real pip (wheels for the image's CPython 3.11), into the app's layer.
    deps = d / "deps"
    sh(sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile",
       "--target", str(deps), "--python-version", "3.11", "--only-binary=:all:", *PIP_DEPS)  # fmt: skip
    site = [
        F(f"usr/local/lib/python3.11/dist-packages/{p.relative_to(deps)}", p.read_bytes())
        for p in sorted(deps.rglob("*"))
        if p.is_file()
    ]
    app = layer_tar(
        [
            *site,
            F("app", kind="dir", mode=0o755),
            F("app/app.py", b"print('hello from the app')\n"),
            F("app/server.key", key, 0o600),
            F("app/data", kind="dir", mode=0o777),
            F("usr/bin/python3.11", python, 0o755),
            F("usr/bin/.wh.dash"),
        ]
    )
    (d / "app.tar").write_bytes(app)
    layout = out["curlpy"]
    sh("umoci", "raw", "add-layer", "--image", f"{layout}:1", str(d / "app.tar"))
    sh(
        "umoci",
        "config",
        "--image",
        f"{layout}:1",
        "--config.cmd",
        "python3",
        "--config.cmd",
        "/app/app.py",
        "--config.workingdir",
        "/app",
        "--config.exposedports",
        "8000/tcp",
        "--config.env",
        "GREETING=hi",
    )
    yield out
    shutil.rmtree(d, ignore_errors=True)  # hundreds of MiB of root filesystems: not kept, even on failure


def _ids(r: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {f["id"]: f for f in r["findings"]}


def test_minbase_shells_apt_dpkg_setuid_and_packages(conventional: dict[str, Path]) -> None:
    r = report(f"{conventional['minbase']}:1")
    ids = _ids(r)
    assert {"/usr/bin/bash", "/usr/bin/dash", "/usr/bin/sh"} <= set(ids["IMG-SHELL"]["paths"])
    assert {"/usr/bin/apt", "/usr/bin/apt-get", "/usr/bin/dpkg"} <= set(ids["IMG-PKG-MANAGER"]["paths"])
    assert {"/usr/bin/su", "/usr/bin/passwd", "/usr/bin/mount", "/usr/bin/chage"} <= set(
        ids["IMG-SETUID"]["paths"]
    )
    assert "IMG-ROOT" in ids and r["grade"] == "F"
    fx = r["facts"]
    assert fx["os"] == "Debian GNU/Linux 12 (bookworm)" and fx["libc"].startswith("glibc 2.36")
    # counted independently from the rootfs tarball mmdebstrap wrote
    with tarfile.open(conventional["minbase.tar"]) as tf:
        members = tf.getmembers()
        status = tf.extractfile("./var/lib/dpkg/status").read().decode()  # type: ignore[union-attr]
    assert fx["packages"] == status.count("\nStatus: install ok installed") + status.startswith(
        "Status: install ok installed"
    )
    assert fx["files"] == sum(1 for m in members if m.isfile() or m.islnk())
    assert fx["verdict"].startswith("conventional image: a shell, a package manager")


def test_curl_python_image_from_every_kind_of_source(
    conventional: dict[str, Path], env: dict[str, str], tmp_path: Path
) -> None:
    layout = f"{conventional['curlpy']}:1"
    r = report(layout)
    ids = _ids(r)
    assert "/usr/bin/curl" in ids["IMG-NETWORK-TOOL"]["paths"]
    assert "/usr/bin/dash" not in ids["IMG-SHELL"]["paths"] and "/usr/bin/bash" in ids["IMG-SHELL"]["paths"]
    assert ids["IMG-PRIVATE-KEY"]["paths"] == ["/app/server.key"]
    assert ids["IMG-WORLD-WRITABLE"]["paths"] == ["/app/data"]
    assert ids["IMG-WASTED-SPACE"]["paths"][0] == "/usr/bin/python3.11"
    rec = r["recommendation"]
    assert rec["flavor"] == "python3" and rec["app"]["entrypoint"] == ["/app/app.py"]
    # the same image as an OCI archive, a docker archive, in podman, and by digest
    oci_archive, docker_archive = tmp_path / "oci.tar", tmp_path / "docker.tar"
    sh("skopeo", "copy", "-q", f"oci:{layout}", f"oci-archive:{oci_archive}:1")
    sh("skopeo", "copy", "-q", f"oci:{layout}", f"docker-archive:{docker_archive}:conv/curlpy:1")
    sh("skopeo", "copy", "-q", f"oci:{layout}", "containers-storage:localhost/conv/curlpy:1", env=env)
    want = {k: v for k, v in r["facts"].items() if k not in ("name", "digest", "compressed_bytes")}
    for target, e in (
        (str(oci_archive), None),
        (str(docker_archive), None),
        ("podman:localhost/conv/curlpy:1", env),
    ):
        other = report(target, env=e)
        got = {k: v for k, v in other["facts"].items() if k not in ("name", "digest", "compressed_bytes")}
        assert got == want, target
        assert sorted(f["id"] for f in other["findings"]) == sorted(ids)


def test_migrated_spec_builds_and_runs(
    conventional: dict[str, Path], env: dict[str, str], tmp_path: Path
) -> None:
    # the spec's app.source is '.', the directory of the spec: write it beside the code
    (tmp_path / "app").mkdir()
    spec = tmp_path / "app" / "migrated.yaml"
    audit(f"{conventional['curlpy']}:1", "--write-spec", str(spec))
    text = spec.read_text()
    assert "from: python3" in text and "GREETING: hi" in text and "- 8000" in text
    # what pip had installed in the image, pinned beside the spec, for the image's Python (3.11: debian12)
    pins = [
        line for line in (tmp_path / "app" / "requirements.txt").read_text().splitlines() if line[:1] != "#"
    ]
    assert pins == list(PIP_DEPS)
    assert "requirements: requirements.txt" in text and "distro: debian12" in text
    (tmp_path / "app" / "app.py").write_text(
        "import os, importlib.metadata as md, itsdangerous, six\n"
        "print('migrated', os.getuid(), os.environ['GREETING'], md.version('itsdangerous'), six.__version__)\n"
    )
    cache = ["--cache-dir", env["DISTILL_TEST_CACHE"]]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "distill",
            "build",
            str(tmp_path / "app" / "migrated.yaml"),
            "--load",
            "--tag",
            "migrated:1",
            *cache,
            "-q",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr
    # python3 runs /app/app.py as uid 65532 on the distroless flavor
    out = sh("podman", "run", "--rm", "--network", "none", "localhost/migrated:1", env=env)
    assert out.strip() == "migrated 65532 hi 2.2.0 1.17.0"
    r = report("podman:localhost/migrated:1", env=env)
    assert r["grade"] == "A" and not r["facts"]["shells"] and not r["facts"]["package_managers"]


# -- registries -------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_image(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Path:
    """distill's static image (nonroot), as a layout to push."""
    d = tmp_path_factory.mktemp("small")
    cache = ["--cache-dir", env["DISTILL_TEST_CACHE"]]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "distill",
            "build",
            "static",
            "--variant",
            "nonroot",
            "-o",
            str(d / "static"),
            "--tag",
            "static:nonroot",
            *cache,
            "-q",
        ],
        env=env,
        check=True,
        timeout=600,
    )
    return d / "static"


@pytest.fixture
def registries(tmp_path: Path) -> Iterator[dict[str, object]]:
    made: list[object] = []
    tokens = TokenService(tmp_path)
    made.append(tokens)
    out: dict[str, object] = {}
    try:
        for name, auth in (("open", None), ("basic", basic_auth(tmp_path)), ("bearer", tokens.auth())):
            reg = Registry(tmp_path / name, auth)
            made.append(reg)
            out[name] = reg
        yield out
    finally:
        for m in made:
            m.close()  # type: ignore[attr-defined]


def test_registry_open_basic_and_bearer(small_image: Path, registries: dict[str, object]) -> None:
    local = report(f"{small_image}:nonroot")
    assert local["grade"] == "A"
    for name, reg in registries.items():
        port = reg.port  # type: ignore[attr-defined]
        creds = [] if name == "open" else ["--dest-creds", "user:secret"]
        sh(
            "skopeo",
            "copy",
            "-q",
            "--dest-tls-verify=false",
            *creds,
            f"oci:{small_image}:nonroot",
            f"docker://127.0.0.1:{port}/distill/static:nonroot",
        )
        ref = f"docker://127.0.0.1:{port}/distill/static:nonroot"
        if name != "open":
            # no credentials: one line naming what is missing
            proc = audit(ref, code=2, env={**os.environ, "HOME": "/nonexistent"})
            assert "anonymous" in proc.stderr or "user name and password" in proc.stderr, proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1
            proc = audit(ref, "--username", "user", "--password-stdin", stdin="wrong\n", code=2)
            assert "refused" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
            r = report(ref, "--username", "user", "--password-stdin", stdin="secret\n")
            env = {**os.environ, "DISTILL_REGISTRY_USERNAME": "user", "DISTILL_REGISTRY_PASSWORD": "secret"}
            assert report(ref, env=env)["facts"]["digest"] == r["facts"]["digest"]
        else:
            r = report(ref)
        assert (
            r["facts"]["packages"] == local["facts"]["packages"]
            and r["facts"]["files"] == local["facts"]["files"]
        )
        assert r["findings"] == local["findings"] and r["grade"] == "A"
        # by digest, and a digest the registry does not have
        by_digest = f"docker://127.0.0.1:{port}/distill/static@{r['facts']['digest']}"
        extra = [] if name == "open" else ["--username", "user", "--password-stdin"]
        stdin = None if name == "open" else "secret\n"
        assert report(by_digest, *extra, stdin=stdin)["facts"]["files"] == r["facts"]["files"]
        proc = audit(
            f"docker://127.0.0.1:{port}/distill/static@sha256:{'1' * 64}", *extra, stdin=stdin, code=2
        )
        assert "not found" in proc.stderr
    # a registry that is not there
    proc = audit(f"docker://127.0.0.1:{free_port()}/distill/static:nonroot", code=2)
    assert "cannot reach" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
