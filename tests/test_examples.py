"""Integration: the four examples built from the real archive and registries, loaded
with ``--load`` and run in podman; each answers HTTP from the host, runs as 65532 and
has no shell. Also: wheels for the image's architecture (arm64 under qemu), a
requirement with no matching wheel, a one-line change rebuilding one layer, and port
mappings that work beside a CNI bridge on netavark's default subnet."""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from test_images import REPO, sh

pytestmark = [pytest.mark.network, pytest.mark.podman]


def distill(*args: str, env: dict[str, str], cwd: Path, ok: bool = True) -> subprocess.CompletedProcess[str]:
    cache = ["--cache-dir", env["DISTILL_TEST_CACHE"]]
    proc = subprocess.run([sys.executable, "-m", "distill", *args, *cache], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


def example(name: str, tmp: Path, env: dict[str, str]) -> Path:
    work = tmp / name
    shutil.copytree(
        REPO / "examples" / name, work, ignore=shutil.ignore_patterns("build", "server", "*.lock.json")
    )
    if (work / "build.sh").exists():
        sh("sh", str(work / "build.sh"), env=env)
    distill("lock", "app.yaml", "--arch", "amd64", env=env, cwd=work)
    return work


def http_get(port: int, path: str = "/", wait: float = 60) -> str:
    deadline = time.monotonic() + wait
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return r.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


@pytest.mark.parametrize(
    ("name", "port", "greeting"),
    [
        ("python-web", 18180, "hello from &lt;distill&gt; python 3.13"),
        ("node-web", 18181, "hello from express on node 20"),
        ("java-web", 18182, "hello from java 21"),
        ("static-binary", 18183, "hello from static C"),
    ],
)
def test_example_serves_http_as_nonroot_without_a_shell(
    name: str,
    port: int,
    greeting: str,
    env: dict[str, str],
    tmp_path: Path,
) -> None:
    work = example(name, tmp_path, env)
    tag = f"example-{name}:test"
    proc = distill("build", "app.yaml", "--arch", "amd64", "--load", "--tag", tag, env=env, cwd=work)
    assert f"loaded into podman as localhost/{tag}" in proc.stdout
    cid = sh(
        "podman", "run", "-d", "-p", f"127.0.0.1:{port}:8080", f"localhost/{tag}", env=env
    ).stdout.strip()
    try:
        body = http_get(port)
        assert body.startswith(greeting) and body.strip().endswith("as uid 65532"), body
        assert json.loads(http_get(port, "/healthz")) == {"status": "ok"}
        for shell in ("sh", "/bin/sh", "/bin/bash", "/busybox/sh"):
            assert sh("podman", "exec", cid, shell, "-c", "true", env=env, check=False).returncode != 0
    finally:
        sh("podman", "rm", "-f", "-t", "0", cid, env=env)
    inspect = json.loads(sh("podman", "image", "inspect", f"localhost/{tag}", env=env).stdout)[0]
    assert inspect["Config"]["User"] == "65532" and inspect["Config"]["WorkingDir"] == "/app"
    assert "8080/tcp" in inspect["Config"]["ExposedPorts"]


def test_python_wheels_match_the_image_not_the_host(env: dict[str, str], tmp_path: Path) -> None:
    """The host runs CPython 3.11 on amd64; the arm64 image gets cp313 aarch64 wheels."""
    work = example("python-web", tmp_path, env)
    distill("lock", "app.yaml", "--arch", "arm64", env=env, cwd=work)
    distill(
        "build",
        "app.yaml",
        "--arch",
        "arm64",
        "-o",
        "img.tar",
        "--tag",
        "pyweb-arm64:test",
        env=env,
        cwd=work,
    )
    sh("podman", "load", "-q", "-i", str(work / "img.tar"), env=env)
    code = (
        "import markupsafe._speedups as s, platform; print(platform.machine(), s.__file__.rsplit('/', 1)[1])"
    )
    proc = sh("podman", "run", "--rm", "--arch", "arm64", "--entrypoint", "/usr/bin/python3",
              "localhost/pyweb-arm64:test", "-c", code, env=env)  # fmt: skip
    machine, so = proc.stdout.split()
    assert machine == "aarch64" and "cpython-313-aarch64-linux-gnu" in so


def test_requirement_without_a_matching_wheel_is_one_line(env: dict[str, str], tmp_path: Path) -> None:
    work = example("python-web", tmp_path, env)
    (work / "requirements.txt").write_text("numpy==1.21.0\n")  # sdist and cp37-cp310 wheels only
    proc = distill("build", "app.yaml", "--arch", "amd64", "-o", "img.tar", env=env, cwd=work, ok=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("distill: error:")]
    assert len(errors) == 1 and "no wheel of numpy==1.21.0 for CPython 3.13 (cp313" in errors[0], proc.stderr
    assert not (work / "img.tar").exists()


def test_one_line_change_rebuilds_only_the_code_layer(env: dict[str, str], tmp_path: Path) -> None:
    work = example("python-web", tmp_path, env)

    def layers() -> list[str]:
        distill("build", "app.yaml", "--arch", "amd64", "-o", "img", env=env, cwd=work)
        index = json.loads((work / "img" / "index.json").read_text())
        manifest = json.loads(
            (work / "img" / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_text()
        )
        return [layer["digest"] for layer in manifest["layers"]]

    before = layers()
    init = work / "webapp" / "__init__.py"
    init.write_text(init.read_text().replace("hello from", "hi from"))
    after = layers()
    assert len(before) == len(after) == 7
    assert before[:-1] == after[:-1] and before[-1] != after[-1]


# podman's CNI bridge as any earlier podman run with CNI leaves it on a host: on the subnet
# of netavark's stock default network.
CNI_BRIDGE, CNI_SUBNET = "cni-podman0", "10.88.0.0/16"


@pytest.fixture
def cni_bridge_netns() -> Iterator[list[str]]:
    """A network namespace of the test's own holding cni-podman0 with 10.88.0.1/16; yields
    the command prefix that runs a command in it. The host's own network (where a real
    cni-podman0 may already be, or other containers run) is never touched, and the
    namespace goes with everything in it at the end."""
    if os.geteuid() != 0:
        pytest.fail("this test makes a network namespace and a bridge: run it as root (CI does)")
    name = f"distill-test-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    # nsenter, not `ip netns exec`: that one remounts /sys, which hides the cgroup mounts runc needs.
    inside = ["nsenter", f"--net=/run/netns/{name}"]
    try:
        for cmd in (
            ["ip", "link", "set", "lo", "up"],
            ["ip", "link", "add", CNI_BRIDGE, "type", "bridge"],
            ["ip", "addr", "add", "10.88.0.1/16", "dev", CNI_BRIDGE],
            ["ip", "link", "set", CNI_BRIDGE, "up"],
        ):
            subprocess.run([*inside, *cmd], check=True, capture_output=True)
        yield inside
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


GET = """
import sys, time, urllib.request
deadline = time.monotonic() + float(sys.argv[2])
while True:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/", timeout=5) as r:
            sys.stdout.write(r.read().decode())
            break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.3)
"""


def test_port_mapping_works_beside_a_cni_bridge_on_netavarks_subnet(
    env: dict[str, str], tmp_path: Path, cni_bridge_netns: list[str]
) -> None:
    """scripts/containers.conf gives podman a default network of distill's own: with
    netavark's stock one, the bridge's route shadows the container's and `-p` hangs."""
    inside = cni_bridge_netns
    tag = "distill-net:debug"
    distill("build", "static", "--variant", "debug", "--arch", "amd64", "-o", "net.tar", "--tag", tag,
            env=env, cwd=tmp_path)  # fmt: skip
    sh("podman", "load", "-q", "-i", str(tmp_path / "net.tar"), env=env)
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("hello beside cni-podman0\n")
    cid = sh(*inside, "podman", "run", "-d", "-v", f"{www}:/www:ro", "-p", "127.0.0.1:18190:8080",
             "--entrypoint", "/busybox/httpd", f"localhost/{tag}", "-f", "-p", "8080", "-h", "/www",
             env=env).stdout.strip()  # fmt: skip
    try:
        routes = sh(*inside, "ip", "route", env=env).stdout
        assert f"{CNI_SUBNET} dev {CNI_BRIDGE}" in routes, routes
        proc = sh(*inside, sys.executable, "-c", GET, "18190", "30", env=env, check=False, timeout=120)
        assert proc.stdout == "hello beside cni-podman0\n", proc.stderr[-300:]
    finally:
        # In the namespace, so that netavark tears down what it set up there.
        sh(*inside, "podman", "rm", "-f", "-t", "0", cid, env=env)
    conf = tomllib.loads(Path(env["CONTAINERS_CONF"]).read_text()).get("network", {})
    subnet = ipaddress.ip_network(conf.get("default_subnet", CNI_SUBNET))  # podman's default
    assert not subnet.overlaps(ipaddress.ip_network(CNI_SUBNET))


def test_debug_variant_of_an_app_runs_the_app_with_a_shell_beside_it(
    env: dict[str, str], tmp_path: Path
) -> None:
    """--variant debug keeps the app's entrypoint (old code: /busybox/sh with no Cmd, so
    'podman run -d' exited at once); the shell is reached with exec or --entrypoint."""
    work = example("static-binary", tmp_path, env)
    tag = "example-static-binary:debug-test"
    distill(
        "build",
        "app.yaml",
        "--arch",
        "amd64",
        "--variant",
        "debug",
        "--load",
        "--tag",
        tag,
        env=env,
        cwd=work,
    )
    cid = sh("podman", "run", "-d", "-p", "127.0.0.1:18184:8080", f"localhost/{tag}", env=env).stdout.strip()
    try:
        assert http_get(18184).startswith("hello from static C")
        proc = sh("podman", "exec", cid, "/busybox/sh", "-c", "echo shell-ok", env=env)
        assert proc.stdout.strip() == "shell-ok"
    finally:
        sh("podman", "rm", "-f", "-t", "0", cid, env=env)
    proc = sh("podman", "run", "--rm", "--entrypoint", "/busybox/sh", f"localhost/{tag}", "-c", "echo entry-ok",
              env=env)  # fmt: skip
    assert proc.stdout.strip() == "entry-ok"
