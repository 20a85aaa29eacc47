"""Images in and out of a real registry (Debian's docker-registry on 127.0.0.1): push of
a multi-arch python3 image pulled back by skopeo and run by podman (arm64 under qemu),
pushes with Basic and bearer auth, chunked and resumed uploads, faults (a registry
stopped mid-push, 5xx answers, a rejected manifest, a garbled one), and apps built
`from:` a registry (by tag and digest), podman's storage and an OCI archive, locked."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hostile import one_error_line
from registries import Proxy, Registry, TokenService, basic_auth, free_port, sh

pytestmark = [pytest.mark.network, pytest.mark.podman]


def distill(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "distill", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=900, input=stdin,
    )  # fmt: skip


def ok(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def layout_digest(layout: Path) -> str:
    return str(json.loads((layout / "index.json").read_text())["manifests"][0]["digest"])


def raw_digest(ref: str, *creds: str) -> str:
    raw = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", *creds, f"docker://{ref}"],
        capture_output=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def blob_writes(reg: Registry, repo: str | None = None) -> list[tuple[str, str]]:
    """The blob uploads the registry saw (POST of a session, PATCH, PUT), for ``repo``."""
    return [
        (m, p)
        for m, p in reg.requests()
        if "/blobs/uploads/" in p and m in ("PATCH", "PUT") and (repo is None or p.startswith(f"/v2/{repo}/"))
    ]


@pytest.fixture(scope="module")
def cache(env: dict[str, str]) -> list[str]:
    return ["--cache-dir", env["DISTILL_TEST_CACHE"]]


@pytest.fixture(scope="module")
def py3(tmp_path_factory: pytest.TempPathFactory, cache: list[str]) -> Path:
    """distill's python3 (nonroot), amd64 and arm64, as an OCI layout."""
    out = tmp_path_factory.mktemp("py3") / "python3.oci"
    ok(distill("build", "python3", "--variant", "nonroot", "-o", str(out), *cache, "-q"))
    return out


@pytest.fixture(scope="module")
def static(tmp_path_factory: pytest.TempPathFactory, cache: list[str]) -> Path:
    """distill's static, amd64 only: a small image for the auth and fault tests."""
    out = tmp_path_factory.mktemp("static") / "static.oci"
    ok(distill("build", "static", "--arch", "amd64", "-o", str(out), *cache, "-q"))
    return out


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.close()


# -- push -------------------------------------------------------------------------------


def test_push_multiarch_python3_pulls_and_runs(
    py3: Path, registry: Registry, env: dict[str, str], cache: list[str], tmp_path: Path
) -> None:
    ref = f"{registry.host}/distill/python3"
    lines = ok(distill("push", str(py3), f"{ref}:nonroot", f"{ref}:3.13", "-q"))
    digest = layout_digest(py3)
    assert lines[-1] == f"{ref}@{digest}"
    assert "12 blobs uploaded" in lines[0] and "3 manifests written" in lines[0], lines
    # The platform manifests went in by digest before the index, the tags last.
    puts = [p for m, p in registry.requests() if m == "PUT" and "/manifests/" in p]
    assert [p.rsplit("/", 1)[1].startswith("sha256:") for p in puts] == [True, True, True, False, False], puts
    # Both tags name the index; skopeo reads it and each platform.
    assert raw_digest(f"{ref}:nonroot") == raw_digest(f"{ref}:3.13") == digest
    for arch in ("amd64", "arm64"):
        info = json.loads(
            sh("skopeo", "inspect", "--tls-verify=false", "--override-arch", arch, f"docker://{ref}:nonroot")
        )
        assert info["Architecture"] == arch
    # skopeo copies it back byte for byte.
    back = tmp_path / "back"
    sh("skopeo", "copy", "-q", "--all", "--src-tls-verify=false", f"docker://{ref}:nonroot", f"oci:{back}:x")
    assert layout_digest(back) == digest
    # podman pulls and runs it, amd64 and (under qemu) arm64: Python as uid 65532.
    for arch, machine in (("amd64", "x86_64"), ("arm64", "aarch64")):
        sh("podman", "pull", "-q", "--tls-verify=false", "--arch", arch, f"{ref}:nonroot", env=env)
        out = sh(
            "podman", "run", "--rm", "--network", "none", "--arch", arch, f"{ref}:nonroot", "-c",
            "import os, platform, sys; print(sys.version_info[:2], os.getuid(), platform.machine())",
            env=env, timeout=300,
        )  # fmt: skip
        assert out.split() == ["(3,", "13)", "65532", machine], out
    # A second push uploads nothing (the registry's own log) and only checks.
    before = len(blob_writes(registry))
    lines = ok(distill("push", str(py3), f"{ref}:nonroot", "-q"))
    assert "0 blobs uploaded" in lines[0] and "12 already there" in lines[0], lines
    assert len(blob_writes(registry)) == before
    # build --push of the same spec gives the same digest, and uploads nothing either.
    lines = ok(distill("build", "python3", "--variant", "nonroot", "--push", f"{ref}:again", *cache, "-q"))
    assert lines[-1] == f"{ref}@{digest}"
    assert len(blob_writes(registry)) == before


