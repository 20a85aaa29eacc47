"""The command line: flags -> spec and options -> library calls; renders errors.

Exit codes: 0 success; 2 a user-facing error (bad spec, unreachable mirror,
failed verification, unsatisfiable request, stale lock, ...), printed as one line;
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from distill import __version__
from distill.debian.relation import parse_relations
from distill.distros import ARCHS
from distill.errors import BuildError, DistillError, LockError, SpecError
from distill.options import Options
from distill.progress import make_reporter
from distill.resolve.lock import Lock, check_current, default_lock_path, read_lock, write_lock
from distill.spec.load import builtin_dir, load_spec, spec_checksum, spec_schema, with_overrides
from distill.spec.model import Spec

EXIT_ERROR = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"distill: error: {message} (hint: see '{self.prog} --help')", file=sys.stderr)
        raise SystemExit(EXIT_ERROR)


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("archive and cache")
    g.add_argument("--cache-dir", type=Path, help="cache directory (default: $XDG_CACHE_HOME/distill)")
    g.add_argument("--offline", action="store_true", help="use only the cache; never touch the network")
    g.add_argument(
        "--mirror",
        metavar="URL",
        help="Debian mirror (default: $DISTILL_MIRROR, else the host's apt sources)",
    )
    g.add_argument(
        "--security-mirror",
        metavar="URL",
        help="mirror for the -security suite (default: $DISTILL_SECURITY_MIRROR, else the host's apt "
        "sources, else MIRROR-security)",
    )
    g.add_argument(
        "--nodejs-mirror",
        metavar="URL",
        help="Node.js release mirror for specs with nodejs: (default: $DISTILL_NODEJS_MIRROR)",
    )
    g.add_argument("-j", "--jobs", type=int, default=4, help="parallel downloads (default: 4)")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _spec_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "spec", metavar="SPEC", help="spec file, or a built-in name (static, base, cc, python3, ...)"
    )
    p.add_argument(
        "--arch",
        action="append",
        dest="archs",
        metavar="ARCH",
        help="only this architecture (repeatable; default: the spec's archs)",
    )
    p.add_argument("--distro", choices=["debian13", "debian12"], help="override the spec's distro")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="distill",
        description="Build distroless container images straight from Debian packages.",
        epilog="Errors are printed as one line and exit with status 2. See docs/ for the spec format.",
    )
    parser.add_argument("--version", action="version", version=f"distill {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "lock",
        help="resolve a spec and write its lockfile",
        description="Resolve the spec's packages against the verified archive and write SPEC.lock.json "
        "beside the spec (for a built-in name: in the current directory). Lists every pruned edge.",
    )
    _spec_args(p)
    p.add_argument("-o", "--output", type=Path, help="lockfile path (default: beside the spec)")
    p.add_argument(
        "--check",
        action="store_true",
        help="do not write; fail if the lockfile does not match the spec (exit 2)",
    )
    p.add_argument("--json", action="store_true", help="print a machine-readable summary on stdout")
    _common(p)

    p = sub.add_parser(
        "why",
        help="show the dependency chain that pulls a package in",
        description="Explain why PACKAGE is in the image: the chain from the spec down to it, or the "
        "pruned edge that keeps it out.",
    )
    _spec_args(p)
    p.add_argument("package", metavar="PACKAGE")
    _common(p)

    p = sub.add_parser(
        "fetch",
        help="download and verify every .deb of the lock into the cache",
        description="Download the spec's packages (from its lockfile when present) in parallel, each "
        "verified against the SHA256 and size in its signed index.",
    )
    _spec_args(p)
    p.add_argument("--lock", type=Path, help="lockfile path (default: beside the spec)")
    p.add_argument("--locked", action="store_true", help="require a lockfile that matches the spec")
    _common(p)

    p = sub.add_parser(
        "build",
        help="build the image (OCI layout, or a .tar for podman/docker load)",
        description="Build a reproducible OCI image from the spec: from its lockfile when one is beside "
        "the spec (it must match), else from a fresh resolution. Several architectures make one "
        "multi-arch index. A spec with an 'app' (python, node, java or binary) puts the application "
        "on its flavor: dependencies and code in their own layers, run as 65532 (docs/apps.md). "
        "The image digest is printed on the last line of stdout.",
        epilog="Set SOURCE_DATE_EPOCH to clamp timestamps; otherwise they come from the packages.",
    )
    _spec_args(p)
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT",
        help="an OCI image layout directory, or OUT.tar: one archive for 'podman load'/'docker load' "
        "(default: ./NAME[-VARIANT].oci)",
    )
    p.add_argument("--variant", default="latest", help="latest (default), nonroot, debug or debug-nonroot")
    p.add_argument(
        "--tag",
        metavar="NAME:TAG",
        help="name the image: ref.name in a layout, RepoTags in a .tar (default: NAME:VARIANT)",
    )
    p.add_argument("--lock", type=Path, help="lockfile path (default: beside the spec)")
    p.add_argument("--locked", action="store_true", help="require a lockfile that matches the spec")
    p.add_argument(
        "--per-arch-tags",
        action="store_true",
        help="in a multi-arch layout, also name each platform's image TAG-ARCH (for tools that cannot "
        "pick a platform from an index, e.g. umoci; index.json then has several entries)",
    )
    p.add_argument(
        "--load",
        nargs="?",
        const="auto",
        choices=["auto", "podman", "docker"],
        metavar="ENGINE",
        help="load the image into the local podman or docker (ENGINE; default: podman if installed, "
        "else docker), tagged with --tag; without -o nothing else is written",
    )
    _common(p)

    p = sub.add_parser(
        "audit",
        help="find the attack surface in images, Dockerfiles and Kubernetes manifests",
        description="Audit each TARGET: an OCI layout (DIR or DIR:REF), an OCI or docker archive (FILE.tar), "
        "a local image (podman:NAME, docker:NAME), a registry image (docker://HOST/REPO:TAG or @sha256:...), "
        "a Dockerfile, a Kubernetes YAML file, or a directory of Dockerfiles and manifests. Images are streamed "
        "layer by layer (verified, nothing extracted); each gets facts, findings, a grade and the distill flavor "
        "that would run it.",
        epilog="Exit status: 0 audited (no finding at or above --fail-on), 1 a finding at or above --fail-on, "
        "2 a target could not be read (corrupt, unreachable, unparsable) or bad usage.",
    )
    p.add_argument("targets", metavar="TARGET", nargs="+")
    _audit_options(p)
    p.add_argument(
        "--format",
        choices=["terminal", "json", "sarif", "markdown"],
        default="terminal",
        help="report format (default: terminal; colour on a TTY)",
    )
    p.add_argument(
        "-o", "--output", type=Path, help="write the report to a file (atomically) instead of stdout"
    )
    p.add_argument(
        "--fail-on",
        choices=["none", "info", "low", "medium", "high", "critical"],
        default="none",
        help="exit 1 when a finding is at least this severe (default: none)",
    )
    p.add_argument(
        "--write-spec",
        type=Path,
        metavar="FILE",
        help="write the distill spec that builds the migrated image (one image or Dockerfile target)",
    )

    p = sub.add_parser(
        "compare",
        help="compare images side by side (size, packages, shell, package manager, setuid, user, findings)",
        description="Audit each IMAGE (any image target of `distill audit`) and print one row per image.",
        epilog="Exit status: 0, or 2 when an image could not be read.",
    )
    p.add_argument("targets", metavar="IMAGE", nargs="+")
    _audit_options(p)
    p.add_argument("--format", choices=["terminal", "json", "markdown"], default="terminal")

    p = sub.add_parser("cache", help="check or trim the cache (verify, prune)")
    csub = p.add_subparsers(dest="cache_command", metavar="ACTION", parser_class=_Parser, required=True)
    c = csub.add_parser("verify", help="hash every cache entry; remove bad ones (exit 1 if any)")
    c.add_argument("--cache-dir", type=Path, help="cache directory (default: $XDG_CACHE_HOME/distill)")
    c = csub.add_parser("prune", help="remove old entries, or the least recently used beyond a size")
    c.add_argument("--cache-dir", type=Path, help="cache directory (default: $XDG_CACHE_HOME/distill)")
    c.add_argument("--older-than", type=_days, metavar="DAYS", help="remove entries unused for DAYS")
    c.add_argument(
        "--max-size", metavar="SIZE", help="then trim to SIZE (e.g. 2G), least recently used first"
    )
    c.add_argument("--keep-lock", type=Path, action="append", default=[], metavar="LOCK",
                   help="never remove what this lockfile needs (repeatable)")  # fmt: skip

    p = sub.add_parser("schema", help="print the JSON schema of the spec format")
    p.add_argument("-o", "--output", type=Path, help="write to a file instead of stdout")
    return parser


def _audit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--arch", help="the platform to pick from a multi-platform image (default: the host's)")
    p.add_argument(
        "--username", help="registry user (else DISTILL_REGISTRY_USERNAME or podman/docker auth files)"
    )
    p.add_argument("--password-stdin", action="store_true", help="read the registry password from stdin")
    p.add_argument(
        "--plain-http",
        action="store_true",
        help="talk HTTP, not HTTPS, to the registry (loopback registries always use HTTP)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")


def _audit_reports(args: argparse.Namespace, images_only: bool) -> tuple[list[Any], list[str]]:
    from distill.audit import audit, expand_targets

    auth = None
    if args.username:
        if not args.password_stdin:
            raise SpecError("--username needs --password-stdin (the password is never a flag)")
        auth = (args.username, sys.stdin.readline().rstrip("\n"))
    elif args.password_stdin:
        raise SpecError("--password-stdin needs --username")
    reports, errors = [], []
    reporter = make_reporter(args.quiet)
    try:
        for target in args.targets:
            try:
                expanded = expand_targets([target])
            except DistillError as exc:
                errors.append(exc.one_line())
                print(f"distill: error: {exc.one_line()}", file=sys.stderr)
                continue
            for t, kind in expanded:
                task = reporter.task(f"auditing {t}", None)

                def progress(done: int, total: int, task: int = task) -> None:
                    reporter.advance(task, 1)

                t0 = time.perf_counter()
                try:
                    if images_only and kind != "image":
                        raise SpecError(f"{t} is a {kind}, not an image", hint="distill audit reads it")
                    reports.append(
                        audit(
                            t, kind, arch=args.arch, auth=auth, plain_http=args.plain_http, progress=progress
                        )
                    )
                except DistillError as exc:
                    errors.append(exc.one_line())
                    print(f"distill: error: {exc.one_line()}", file=sys.stderr)
                    continue
                reporter.done(task, f"audited {t} ({time.perf_counter() - t0:.2f} s)")
    finally:
        reporter.close()
    return reports, errors


def cmd_audit(args: argparse.Namespace) -> int:
    import io

    from distill.archive.cache import atomic_write
    from distill.audit import rank
    from distill.audit import report as render
    from distill.audit.recommend import dockerfile_name, spec_for, write_spec

    if args.write_spec and len(args.targets) != 1:
        raise SpecError("--write-spec takes one image or Dockerfile target")
    reports, errors = _audit_reports(args, False)
    buf = io.StringIO()
    if args.format == "json":
        buf.write(render.to_json(reports, errors))
    elif args.format == "sarif":
        buf.write(render.sarif(reports, errors))
    elif args.format == "markdown":
        buf.write(render.markdown(reports, errors))
    if args.format == "terminal":
        if args.output:
            render.terminal(reports, errors, buf)
        else:
            render.terminal(reports, [], sys.stdout)
    if args.output:
        try:
            atomic_write(args.output, buf.getvalue().encode())
        except OSError as exc:
            raise BuildError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    elif args.format != "terminal":
        sys.stdout.write(buf.getvalue())
    if args.write_spec and reports:
        r = reports[0]
        rec = r.recommendation or {}
        if r.kind == "kubernetes":
            raise SpecError("--write-spec needs an image or a Dockerfile target")
        text = spec_for(
            rec,
            dockerfile_name(r.target if r.kind == "image" else Path(r.target).parent.name or "app"),
            r.target,
            rec.get("ports", []),
            rec.get("architecture"),
        )
        write_spec(args.write_spec, text)
        print(
            f"distill: wrote {args.write_spec} (distill {rec['flavor']}); build it with "
            f"`distill build {args.write_spec} --load`",
            file=sys.stderr,
        )
    if errors:
        return EXIT_ERROR
    if args.fail_on != "none" and any(
        rank(f.severity) >= rank(args.fail_on) for r in reports for f in r.findings
    ):
        return 1
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from distill.audit import report as render

    reports, errors = _audit_reports(args, True)
    if reports:
        render.compare_table(reports, sys.stdout, args.format)
    return EXIT_ERROR if errors else 0


def _load(args: argparse.Namespace) -> tuple[Spec, Path]:
    spec, path = load_spec(args.spec)
    update: dict[str, Any] = {}
    if args.distro:
        update["distro"] = args.distro
    if args.archs:
        for a in args.archs:
            if a not in ARCHS:
                raise SpecError(f"unknown architecture {a!r}", hint=f"known: {', '.join(ARCHS)}")
        update["archs"] = list(dict.fromkeys(args.archs))
    return with_overrides(spec, **update), path


def _options(args: argparse.Namespace) -> Options:
    if args.jobs < 1:
        raise SpecError("--jobs must be at least 1")
    return Options(
        cache_dir=args.cache_dir,
        offline=args.offline,
        mirror=args.mirror,
        security_mirror=args.security_mirror,
        nodejs_mirror=args.nodejs_mirror,
        jobs=args.jobs,
        reporter=make_reporter(args.quiet),
    )


def _lock_path(args: argparse.Namespace, path: Path, attr: str = "output") -> Path:
    explicit = getattr(args, attr, None)
    if explicit:
        return Path(explicit)
    builtin = path.resolve().parent == builtin_dir().resolve()
    return default_lock_path(path, builtin)


def _mib(n: int) -> str:
    return f"{n / 1048576:.1f} MiB"


def _packages_spec(args: argparse.Namespace) -> tuple[Spec, Path]:
    """The spec, for commands about its Debian packages (an app on an OCI layout has none)."""
    spec, path = _load(args)
    if spec.base_layout is not None:
        raise SpecError(
            f"{args.spec} goes on an OCI layout ({spec.base_layout[0]}): it has no Debian packages to lock or fetch",
            hint="distill build it directly",
        )
    return spec, path


def cmd_lock(args: argparse.Namespace) -> int:
    from distill.pipeline import make_lock, open_archive, resolve

    spec, path = _packages_spec(args)
    lock_path = _lock_path(args, path)
    if args.check:
        check_current(read_lock(lock_path), spec_checksum(spec), lock_path, list(spec.archs))
        print(f"{lock_path} is up to date")
        return 0
    options = _options(args)
    archive = open_archive(spec, options)
    try:
        t0 = time.perf_counter()
        resolutions = resolve(spec, archive)
        lock = make_lock(spec, archive, resolutions, options)
    finally:
        archive.close()
        options.reporter.close()
    write_lock(lock, lock_path)
    elapsed = time.perf_counter() - t0
    if args.json:
        print(json.dumps(_summary(lock, lock_path, elapsed), indent=2))
        return 0
    for arch in lock.archs:
        pkgs = lock.packages[arch]
        size = sum(p.size for p in pkgs)
        inst = sum(p.installed_size for p in pkgs) * 1024
        print(f"{arch}: {len(pkgs)} packages, {_mib(size)} to download, {_mib(inst)} installed")
        for edge in lock.pruned[arch]:
            print(f"  pruned: {edge['package']} {edge['field']} {edge['relation']} ({edge['reason']})")
    print(f"wrote {lock_path} in {elapsed:.2f} s")
    return 0


def _summary(lock: Lock, path: Path, elapsed: float) -> dict[str, Any]:
    return {
        "lockfile": str(path),
        "seconds": round(elapsed, 3),
        "archs": {
            arch: {
                "packages": [f"{p.name}={p.version}" for p in lock.packages[arch]],
                "download_bytes": sum(p.size for p in lock.packages[arch]),
                "installed_bytes": sum(p.installed_size for p in lock.packages[arch]) * 1024,
                "pruned": lock.pruned[arch],
            }
            for arch in lock.archs
        },
    }


def cmd_why(args: argparse.Namespace) -> int:
    from distill.pipeline import open_archive, resolve

    spec, _ = _load(args)
    arch = spec.archs[0]
    options = _options(args)
    archive = open_archive(spec, options)
    try:
        res = resolve(spec, archive, [arch])[arch]
        universe = archive.universe(arch)
    finally:
        archive.close()
        options.reporter.close()
    name = args.package
    if res.get(name) is not None:
        print(f"{name} is in the {arch} image because:")
        for depth, (pkg, reason) in enumerate(res.chain(name)):
            version = res.get(pkg)
            what = "the spec asks for" if reason.parent is None else f"{reason.field}:"
            print(f"{'  ' * depth}{pkg} {version.version if version else ''}  ({what} {reason.relation})")
        return 0
    # Edges to the package itself or to a virtual name it provides.
    targets = {name} | {r.name for p in universe.candidates(name) for r in p.provides}
    edges = [e for e in res.pruned if {r.name for c in parse_relations(e.relation) for r in c} & targets]
    if edges:
        print(f"{name} is not in the {arch} image; these edges to it were pruned:")
        for e in edges:
            print(f"  {e}")
        return 0
    raise DistillError(f"{name} is not in the {arch} image and nothing depends on it")


def cmd_fetch(args: argparse.Namespace) -> int:
    from distill.pipeline import fetch, make_lock, open_archive, resolve

    spec, path = _packages_spec(args)
    lock_path = _lock_path(args, path, "lock")
    options = _options(args)
    lock: Lock | None = None
    if (lock_path.exists() or lock_path.is_symlink()) or args.locked:
        lock = read_lock(lock_path)
        try:
            check_current(lock, spec_checksum(spec), lock_path, list(spec.archs))
        except LockError:
            if args.locked:
                raise
            lock = None
    archive = open_archive(spec, options)
    try:
        if lock is None:
            lock = make_lock(spec, archive, resolve(spec, archive), options)
        result = fetch(lock, archive, options, list(spec.archs))
    finally:
        archive.close()
        options.reporter.close()
    count = len(result.paths)
    print(f"{count} packages verified in the cache ({result.downloaded} downloaded, {_mib(result.bytes)})")
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    text = json.dumps(spec_schema(), indent=2) + "\n"
    if args.output:
        from distill.archive.cache import atomic_write

        atomic_write(args.output, text.encode())
    else:
        sys.stdout.write(text)
    return 0


def _source_date_epoch() -> int | None:
    import os

    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if raw is None or raw == "":
        return None
    # ASCII digits only (str.isdigit takes '²', which int() refuses: a traceback), and a
    # time that has a date (9999-12-31 at most: later ones were a ValueError traceback).
    if not (raw.isascii() and raw.isdigit()) or int(raw) > _MAX_EPOCH:
        raise SpecError(f"SOURCE_DATE_EPOCH={raw[:40]!r} is not a number of seconds up to {_MAX_EPOCH}")
    return int(raw)


_MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z


def _engine(choice: str) -> str:
    names = ["podman", "docker"] if choice == "auto" else [choice]
    for name in names:
        if shutil.which(name):
            return name
    raise SpecError(
        f"--load: {' or '.join(names)} is not installed",
        hint="install podman, or write the image with -o IMAGE.tar",
    )


def _qualified(tag: str) -> str:
    first = tag.split("/", 1)[0]
    return (
        tag if "/" in tag and ("." in first or ":" in first or first == "localhost") else f"localhost/{tag}"
    )


def _load_into(engine: str, image: Path, tag: str) -> None:
    """Put the image into the local engine's storage, like ko's --local: an OCI layout
    through skopeo (only the layers podman lacks are copied), else ``ENGINE load``."""
    import subprocess

    from distill.oci.sink import split_tag

    if image.suffix == ".tar":
        cmd = [engine, "load", "-q", "-i", str(image)]
    else:
        _, ref = split_tag(tag)
        cmd = [
            "skopeo",
            "copy",
            "-q",
            f"oci:{image}:{ref}",
            f"containers-storage:{_qualified(split_tag(tag)[0])}",
        ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BuildError(f"--load: {cmd[0]} failed: {exc}") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no message)"])[-1]
        raise BuildError(
            f"--load: {' '.join(cmd[:2])} failed: {last}", hint=f"is {engine} usable by this user?"
        )


def cmd_build(args: argparse.Namespace) -> int:
    from distill.build import BuildResult, build, build_on_layout, check_variant, default_output
    from distill.oci.sink import check_tag

    check_variant(args.variant)
    spec, path = _load(args)
    lock_path = _lock_path(args, path, "lock")
    options = _options(args)
    options.source_date_epoch = _source_date_epoch()
    archs: list[str] = list(spec.archs)
    lock: Lock | None = None
    if spec.base_layout is None and ((lock_path.exists() or lock_path.is_symlink()) or args.locked):
        lock = read_lock(lock_path)
        check_current(lock, spec_checksum(spec), lock_path, archs)
    archive = None

    def open_() -> Any:
        nonlocal archive
        if archive is None:
            from distill.pipeline import open_archive

            archive = open_archive(spec, options)
        return archive

    def fetch(packages: list[Any]) -> None:
        from distill.fetch import fetch_debs

        a = open_()
        fetch_debs(packages, a, a.cache, reporter=options.reporter, jobs=options.jobs)

    name = spec.levels[-1][0]
    output = args.output or default_output(name, args.variant)
    tag = check_tag(args.tag) if args.tag else f"{name}:{args.variant}"
    engine = _engine(args.load) if args.load else None
    scratch = None
    # podman's storage takes an OCI layout through skopeo, copying only new layers;
    # docker (or podman without skopeo) loads an archive.
    load_kind = ".oci" if engine == "podman" and shutil.which("skopeo") else ".tar"
    if engine and (args.output is None or (args.output.suffix == ".tar") != (load_kind == ".tar")):
        import tempfile

        scratch = Path(tempfile.mkdtemp(prefix="distill-load-"))
    try:
        if scratch is not None and args.output is None:
            output = scratch / f"image{load_kind}"  # only loaded, not kept

        def run_build(out: Path) -> BuildResult:
            nonlocal lock
            per_arch_tags = args.per_arch_tags and out == output  # not in the extra form --load takes
            if spec.base_layout is not None:
                return build_on_layout(spec, options, variant=args.variant, archs=archs, output=out, tag=tag,
                                       spec_path=path, per_arch_tags=per_arch_tags)  # fmt: skip
            if lock is None:
                from distill.pipeline import make_lock, resolve

                lock = make_lock(spec, open_(), resolve(spec, open_()), options)
            return build(spec, lock, options, variant=args.variant, archs=archs, output=out, tag=tag, fetch=fetch,
                         spec_path=path, per_arch_tags=per_arch_tags)  # fmt: skip

        result = run_build(output)
        if engine:
            load_from = output
            if (output.suffix == ".tar") != (load_kind == ".tar"):  # the form to load is extra
                assert scratch is not None
                load_from = scratch / f"image{load_kind}"
                run_build(load_from)
            _load_into(engine, load_from, tag)
    finally:
        if archive is not None:
            archive.close()
        options.reporter.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    for image in result.images:
        print(
            f"{image.arch}: {len(image.layers)} layers ({', '.join(image.layer_names)}), {image.packages} packages, "
            f"{image.files} files, {_mib(image.size)} compressed, {_mib(image.tar_size)} uncompressed"
        )
    kind = "archive" if output.suffix == ".tar" else "OCI layout"
    state = "wrote" if result.written else "up to date:"
    if not (engine and args.output is None):
        print(
            f"{state} {kind} {output} ({result.layers_written} layers written, {result.layers_reused} reused)"
        )
    if engine:
        print(f"loaded into {engine} as {_qualified(tag)}")
    print(result.digest)
    return 0


def cmd_cache(args: argparse.Namespace) -> int:
    from distill import cachecmd
    from distill.archive.cache import default_cache_dir

    root = (args.cache_dir or default_cache_dir()).expanduser()
    if args.cache_command == "verify":
        report = cachecmd.verify(root, lambda p, why: print(f"removed {p} ({why})"))
        print(f"{report.checked} entries checked, {len(report.removed)} files removed")
        return 1 if report.removed else 0
    if args.older_than is None and args.max_size is None:
        raise DistillError("cache prune needs --older-than DAYS and/or --max-size SIZE")
    size = cachecmd.parse_size(args.max_size) if args.max_size is not None else None
    report = cachecmd.prune(
        root,
        older_than_days=args.older_than,
        max_size=size,
        keep=cachecmd.lock_needs(args.keep_lock),
        on_removed=lambda p, why: print(f"removed {p} ({why})"),
    )
    print(f"{len(report.removed)} files removed, {_mib(report.freed)} freed")
    return 0


COMMANDS = {
    "lock": cmd_lock,
    "why": cmd_why,
    "fetch": cmd_fetch,
    "build": cmd_build,
    "audit": cmd_audit,
    "compare": cmd_compare,
    "schema": cmd_schema,
    "cache": cmd_cache,
}


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM unwinds like an exception, so every temporary file and directory is
    # removed on the way out (the default action would kill the process where it stands).
    raise SystemExit(128 + signum)


def _days(text: str) -> float:
    """A number of days for --older-than: finite and not negative (nan, inf and -1 are refused)."""
    try:
        days = float(text)
    except ValueError:
        days = math.nan
    if not math.isfinite(days) or days < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of days (0 or more)")
    return days


def main(argv: list[str] | None = None) -> int:
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_ERROR
    try:
        return COMMANDS[args.command](args)
    except DistillError as exc:
        print(f"distill: error: {exc.one_line()}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("distill: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"distill: error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
