"""A debug session: the target container found through its engine, the debug
container's command line beside it, how its run ended; the ``kubectl debug`` line."""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill.debug import ENGINES, LABEL, PROFILES
from distill.engine import executable, last_line, run
from distill.errors import DebugError
from distill.limits import load_json

MAX_INSPECT = 4 * 1024 * 1024
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,252}")
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")  # a DNS subdomain (pods)
_IMAGE_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,511}")  # printable, no option, no space
_K8S_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # a DNS label (containers, namespaces)


@dataclass(frozen=True)
class Container:
    """A running container of a local engine, as its ``inspect`` tells it."""

    engine: str
    exe: str
    id: str
    name: str
    image: str
    started_at: str = ""  # State.StartedAt: a later one means it was started again


def parse_target(text: str) -> tuple[str, str] | None:
    """``podman:NAME`` / ``docker:NAME`` -> (engine, NAME); anything else: None (a spec)."""
    for engine in ENGINES:
        prefix = f"{engine}:"
        if text.startswith(prefix):
            name = text[len(prefix) :]
            if not _NAME.fullmatch(name):
                raise DebugError(
                    f"{text[:120]!r}: name a container by its name or id, e.g. {prefix}web",
                    hint=f"'{engine} ps' lists the running ones",
                )
            return engine, name
    return None


def _inspect(exe: str, engine: str, name: str) -> dict[str, Any]:
    where = f"{engine}:{name}"
    proc = run([exe, "container", "inspect", name], where, timeout=60, error=DebugError, check=False)
    if proc.returncode != 0:
        last = last_line(proc.stderr, proc.returncode)
        if "no such" not in last.lower():  # the engine itself failed: no daemon, no permission
            raise DebugError(f"{where}: {engine} container inspect failed: {last}")
        raise DebugError(f"{where}: no such container ({last})", hint=f"'{engine} ps' lists the running ones")
    doc = load_json(
        proc.stdout, label=f"{engine} container inspect {name}", error=DebugError, limit=MAX_INSPECT
    )
    if not (isinstance(doc, list) and len(doc) == 1 and isinstance(doc[0], dict)):
        raise DebugError(f"{where}: {engine} container inspect did not describe one container")
    return doc[0]


def _printable(text: object, limit: int) -> str:
    """An engine's field for our messages: control characters (a terminal's escape
    sequences) replaced, cut to ``limit``."""
    return "".join(c if c.isprintable() else "?" for c in str(text)[:limit])


def find_container(engine: str, name: str) -> Container:
    """The running container ``name`` of ``engine``; :class:`DebugError` when the engine
    is missing, the container is unknown, not running, or shares the host's PID namespace."""
    where = f"{engine}:{name}"
    exe = executable(engine, where, DebugError, hint="distill debug runs its debug container with it")
    doc = _inspect(exe, engine, name)
    state: dict[str, Any] = doc["State"] if isinstance(doc.get("State"), dict) else {}
    status = _printable(state.get("Status", "unknown"), 40)
    if state.get("Paused") is True:
        raise DebugError(
            f"{where} is paused: its processes cannot be debugged", hint=f"'{engine} unpause {name}'"
        )
    if state.get("Running") is not True:
        raise DebugError(
            f"{where} is {status}, not running: there is nothing to debug beside",
            hint=f"start it ('{engine} start {name}'), or debug its image: distill debug SPEC",
        )
    ident = str(doc.get("Id", ""))
    if not re.fullmatch(r"[0-9a-f]{64}", ident):
        raise DebugError(f"{where}: {engine} container inspect gave no container id")
    host: dict[str, Any] = doc["HostConfig"] if isinstance(doc.get("HostConfig"), dict) else {}
    if host.get("PidMode") == "host":
        raise DebugError(
            f"{where} runs in the host's PID namespace (--pid host): a debug container beside it would "
            "be root with CAP_SYS_PTRACE among the host's processes",
            hint="debug it from the host, where its processes already are",
        )
    config: dict[str, Any] = doc["Config"] if isinstance(doc.get("Config"), dict) else {}
    image = doc.get("ImageName") or config.get("Image") or doc.get("Image") or "?"
    return Container(
        engine, exe, ident, _printable(str(doc.get("Name", name)).lstrip("/"), 253), _printable(image, 300),
        str(state.get("StartedAt", ""))[:100],
    )  # fmt: skip


def image_exists(exe: str, tag: str) -> bool:
    proc = run(
        [exe, "image", "inspect", "--format", "{{.Id}}", tag], tag, timeout=60, error=DebugError, check=False
    )
    return proc.returncode == 0


def load_image(engine: str, tag: str, make: Callable[[Path], object]) -> None:
    """Put an image into the engine as ``tag``: ``make(path)`` writes it (a layout, or a
    .tar for docker) into a temporary directory, removed after."""
    from distill.oci.load import load_form, load_into

    with tempfile.TemporaryDirectory(prefix="distill-debug-") as tmp:
        path = Path(tmp) / f"image{load_form(engine)}"
        make(path)
        load_into(engine, path, tag)