@pytest.fixture
def auth_registries(tmp_path: Path) -> Iterator[dict[str, Registry]]:
    tokens = TokenService(tmp_path)
    regs: dict[str, Registry] = {}
    try:
        regs["basic"] = Registry(tmp_path / "basic", basic_auth(tmp_path))
        regs["bearer"] = Registry(tmp_path / "bearer", tokens.auth())
        yield regs
    finally:
        for reg in regs.values():
            reg.close()
        tokens.close()


def test_push_with_basic_and_bearer_auth(static: Path, auth_registries: dict[str, Registry]) -> None:
    digest = layout_digest(static)
    for name, reg in auth_registries.items():
        ref = f"{reg.host}/team/static:1"
        home = {**os.environ, "HOME": "/nonexistent", "REGISTRY_AUTH_FILE": "/nonexistent"}
        for k in ("DISTILL_REGISTRY_USERNAME", "DISTILL_REGISTRY_PASSWORD"):
            home.pop(k, None)
        line = one_error_line(distill("push", str(static), ref, "-q", env=home))
        assert "anonymous" in line or "user name and password" in line, (name, line)
        line = one_error_line(
            distill(
                "push",
                str(static),
                ref,
                "--username",
                "user",
                "--password-stdin",
                "-q",
                stdin="wrong\n",
                env=home,
            )
        )
        assert "refused" in line, (name, line)
        lines = ok(
            distill(
                "push", str(static), ref, "--username", "user", "--password-stdin", "-q", stdin="secret\n"
            )
        )
        assert lines[-1] == f"{reg.host}/team/static@{digest}"
        # the environment's credentials; the image is there (skopeo, with the credentials)
        creds = {**home, "DISTILL_REGISTRY_USERNAME": "user", "DISTILL_REGISTRY_PASSWORD": "secret"}
        assert "1 already there" in ok(distill("push", str(static), ref, "-q", env=creds))[0]
        assert raw_digest(ref, "--creds", "user:secret") == digest
        # nothing was tagged by the refused pushes: only 1 exists
        tags = json.loads(
            sh(
                "skopeo",
                "list-tags",
                "--tls-verify=false",
                "--creds",
                "user:secret",
                f"docker://{reg.host}/team/static",
            )
        )
        assert tags["Tags"] == ["1"]


def test_chunked_upload_and_a_resumed_chunk(py3: Path, tmp_path: Path) -> None:
    """Blobs above --chunk-size go in PATCHes; a PATCH cut by a dropped connection is
    resumed from the offset the upload session reports (GET on it), not restarted."""
    reg = Registry(tmp_path / "reg")
    cut = {"done": False}

    def hook(method: str, path: str) -> str | None:
        if method == "PATCH" and not cut["done"] and len([1 for s in proxy.seen if s[0] == "PATCH"]) == 5:
            cut["done"] = True
            return "cut"
        return None

    proxy = Proxy(reg.host, hook)
    try:
        ref = f"{proxy.host}/distill/python3:chunked"
        lines = ok(distill("push", str(py3), ref, "--chunk-size", "1M", "-j", "1", "-q"))
        assert lines[-1] == f"{proxy.host}/distill/python3@{layout_digest(py3)}"
        patches = [s for s in proxy.seen if s[0] == "PATCH"]
        assert len(patches) > 12 and cut["done"]  # the biggest layers went in chunks
        assert any(s[2] == -1 for s in patches)  # the cut one
        # resumed: the session was asked where it stands (GET on the upload location)
        assert any(s[0] == "GET" and "/blobs/uploads/" in s[1] for s in proxy.seen)
        assert raw_digest(f"{reg.host}/distill/python3:chunked") == layout_digest(py3)
        back = tmp_path / "back"
        sh(
            "skopeo",
            "copy",
            "-q",
            "--all",
            "--src-tls-verify=false",
            f"docker://{reg.host}/distill/python3:chunked",
            f"oci:{back}:x",
        )
        assert layout_digest(back) == layout_digest(py3)
    finally:
        proxy.close()
        reg.close()


