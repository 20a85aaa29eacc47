"""``distill debug``: a shell or one command beside a running distroless container, the
``kubectl debug`` command for a pod, or a spec's debug variant run locally."""

from __future__ import annotations

import argparse
import sys

from distill.cli.common import (
    Subparsers,
    add_common,
    add_distro,
    add_registry,
    load,
    lock_path,
    options,
    registry_settings,
    source_date_epoch,
)
from distill.debug import PROFILES  # constants only: the session code is imported where it runs
from distill.errors import DebugError, SpecError


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "debug",
        help="debug a distroless container without a shell in it: a busybox beside it, or its debug variant",
        description="podman:NAME or docker:NAME — start an ephemeral container from distill's busybox image "
        "(the static flavor's debug variant, built from the Debian archive: no registry needed) in the running "
        "container's PID, network and IPC namespaces, as kubectl debug --target does: ps shows its processes, "
        "/proc/1/root is its filesystem, 127.0.0.1 its ports. A login shell, or the COMMAND after --, whose "
        "output and exit status come back. The debug container is removed when it exits; the target is not "
        "touched. --kubernetes POD — print (or --run) the kubectl debug command for a pod. SPEC — build the "
        "spec's debug variant from its lock (the same packages and app layers, plus busybox at /busybox), "
        "load it and run it here, for staging: the image's own entrypoint, or COMMAND.",
        epilog="Exit status: the debug container's (or COMMAND's); 2 when the session cannot start (no "
        "engine, no such container, one that is not running, bad usage). docs/debugging.md has the workflow.",
        usage="distill debug [options] (podman:NAME | docker:NAME | SPEC | --kubernetes POD) [-- COMMAND ...]",
    )
    from distill.cli.complete import spec_completer

    p.add_argument(
        "target",
        nargs="?",
        metavar="TARGET",
        help="podman:CONTAINER or docker:CONTAINER (running), or a spec file or built-in name",
    ).completer = spec_completer
    k = p.add_argument_group("Kubernetes (kubectl debug)")
    k.add_argument("--kubernetes", metavar="POD", help="the pod to debug with an ephemeral container")
    k.add_argument("-c", "--container", metavar="NAME", help="the pod's container whose processes to share")
    k.add_argument("-n", "--namespace", metavar="NS", help="the pod's namespace (default: kubectl's)")
    k.add_argument(
        "--image",
        metavar="REF",
        help="the debug image for the pod, a registry reference the cluster can pull (default: "
        "$DISTILL_DEBUG_IMAGE; make one with 'distill build static --variant debug --push REF')",
    )
    k.add_argument(
        "--profile",
        choices=PROFILES,
        help="kubectl debug's security profile (default: general, which adds SYS_PTRACE for /proc/1/root)",
    )
    k.add_argument("--run", action="store_true", help="run the kubectl command instead of printing it")
    s = p.add_argument_group("a spec's debug variant")
    s.add_argument(
        "--variant",
        choices=["debug", "debug-nonroot"],
        default="debug",
        help="which debug variant of a spec (default: debug; an app runs as 65532 in either)",
    )
    s.add_argument("--lock", metavar="FILE", help="lockfile path (default: beside the spec)")
    s.add_argument("--locked", action="store_true", help="require a lockfile that matches the spec")
    s.add_argument("--tag", metavar="NAME:TAG", help="the name it is loaded as (default: NAME:debug)")
    s.add_argument(
        "-p",
        "--publish",
        action="append",
        default=[],
        metavar="[IP:]HOST:CONTAINER",
        help="publish a port of the spec's container, as podman run -p (repeatable)",
    )
    p.add_argument(
        "--engine",
        choices=["auto", "podman", "docker"],
        default="auto",
        help="for a spec: the engine to load and run it in (default: podman if installed, else docker)",
    )
    add_distro(p, "the Debian release of the busybox image, or of the spec (default: the spec's)")
    add_common(p)
    add_registry(p)
    p.set_defaults(func=cmd_debug, command_args=[])


# The flags of one mode, refused in the others (a flag that does nothing is a mistake).
_KUBERNETES_FLAGS = ("container", "namespace", "image", "profile", "run")
_SPEC_FLAGS = ("lock", "locked", "tag", "publish", "variant", "engine")
_ARCHIVE_FLAGS = ("distro", "mirror", "security_mirror", "nodejs_mirror", "offline")


