"""distill debug, for real: a distroless app (the static-binary example: a C server on
the static flavor, no shell) running in podman; a busybox container distill builds from
the Debian archive joins its namespaces — its processes, its files at /proc/1/root, its
port on 127.0.0.1 —, the target is left untouched and no debug container remains. The
kubectl debug command line is checked by the real kubectl where the host has one; a
spec's debug variant is built from the same lock, with the same app layer."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_cli import assert_one_line_error
from test_examples import example, http_get
from test_images import sh

PORT = 8080


def distill(
    *args: str, env: dict[str, str], cwd: Path | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    cache = ["--cache-dir", env["DISTILL_TEST_CACHE"]] if "DISTILL_TEST_CACHE" in env else []
    # The cache flag goes before a '--': what follows it is the debug container's command.
    at = args.index("--") if "--" in args else len(args)
    cmd = [sys.executable, "-m", "distill", *args[:at], *cache, *args[at:]]
    return subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600,
        input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
    )  # fmt: skip


def debug_containers(env: dict[str, str]) -> list[str]:
    out = sh("podman", "ps", "-a", "--filter", "label=io.distill.debug", "--format", "{{.Names}}", env=env)
    return out.stdout.split()


def state(name: str, env: dict[str, str]) -> dict[str, object]:
    doc = json.loads(sh("podman", "container", "inspect", name, env=env).stdout)[0]
    return {k: doc["State"][k] for k in ("Running", "Pid", "StartedAt")} | {
        "restarts": doc.get("RestartCount")
    }


@pytest.fixture(scope="module")
def app(env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The static-binary example built and loaded as localhost/debug-target:1 (its lock beside it)."""
    work = example("static-binary", tmp_path_factory.mktemp("debug"), env)
    proc = distill(
        "build", "app.yaml", "--arch", "amd64", "--load", "--tag", "debug-target:1", env=env, cwd=work
    )
    assert proc.returncode == 0, proc.stderr
    return work


@pytest.fixture
def target(app: Path, env: dict[str, str]) -> object:
    name = f"debug-target-{os.getpid()}"
    sh("podman", "run", "-d", "--name", name, "-e", f"PORT={PORT}", "localhost/debug-target:1", env=env)
    deadline = time.monotonic() + 30
    while "listening" not in sh("podman", "logs", name, env=env).stdout:
        assert time.monotonic() < deadline, "the target never listened"
        time.sleep(0.2)
    yield name
    sh("podman", "rm", "-f", "-t", "0", name, env=env)


@pytest.mark.podman
@pytest.mark.network
def test_a_busybox_beside_a_running_distroless_container(app: Path, target: str, env: dict[str, str]) -> None:
    before = state(target, env)
    diff_before = sh("podman", "diff", target, env=env).stdout
    # The target has no shell of its own (what makes this command needed).
    assert sh("podman", "exec", target, "/bin/sh", "-c", "true", env=env, check=False).returncode != 0

    ps = distill("debug", f"podman:{target}", "--", "ps", env=env)
    assert ps.returncode == 0, ps.stderr
    rows = [line.split(None, 2) for line in ps.stdout.splitlines()[1:]]
    assert ["1", "nonroot", "/app/server"] in rows, ps.stdout  # the app is PID 1 of what it sees

    # Its files, through /proc/1/root: the very binary the example built.
    md5 = distill("debug", f"podman:{target}", "--", "md5sum", "/proc/1/root/app/server", env=env)
    assert md5.returncode == 0, md5.stderr
    assert md5.stdout.split()[0] == hashlib.md5((app / "server").read_bytes()).hexdigest()
    assert "loaded the debug image" not in md5.stderr  # loaded once, then found by its tag

    # Its network: the port it listens on, unpublished, is on the shared 127.0.0.1.
    get = distill("debug", f"podman:{target}", "--", "wget", "-qO-", f"127.0.0.1:{PORT}/", env=env)
    assert get.returncode == 0, get.stderr
    assert get.stdout.startswith("hello from static C as uid 65532"), get.stdout

    # The command's exit status comes back; options after -- are the command's own.
    assert distill("debug", f"podman:{target}", "--", "sh", "-c", "exit 7", env=env).returncode == 7
    opts = distill("debug", f"podman:{target}", "--", "ls", "-d", "--", "/proc/1/root/app", env=env)
    assert (opts.returncode, opts.stdout.strip()) == (0, "/proc/1/root/app"), opts.stderr

    # A command's own 125 is its own (podman's status for a container it cannot start);
    # a program that looks like JSON is a program name, not podman's entrypoint array.
    assert distill("debug", f"podman:{target}", "--", "sh", "-c", "exit 125", env=env).returncode == 125
    odd = distill("debug", f"podman:{target}", "--", '["/busybox/echo","injected"]', "x", env=env)
    assert odd.returncode == 127 and "injected" not in odd.stdout, (odd.returncode, odd.stdout)
    assert_one_line_error(distill("debug", f"podman:{target}", "--", "", "x", env=env), "is empty")

    # No command: a login shell, with the banner on stderr (here fed from stdin).
    shell = distill("debug", f"podman:{target}", env=env, stdin="ls /proc/1/root/app; id -u; exit 4\n")
    assert shell.returncode == 4, shell.stderr
    assert shell.stdout.split() == ["server", "0"]
    assert "a busybox shell beside podman:" in shell.stderr and "/proc/1/root" in shell.stderr

    assert debug_containers(env) == []  # each one removed when it exited
    assert state(target, env) == before  # the same process, never restarted
    assert sh("podman", "diff", target, env=env).stdout == diff_before