def test_registry_stopped_mid_push_then_restarted(py3: Path, tmp_path: Path) -> None:
    """The registry dies while blobs upload: one error line, exit 2, no tag; once it is
    back, the same push completes (what had arrived is skipped)."""
    reg = Registry(tmp_path / "reg")
    ref = f"{reg.host}/distill/python3:1"
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "distill", "push", str(py3), ref, "--chunk-size", "256K", "-j", "2", "-q"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

        def kill_when_uploading() -> None:  # two blobs whole, others on their way
            for _ in range(1200):
                if len([w for w in blob_writes(reg) if w[0] == "PUT"]) >= 2:
                    reg.stop()
                    return
                time.sleep(0.02)

        killer = threading.Thread(target=kill_when_uploading)
        killer.start()
        out, err = proc.communicate(timeout=300)
        killer.join()
        assert reg.proc is None, "the push finished before the registry was stopped"
        line = one_error_line(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        assert "cannot reach" in line, line
        reg.start()
        # nothing half-pushed is tagged
        missing = subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
            capture_output=True,
            timeout=60,
        )
        assert missing.returncode != 0
        lines = ok(distill("push", str(py3), ref, "-q"))
        assert lines[-1] == f"{reg.host}/distill/python3@{layout_digest(py3)}"
        counts = re.search(r"\((\d+) blobs uploaded .*, (\d+) already there;", lines[0])
        assert counts is not None, lines
        uploaded, there = int(counts.group(1)), int(counts.group(2))
        assert uploaded + there == 12 and there >= 2, lines  # what had arrived is skipped
        assert raw_digest(ref) == layout_digest(py3)
    finally:
        reg.close()


def test_a_pusher_pushes_again_after_a_failed_push(static: Path, tmp_path: Path) -> None:
    """A failed push stops its own uploads only: the same Pusher (publish keeps one for the
    whole family) pushes the next image whole (it stayed stopped: every blob refused)."""
    from distill.errors import RegistryError
    from distill.oci.push import Pusher
    from distill.oci.ref import parse_reference
    from distill.oci.source import open_source

    reg = Registry(tmp_path / "reg")
    failing = {"on": True}

    def hook(method: str, path: str) -> str | int | None:
        return 500 if failing["on"] and method == "PUT" and "/blobs/uploads/" in path else None

    proxy = Proxy(reg.host, hook)
    try:
        with open_source(str(static)) as source, Pusher.to(proxy.host, None, 2) as pusher:
            top = source.root()
            with pytest.raises(RegistryError):
                pusher.push(source, top, [parse_reference(f"{proxy.host}/x/static:1")])
            failing["on"] = False
            stats = pusher.push(source, top, [parse_reference(f"{proxy.host}/x/static:1")])
        assert stats.tags == ["1"]
        assert raw_digest(f"{reg.host}/x/static:1") == layout_digest(static)
    finally:
        proxy.close()
        reg.close()