def _given(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    defaults = {"variant": "debug", "engine": "auto", "publish": [], "locked": False, "run": False,
                "offline": False}  # fmt: skip
    return [f"--{n.replace('_', '-')}" for n in names if getattr(args, n) != defaults.get(n)]


def _refuse(flags: list[str], mode: str) -> None:
    if flags:
        raise SpecError(f"{', '.join(flags)}: not for {mode}", hint="see 'distill debug --help'")


def cmd_debug(args: argparse.Namespace) -> int:
    from distill.debug.session import parse_target

    command: list[str] = list(args.command_args)
    if args.kubernetes is not None:
        if args.target is not None:
            raise SpecError(
                f"--kubernetes {args.kubernetes} debugs a pod: leave out {args.target[:80]!r}",
                hint="a command goes after --",
            )
        _refuse(_given(args, _SPEC_FLAGS + _ARCHIVE_FLAGS), "--kubernetes (the cluster pulls --image)")
        return _kubernetes(args, command)
    kube = _given(args, _KUBERNETES_FLAGS)
    if kube:
        raise SpecError(f"{', '.join(kube)}: for --kubernetes POD")
    if args.target is None:
        raise SpecError(
            "name what to debug: podman:CONTAINER, docker:CONTAINER, a spec, or --kubernetes POD",
            hint="see 'distill debug --help'",
        )
    parsed = parse_target(args.target)
    if parsed is not None:
        _refuse(_given(args, _SPEC_FLAGS), "a container (they are for a spec)")
        return _beside(args, parsed[0], parsed[1], command)
    return _spec(args, command)


def _beside(args: argparse.Namespace, engine: str, name: str, command: list[str]) -> int:
    from distill.debug.images import busybox_image
    from distill.debug.session import attach, banner, beside_command, find_container, restarted, session_name
    from distill.progress import make_reporter

    target = find_container(engine, name)
    opts = options(args)
    opts.reporter = make_reporter(True)  # a second or so from the cache: no progress lines
    try:
        image, loaded = busybox_image(engine, target.exe, opts, args.distro)
    finally:
        opts.reporter.close()
    if loaded and not args.quiet:
        print(f"distill: loaded the debug image {image} into {engine}", file=sys.stderr)
    # Again, just before joining it: an engine starts a container that has exited since
    # (a dependency of the one joining its namespaces); the target must not be restarted.
    target = find_container(engine, target.id)
    session = session_name(target.name)
    cmd = beside_command(target, image, session, command)
    if not command and not args.quiet:
        sys.stderr.write(banner(target))
        sys.stderr.flush()
    ended = attach(cmd, target.exe, session)
    if restarted(target):
        print(
            f"distill: warning: {engine}:{target.name} exited as the debug container started, and {engine} "
            "started it again",
            file=sys.stderr,
        )
    if not ended.started and ended.code not in (126, 127):  # 126/127: the command cannot be run
        raise DebugError(
            f"{engine} could not start the debug container beside {engine}:{target.name} (its message is above)"
        )
    return ended.code


def _kubernetes(args: argparse.Namespace, command: list[str]) -> int:
    from distill.debug.session import environment_image, kubectl_command, run_kubectl, shell_line

    image = args.image or environment_image()
    if image is None:
        raise SpecError(
            "--kubernetes needs the debug image the cluster pulls: --image REF or DISTILL_DEBUG_IMAGE",
            hint="push distill's: distill build static --variant debug --push HOST/REPO:debug",
        )
    cmd = kubectl_command(
        args.kubernetes, args.container, args.namespace, image, args.profile or "general", command,
        sys.stdin.isatty(),
    )  # fmt: skip
    if not args.run:
        if args.container is None and not args.quiet:
            print(
                "distill: without -c CONTAINER the debug container shares no container's processes",
                file=sys.stderr,
            )
        print(shell_line(cmd))
        return 0
    return run_kubectl(cmd)


def _spec(args: argparse.Namespace, command: list[str]) -> int:
    from distill.cli.build import base_of, spec_lock
    from distill.debug import LABEL
    from distill.debug.images import spec_image
    from distill.debug.session import attach, entrypoint_flag, session_name
    from distill.engine import executable
    from distill.oci.load import choose_engine, qualified
    from distill.oci.sink import check_tag

    args.archs, args.spec = None, args.target
    spec, path = load(args)
    engine = choose_engine(args.engine)
    exe = executable(engine, "distill debug", DebugError)
    lock_file = lock_path(args, path, "lock")
    lock = spec_lock(spec, lock_file, args.locked)
    settings = registry_settings(args)
    base = base_of(spec, lock, settings, args.locked, lock_file, args.offline) if spec.base_image else None
    name = spec.levels[-1][0]
    tag = check_tag(args.tag) if args.tag else f"{name}:{args.variant}"
    opts = options(args)
    opts.source_date_epoch = source_date_epoch()
    try:
        result = spec_image(engine, spec, lock, opts, tag, args.variant, base, path)
    finally:
        opts.reporter.close()
    full = qualified(tag)
    session = session_name(name)
    tty = sys.stdin.isatty() and sys.stdout.isatty()
    cmd = [exe, "run", "-i", *(["-t"] if tty else []), "--name", session, "--label", f"{LABEL}=spec:{name}"]
    for port in args.publish:
        cmd += ["-p", port]
    if command:
        cmd += [entrypoint_flag(engine, command[0]), full, *command[1:]]
    else:
        cmd.append(full)
    if not args.quiet:
        print(
            f"distill debug: running {full} ({result.digest[:19]}…), the {args.variant} variant of {path.name}"
            f"{' from its lock' if lock else ''}, as {session}\n"
            f"  a shell in it: {engine} exec -it {session} /busybox/sh; it is removed when it exits",
            file=sys.stderr,
        )
    ended = attach(cmd, exe, session)
    if not ended.started and ended.code not in (126, 127):
        raise DebugError(f"{engine} could not run {full} (its message is above)")
    return ended.code