@pytest.mark.podman
@pytest.mark.network
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_an_interrupted_session_leaves_no_debug_container(
    app: Path, target: str, env: dict[str, str], sig: signal.Signals
) -> None:
    """SIGTERM, and SIGHUP (a lost terminal), to distill alone: the debug container goes."""
    cache = ["--cache-dir", env["DISTILL_TEST_CACHE"]]
    proc = subprocess.Popen(
        [sys.executable, "-m", "distill", "debug", f"podman:{target}", *cache, "--", "sleep", "600"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not debug_containers(env):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1]
        time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig and "Traceback" not in err, (proc.returncode, err)
    assert debug_containers(env) == []
    assert state(target, env)["Running"] is True


@pytest.mark.podman
@pytest.mark.network
def test_what_cannot_be_debugged_is_one_line_and_exit_2(
    app: Path, env: dict[str, str], tmp_path: Path
) -> None:
    assert_one_line_error(
        distill("debug", "podman:no-such-container", "--", "ps", env=env), "no such container"
    )
    name = f"debug-created-{os.getpid()}"
    sh("podman", "create", "--name", name, "localhost/debug-target:1", env=env)
    try:
        assert_one_line_error(
            distill("debug", f"podman:{name}", "--", "ps", env=env), "is created, not running"
        )
    finally:
        sh("podman", "rm", "-f", name, env=env)
    assert_one_line_error(distill("debug", "podman:--privileged", env=env), "name a container")
    no_engine = {**env, "PATH": str(tmp_path)}  # neither podman nor docker
    assert_one_line_error(
        distill("debug", "docker:web", "--", "ps", env=no_engine), "docker is not installed"
    )
    # a paused container; one in the host's PID namespace (the debug container would be root there)
    sh("podman", "run", "-d", "--name", name, "-e", "PORT=18299", "localhost/debug-target:1", env=env)
    try:
        sh("podman", "pause", name, env=env)
        assert_one_line_error(distill("debug", f"podman:{name}", "--", "ps", env=env), "is paused")
    finally:
        sh("podman", "rm", "-f", "-t", "0", name, env=env)
    sh("podman", "run", "-d", "--pid", "host", "--name", name, "-e", "PORT=18298", "localhost/debug-target:1",
       env=env)  # fmt: skip
    try:
        assert_one_line_error(distill("debug", f"podman:{name}", "--", "ps", env=env), "host's PID namespace")
    finally:
        sh("podman", "rm", "-f", "-t", "0", name, env=env)
    assert_one_line_error(
        distill("debug", "podman:web", "--profile", "sysadmin", env=env), "--profile: for --kubernetes POD"
    )
    assert_one_line_error(
        distill("debug", "--kubernetes", "web", "--image", "h/x:1", "--publish", "80:80", env=env),
        "--publish: not for --kubernetes",
    )
    if shutil.which("docker", path=env.get("PATH")):  # its CLI without an engine (as here): said so
        assert_one_line_error(
            distill("debug", "docker:web", "--", "ps", env=env), "docker container inspect failed"
        )
    assert_one_line_error(distill("debug", env=env), "name what to debug")
    assert_one_line_error(
        distill("debug", "podman:web", "--tag", "x:1", env=env), "--tag: not for a container"
    )
    assert debug_containers(env) == []


@pytest.mark.podman
@pytest.mark.network
def test_a_target_that_exits_as_the_session_starts_is_reported(
    app: Path, target: str, env: dict[str, str], tmp_path: Path
) -> None:
    """podman starts a container that has exited when another joins its namespaces: the
    target exits just as the debug container starts (a podman on PATH that stops it first,
    then runs the real one), and distill says it was started again."""
    real = shutil.which("podman", path=env["PATH"])
    assert real is not None
    wrapper = tmp_path / "bin" / "podman"
    wrapper.parent.mkdir()
    wrapper.write_text(
        f'#!/bin/sh\nif [ "$1" = run ]; then "{real}" stop -t 0 {target} >/dev/null; fi\nexec "{real}" "$@"\n'
    )
    wrapper.chmod(0o755)
    proc = distill(
        "debug", f"podman:{target}", "--", "true", env={**env, "PATH": f"{wrapper.parent}:{env['PATH']}"}
    )
    assert "exited as the debug container started, and podman started it again" in proc.stderr, proc.stderr
    assert debug_containers(env) == []


def test_a_tools_output_that_is_not_utf8_is_one_line() -> None:
    """What podman, docker, skopeo or kubectl print is input: a byte that is not UTF-8
    in it is replaced, not a UnicodeDecodeError traceback."""
    from distill.engine import run
    from distill.errors import DebugError

    with pytest.raises(DebugError, match="x: sh -c failed: bad \ufffd byte"):
        run(["sh", "-c", "printf 'bad \\377 byte\\n' >&2; exit 3"], "x", timeout=30, error=DebugError)
    proc = run(["sh", "-c", "printf '\\377[]'"], "x", timeout=30)
    assert proc.stdout == "\ufffd[]"


def test_the_kubectl_debug_command(tmp_path: Path) -> None:
    env = {**os.environ, "DISTILL_DEBUG_IMAGE": "127.0.0.1:5000/distill/debug:1"}
    proc = distill("debug", "--kubernetes", "web-7d9f", "-c", "app", "-n", "shop", "--", "ps", "-ef", env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        "kubectl debug web-7d9f -n shop -i --image=127.0.0.1:5000/distill/debug:1 --profile=general "
        "--target=app -- ps -ef"
    )
    shell = distill("debug", "--kubernetes", "web", "-c", "app", "--image", "h:5000/x:2", "--profile", "netadmin",
                    env=env)  # fmt: skip
    assert shell.stdout.strip() == (
        "kubectl debug web -i --image=h:5000/x:2 --profile=netadmin --target=app -- /busybox/sh -l"
    )
    no_image = {k: v for k, v in env.items() if k != "DISTILL_DEBUG_IMAGE"}
    assert_one_line_error(
        distill("debug", "--kubernetes", "web", env=no_image), "--image REF or DISTILL_DEBUG_IMAGE"
    )
    assert_one_line_error(distill("debug", "--kubernetes", "Web;rm", env=env), "is not a Kubernetes pod name")
    pod = distill("debug", "--kubernetes", "pod/web", "-c", "app", env=env)  # kubectl's TYPE/NAME form
    assert pod.returncode == 0 and pod.stdout.startswith("kubectl debug pod/web "), pod.stderr
    assert_one_line_error(distill("debug", "--kubernetes", "web", "-c", "a.b", env=env), "container name")
    assert_one_line_error(
        distill("debug", "--kubernetes", "web", "--image", "a\x1b[2Jb", env=env), "not an image"
    )
    assert_one_line_error(
        distill("debug", "-c", "app", "podman:web", env=env), "--container: for --kubernetes"
    )

    # --run hands the command to kubectl: the real one (where the host has it) must accept
    # every flag — it gets as far as the cluster, which does not answer here.
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:9'}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\nusers: [{name: u, user: {token: t}}]\n"
    )
    run = distill("debug", "--kubernetes", "web", "-c", "app", "--run", "--", "ps",
                  env={**env, "KUBECONFIG": str(kubeconfig)})  # fmt: skip
    if shutil.which("kubectl", path=env.get("PATH")):
        assert run.returncode != 0
        assert "unknown flag" not in run.stderr and "127.0.0.1:9" in run.stderr, run.stderr
    else:
        assert_one_line_error(run, "kubectl is not installed")