def _tty() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def session_name(prefix: str) -> str:
    """A fresh container name for one debug session."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "-", prefix).strip("-.")[:40] or "session"
    return f"distill-debug-{safe}-{secrets.token_hex(4)}"


def entrypoint_flag(engine: str, program: str) -> str:
    """``--entrypoint=PROGRAM`` that the engine reads as that one program: podman reads a
    value that parses as a JSON array as the whole entrypoint (so it gets one, always);
    docker takes the string as it is."""
    if not program:
        raise DebugError("the command after -- is empty", hint="e.g. distill debug podman:web -- ps")
    return f"--entrypoint={json.dumps([program]) if engine == 'podman' else program}"


def beside_command(
    target: Container, image: str, name: str, command: Sequence[str], *, tty: bool | None = None
) -> list[str]:
    """``ENGINE run`` of the debug container beside ``target``: its PID, network and IPC
    namespaces, root with CAP_SYS_PTRACE; ``command`` or a login shell. Not ``--rm``:
    :func:`attach` reads how it ended, then removes it."""
    tty = _tty() if tty is None else tty
    cmd = [target.exe, "run", "-i", *(["-t"] if tty else []), "--name", name]
    cmd += ["--label", f"{LABEL}={target.id}"]
    for ns in ("pid", "network", "ipc"):
        cmd += [f"--{ns}", f"container:{target.id}"]
    cmd += ["--user", "0", "--cap-add", "SYS_PTRACE", "--workdir", "/"]
    if command:
        cmd += [entrypoint_flag(target.engine, command[0]), image, *command[1:]]
    else:
        cmd += [entrypoint_flag(target.engine, "/busybox/sh"), image, "-l"]
    return cmd


def banner(target: Container) -> str:
    return (
        f"distill debug: a busybox shell beside {target.engine}:{target.name} (image {target.image}),\n"
        "  in its process, network and IPC namespaces:\n"
        "    its processes   ps                      (its main process is PID 1)\n"
        "    its files       /proc/1/root            (e.g. ls /proc/1/root/)\n"
        "    its ports       netstat -ltn; wget -qO- 127.0.0.1:PORT\n"
        "  This container is removed when the shell exits; the target is not touched.\n"
    )


@dataclass(frozen=True)
class Ended:
    """How a debug container's run ended: its exit status, and whether it ever started
    (a run the engine could not start is not its command's failure, whatever the status)."""

    code: int
    started: bool


def attach(cmd: list[str], exe: str, name: str) -> Ended:
    """Run the debug container in the foreground (the terminal is its), read how it ended,
    and remove it — an interrupted run included."""
    try:
        code = subprocess.run(cmd, check=False).returncode
        proc = run([exe, "container", "inspect", "--format", "{{.State.StartedAt}}", name], name,
                   timeout=60, error=DebugError, check=False)  # fmt: skip
        started = proc.returncode == 0 and not proc.stdout.strip().startswith("0001-01-01")
        return Ended(code, started)
    finally:
        run([exe, "rm", "-f", name], name, timeout=120, error=DebugError, check=False)


def restarted(target: Container) -> bool:
    """Whether the target was started again since it was found (an engine starts a
    container that exited before a debug container joined its namespaces)."""
    proc = run([target.exe, "container", "inspect", "--format", "{{.State.StartedAt}}", target.id],
               target.name, timeout=60, error=DebugError, check=False)  # fmt: skip
    return proc.returncode == 0 and bool(target.started_at) and proc.stdout.strip() != target.started_at


def kubectl_command(
    pod: str,
    container: str | None,
    namespace: str | None,
    image: str,
    profile: str,
    command: Sequence[str],
    tty: bool,
) -> list[str]:
    """The ``kubectl debug`` command line: an ephemeral container from ``image`` in POD,
    with ``--target`` the container whose processes it shares, and ``--profile``."""
    bare = pod.removeprefix("pods/").removeprefix("pod/")  # kubectl's TYPE/NAME form
    for what, value, form in (("pod", bare, _K8S_NAME), ("container", container, _K8S_LABEL),
                              ("namespace", namespace, _K8S_LABEL)):  # fmt: skip
        if value is not None and not form.fullmatch(value):
            raise DebugError(f"{value[:120]!r} is not a Kubernetes {what} name")
    if profile not in PROFILES:
        raise DebugError(
            f"unknown kubectl debug profile {profile!r}", hint=f"profiles: {', '.join(PROFILES)}"
        )
    if not _IMAGE_REF.fullmatch(image):
        raise DebugError(
            f"{image[:120]!r} is not an image reference", hint="HOST[:PORT]/REPO[:TAG][@sha256:…]"
        )
    cmd = ["kubectl", "debug", pod]
    if namespace:
        cmd += ["-n", namespace]
    cmd += ["-i", *(["-t"] if tty else []), f"--image={image}", f"--profile={profile}"]
    if container:
        cmd.append(f"--target={container}")
    cmd += ["--", *(command or ["/busybox/sh", "-l"])]
    return cmd


def shell_line(cmd: Sequence[str]) -> str:
    return shlex.join(cmd)


def run_kubectl(cmd: list[str]) -> int:
    exe = executable("kubectl", "--kubernetes --run", DebugError, hint="leave out --run to print the command")
    try:
        return subprocess.run([exe, *cmd[1:]], check=False).returncode
    except OSError as exc:
        raise DebugError(f"--run: kubectl cannot start: {exc.strerror or exc}") from None


def environment_image() -> str | None:
    """The image reference ``--kubernetes`` uses when ``--image`` is not given."""
    return os.environ.get("DISTILL_DEBUG_IMAGE") or None


__all__ = [
    "Container",
    "Ended",
    "attach",
    "banner",
    "beside_command",
    "entrypoint_flag",
    "environment_image",
    "find_container",
    "image_exists",
    "kubectl_command",
    "load_image",
    "parse_target",
    "restarted",
    "run_kubectl",
    "session_name",
    "shell_line",
]