def test_registry_faults_are_one_line_and_tag_nothing(static: Path, tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    mode = {"hook": ""}

    def hook(method: str, path: str) -> str | int | None:
        if mode["hook"] == "500":
            return 500
        if mode["hook"] == "reject" and method == "PUT" and "/manifests/" in path:
            return 400
        return None

    proxy = Proxy(reg.host, hook)
    try:
        mode["hook"] = "500"
        t0 = time.monotonic()
        line = one_error_line(distill("push", str(static), f"{proxy.host}/x/static:1", "-q"))
        assert "answered 500" in line, line
        assert len([s for s in proxy.seen if s[2] == 500]) >= 4  # retried, with backoff
        assert time.monotonic() - t0 < 60
        mode["hook"] = "reject"
        line = one_error_line(distill("push", str(static), f"{proxy.host}/x/static:1", "-q"))
        assert "refused the manifest" in line and "400" in line, line
        mode["hook"] = ""
        tags = subprocess.run(
            ["skopeo", "list-tags", "--tls-verify=false", f"docker://{reg.host}/x/static"],
            capture_output=True,
            text=True,
        )
        assert tags.returncode != 0 or json.loads(tags.stdout)["Tags"] in (None, [])
        # unreachable, bad references, a missing repository or tag
        line = one_error_line(distill("push", str(static), f"127.0.0.1:{free_port()}/x/static:1", "-q"))
        assert "cannot reach" in line
        for bad in ("static:1", "Team/App:1", f"{reg.host}/x/static:a:b", f"{reg.host}/x@sha256:{'0' * 64}"):
            line = one_error_line(distill("push", str(static), bad, "-q"))
            assert "reference" in line or "not a digest" in line, (bad, line)
        line = one_error_line(
            distill("push", f"docker://{reg.host}/nope/nothing:1", f"{reg.host}/x/y:1", "-q")
        )
        assert "not found" in line, line
        # a docker archive pushed: its layers as they are (uncompressed: named by their diff_id)
        docker = tmp_path / "docker.tar"
        sh("skopeo", "copy", "-q", f"oci:{static}", f"docker-archive:{docker}:distill/static:1")
        lines = ok(distill("push", str(docker), f"{reg.host}/x/from-archive:1", "-q"))
        pushed = json.loads(
            sh("skopeo", "inspect", "--tls-verify=false", f"docker://{reg.host}/x/from-archive:1")
        )
        assert pushed["Layers"] == _diff_ids(static, "amd64") and lines[-1].endswith(pushed["Digest"])
    finally:
        proxy.close()
        reg.close()


# -- from: an image ---------------------------------------------------------------------


def _app(root: Path, base: str, archs: str = "[amd64, arm64]") -> Path:
    (root / "hello").mkdir(parents=True, exist_ok=True)
    (root / "hello" / "__main__.py").write_text(
        "import os, sys\nprint('hello', sys.version_info[0], os.getuid())\n"
    )
    spec = root / "app.yaml"
    spec.write_text(
        f"name: hello\nfrom: {base}\narchs: {archs}\n"
        "app: {kind: python, entrypoint: [-m, hello], exclude: ['*.yaml', '*.json', '*.oci']}\n"
    )
    return spec


def _diff_ids(layout: Path, arch: str) -> list[str]:
    info = json.loads(sh("skopeo", "inspect", "--override-arch", arch, "--config", f"oci:{layout}"))
    return list(info["rootfs"]["diff_ids"])


def _layers(layout: Path) -> list[list[str]]:
    blobs = layout / "blobs" / "sha256"
    top = json.loads((blobs / layout_digest(layout)[7:]).read_text())
    manifests = top.get("manifests", [None])
    out = []
    for m in manifests:
        doc = top if m is None else json.loads((blobs / m["digest"][7:]).read_text())
        out.append([layer["digest"] for layer in doc["layers"]])
    return out


def test_app_from_a_registry_mounts_its_base_and_locks_it(
    py3: Path, registry: Registry, env: dict[str, str], cache: list[str], tmp_path: Path
) -> None:
    base = f"{registry.host}/distill/python3"
    ok(distill("push", str(py3), f"{base}:nonroot", "-q"))
    spec = _app(tmp_path / "app", f"docker://{base}:nonroot")
    lines = ok(distill("lock", str(spec)))
    lock = json.loads((tmp_path / "app" / "app.lock.json").read_text())
    assert lock["base"] == {"image": f"docker://{base}:nonroot", "digest": layout_digest(py3)}
    before = set(blob_writes(registry))
    lines = ok(distill("build", str(spec), "--locked", "--push", f"{registry.host}/team/hello:1", *cache))
    assert "10 mounted" in lines[-2] and "4 blobs uploaded" in lines[-2], lines
    # the base's layers were mounted, not uploaded: only the app's 2 layers and 2 configs were
    assert len([w for w in set(blob_writes(registry)) - before if w[0] == "PUT"]) == 4
    pin = lines[-1]
    assert pin.startswith(f"{registry.host}/team/hello@sha256:")
    sh("podman", "pull", "-q", "--tls-verify=false", pin, env=env)
    assert sh("podman", "run", "--rm", "--network", "none", pin, env=env).split() == ["hello", "3", "65532"]
    # by digest, and offline from the cache once pulled: the same layers
    by_tag = tmp_path / "by-tag.oci"
    ok(distill("build", str(spec), "--locked", "--offline", "-o", str(by_tag), *cache, "-q"))
    assert (
        ok(distill("build", str(spec), "--offline", "-o", str(by_tag), *cache, "-q"))[-1] == pin.split("@")[1]
    )
    digest_spec = _app(tmp_path / "by-digest", f"docker://{base}@{layout_digest(py3)}")
    ok(distill("build", str(digest_spec), "-o", str(tmp_path / "by-digest.oci"), *cache, "-q"))
    assert _layers(tmp_path / "by-digest.oci") == _layers(by_tag)
    assert all(
        layers[:5] == base_layers for layers, base_layers in zip(_layers(by_tag), _layers(py3), strict=True)
    )
    # a moved tag: the lock still builds what it pinned; --locked refuses
    moving = f"{registry.host}/distill/moving"
    ok(distill("push", str(py3), f"{moving}:1", "-q"))
    moved = _app(tmp_path / "moved", f"docker://{moving}:1")
    ok(distill("lock", str(moved)))
    other = tmp_path / "other.oci"
    ok(distill("build", "python3", "-o", str(other), *cache, "-q"))  # the root variant: another digest
    ok(distill("push", str(other), f"{moving}:1", "-q"))
    line = one_error_line(
        distill("build", str(moved), "--locked", "-o", str(tmp_path / "m.oci"), *cache, "-q")
    )
    assert "has moved" in line and layout_digest(py3) in line and layout_digest(other) in line, line
    ok(distill("build", str(moved), "-o", str(tmp_path / "m.oci"), *cache, "-q"))
    assert _layers(tmp_path / "m.oci") == _layers(by_tag)


def test_app_from_podman_storage_and_an_oci_archive(
    py3: Path, env: dict[str, str], cache: list[str], tmp_path: Path
) -> None:
    from_layout = _app(tmp_path / "layout", f"oci:{py3}", "[amd64]")
    ok(distill("build", str(from_layout), "-o", str(tmp_path / "layout.oci"), *cache, "-q"))
    archive = tmp_path / "py3.tar"
    sh("skopeo", "copy", "-q", "--all", f"oci:{py3}", f"oci-archive:{archive}")
    from_archive = _app(tmp_path / "archive", f"oci-archive:{archive}", "[amd64]")
    lines = ok(distill("build", str(from_archive), "-o", str(tmp_path / "archive.oci"), *cache, "-q"))
    assert _layers(tmp_path / "archive.oci") == _layers(tmp_path / "layout.oci")
    # a docker archive (skopeo writes its layers uncompressed): those bytes, as they are
    docker = tmp_path / "docker.tar"
    sh("skopeo", "copy", "-q", f"oci:{py3}", f"docker-archive:{docker}:distill/py3:1")
    from_docker = _app(tmp_path / "docker", f"docker-archive:{docker}", "[amd64]")
    ok(distill("build", str(from_docker), "-o", str(tmp_path / "docker.oci"), *cache, "-q"))
    [layers] = _layers(tmp_path / "docker.oci")
    [ours] = _layers(tmp_path / "layout.oci")
    assert layers[:5] == _diff_ids(py3, "amd64") and layers[5:] == ours[5:]
    # the OCI-archive-based app runs (loaded from the archive distill writes)
    ok(
        distill(
            "build",
            str(from_archive),
            "-o",
            str(tmp_path / "app.tar"),
            "--tag",
            "hello-archive:1",
            *cache,
            "-q",
        )
    )
    sh("podman", "load", "-q", "-i", str(tmp_path / "app.tar"), env=env)
    out = sh("podman", "run", "--rm", "--network", "none", "localhost/hello-archive:1", env=env)
    assert out.split() == ["hello", "3", "65532"]
    sh("skopeo", "copy", "-q", f"oci:{py3}", "containers-storage:localhost/distill-py3:nonroot", env=env)
    from_podman = _app(tmp_path / "podman", "podman:localhost/distill-py3:nonroot", "[amd64]")
    lines = ok(distill("build", str(from_podman), "--load", "--tag", "hello-podman:1", *cache, "-q", env=env))
    assert lines[-1].startswith("sha256:")
    out = sh("podman", "run", "--rm", "--network", "none", "localhost/hello-podman:1", env=env)
    assert out.split() == ["hello", "3", "65532"]
    # bad input: a base for another architecture, a missing tag, a garbled manifest
    line = one_error_line(
        distill("build", str(_app(tmp_path / "arm", f"oci-archive:{archive}", "[riscv64]")), *cache, "-q")
    )
    assert "no linux/riscv64 image" in line, line


def test_base_faults_are_one_line(py3: Path, static: Path, cache: list[str], tmp_path: Path) -> None:
    reg = Registry(tmp_path / "reg")
    garble = {"on": False}
    proxy = Proxy(reg.host, lambda m, p: "garble" if garble["on"] and "/manifests/sha256:" in p else None)
    try:
        ok(distill("push", str(static), f"{reg.host}/distill/static:amd64", "-q"))
        ok(distill("push", str(py3), f"{reg.host}/distill/python3:1", "-q"))
        for base, archs, needle in (
            (f"docker://{reg.host}/distill/static:amd64", "[arm64]", "is a amd64 image, not arm64"),
            (f"docker://{reg.host}/distill/python3:nope", "[amd64]", "not found"),
            (f"docker://{reg.host}/distill/none:1", "[amd64]", "not found"),
            (f"docker://127.0.0.1:{free_port()}/x/y:1", "[amd64]", "cannot reach"),
        ):
            line = one_error_line(
                distill(
                    "build", str(_app(tmp_path / "a", base, archs)), "-o", str(tmp_path / "o"), *cache, "-q"
                )
            )
            assert needle in line, (base, line)
            assert not (tmp_path / "o").exists()
        line = one_error_line(distill("lock", str(_app(tmp_path / "b", "docker://nohost/x:1", "[amd64]"))))
        assert "name the registry host" in line or "not an image reference" in line, line
        # a registry whose manifest does not match the digest it is asked for
        garble["on"] = True
        spec = _app(tmp_path / "c", f"docker://{proxy.host}/distill/python3@{layout_digest(py3)}", "[amd64]")
        line = one_error_line(distill("build", str(spec), "-o", str(tmp_path / "o"), *cache, "-q"))
        assert "does not match" in line, line
    finally:
        proxy.close()
        reg.close()


# -- TLS and plain HTTP off loopback -----------------------------------------------------


def _global_ipv4() -> str:
    out = sh("ip", "-4", "-o", "addr", "show", "scope", "global")
    for line in out.splitlines():
        dev, addr = line.split()[1], line.split()[3].split("/")[0]
        if not dev.startswith(("podman", "cni", "veth", "docker")):
            return addr
    pytest.fail("no non-loopback IPv4 address on this machine for the TLS test")


def test_https_with_ca_cert_and_insecure_registry(static: Path, tmp_path: Path) -> None:
    """Off loopback distill speaks HTTPS with the host's CAs plus --ca-cert; plain HTTP
    only to a host named with --insecure-registry."""
    ip = _global_ipv4()
    ca_key, ca, key, csr, crt = (tmp_path / n for n in ("ca.key", "ca.pem", "srv.key", "srv.csr", "srv.pem"))
    sh("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
       "-days", "2", "-subj", "/CN=distill test CA")  # fmt: skip
    sh(
        "openssl",
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(csr),
        "-subj",
        f"/CN={ip}",
    )
    (tmp_path / "ext").write_text(f"subjectAltName=IP:{ip}\n")
    sh("openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
       "-out", str(crt), "-days", "2", "-extfile", str(tmp_path / "ext"))  # fmt: skip
    tls = Registry(tmp_path / "tls", port=None)
    tls.stop()
    config = json.loads((tmp_path / "tls" / "config.yml").read_text())
    config["http"] = {"addr": f"{ip}:{tls.port}", "tls": {"certificate": str(crt), "key": str(key)}}
    (tmp_path / "tls" / "config.yml").write_text(json.dumps(config))
    plain = Registry(tmp_path / "plain")
    plain.stop()
    config = json.loads((tmp_path / "plain" / "config.yml").read_text())
    config["http"] = {"addr": f"{ip}:{plain.port}"}
    (tmp_path / "plain" / "config.yml").write_text(json.dumps(config))
    procs = []
    try:
        for r in (tls, plain):
            procs.append(subprocess.Popen(["docker-registry", "serve", str(r.root / "config.yml")],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))  # fmt: skip
        time.sleep(1.0)
        ref = f"{ip}:{tls.port}/x/static:1"
        line = one_error_line(distill("push", str(static), ref, "-q"))
        assert "certificate" in line.lower() or "SSL" in line, line
        lines = ok(distill("push", str(static), ref, "--ca-cert", str(ca), "-q"))
        assert lines[-1] == f"{ip}:{tls.port}/x/static@{layout_digest(static)}"
        line = one_error_line(distill("push", str(static), f"{ip}:{plain.port}/x/static:1", "-q"))
        assert "--insecure-registry" in line, line
        lines = ok(
            distill(
                "push",
                str(static),
                f"{ip}:{plain.port}/x/static:1",
                "--insecure-registry",
                f"{ip}:{plain.port}",
                "-q",
            )
        )
        assert lines[-1].endswith(layout_digest(static))
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(tmp_path / "tls" / "data", ignore_errors=True)