@pytest.mark.podman
@pytest.mark.network
def test_a_specs_debug_variant_from_the_same_lock(app: Path, env: dict[str, str], tmp_path: Path) -> None:
    lock = (app / "app.lock.json").read_text()
    proc = distill("debug", "app.yaml", "--tag", "debug-spec:1", "--", "ls", "/app", "/busybox/sh", env=env,
                   cwd=app)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["/busybox/sh", "/app:", "server"]
    assert "from its lock" in proc.stderr
    assert (app / "app.lock.json").read_text() == lock  # the lock is read, not rewritten
    # The same app layer as the image the lock builds (compared uncompressed: podman keeps diff ids).
    latest = json.loads(sh("podman", "image", "inspect", "localhost/debug-target:1", env=env).stdout)[0]
    debug = json.loads(sh("podman", "image", "inspect", "localhost/debug-spec:1", env=env).stdout)[0]
    # Every layer of it, the app's included, and one more: busybox.
    assert set(latest["RootFS"]["Layers"]) < set(debug["RootFS"]["Layers"])
    assert len(debug["RootFS"]["Layers"]) == len(latest["RootFS"]["Layers"]) + 1

    # Without a command it runs the image as built (the app), here with its port published.
    cache = ["--cache-dir", env["DISTILL_TEST_CACHE"]]
    port = 18000 + os.getpid() % 1000
    run = subprocess.Popen(
        [sys.executable, "-m", "distill", "debug", "app.yaml", "--tag", "debug-spec:1", "-p",
         f"127.0.0.1:{port}:8080", *cache],
        env=env, cwd=app, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert http_get(port).startswith("hello from static C as uid 65532")
    finally:
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=120)
    assert "exec -it distill-debug-static-binary-" in err
    assert debug_containers(env) == []
