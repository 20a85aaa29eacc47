"""Applications on a distroless flavor, without a Dockerfile (see docs/apps.md).

:func:`prepare` turns a spec's ``app`` into layers (dependencies below code, so a
code change rebuilds only the top layer) and the image settings that run it;
:meth:`AppBuild.check` verifies, against the assembled image, that what the
application needs is there (a binary's interpreter and libraries, a Node addon's
ABI, the runtime itself) and names what is missing.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from distill.app import elf, files, java, node, python
from distill.assemble import ldcache
from distill.assemble.tree import Node, Tree
from distill.errors import SpecError
from distill.progress import Reporter
from distill.spec.model import AppSpec

RUNTIMES = {"python": "python3", "node": "nodejs", "java": "java"}


@dataclass
class AppLayer:
    name: str
    comment: str
    entries: list[tuple[str, Node]]


@dataclass(frozen=True)
class Dependency:
    """A package the app's layers were made from (a wheel, an npm tarball): what SLSA
    provenance lists as a resolved dependency."""

    name: str
    version: str
    uri: str
    digest: dict[str, str]  # algorithm -> lowercase hex
    ecosystem: str  # "pypi", "npm"


@dataclass
class AppBuild:
    kind: str
    layers: list[AppLayer]
    entrypoint: list[str] | None
    cmd: list[str] | None
    workdir: str
    env: dict[str, str] = field(default_factory=dict)
    checks: list[Callable[[Tree, str], None]] = field(default_factory=list)
    dependencies: list[Dependency] = field(default_factory=list)

    def check(self, tree: Tree, arch: str) -> None:
        for check in self.checks:
            check(tree, arch)


@dataclass(frozen=True)
class Target:
    """What an app is built for and with: the image's packages and architecture, the
    cache, and what the code layer must leave out."""

    packages: list[tuple[str, str]]  # (name, version) of the image's Debian packages
    arch: str
    cache: Path
    spec_file: Path | None = None
    offline: bool = False
    reporter: Reporter = field(default_factory=Reporter)
    skip: tuple[Path, ...] = ()
    node_runtime: node.Runtime | None = None  # Node.js not from Debian (a release archive, an image's)


def _project(app: AppSpec) -> Path:
    source = Path(app.source)
    if not source.is_dir():
        raise SpecError(f"app.source {source} must be the project directory for kind {app.kind}")
    return source


def _code(app: AppSpec, source: Path, t: Target) -> AppLayer:
    code = files.collect(source, app.dest, exclude=_excludes(app, t.spec_file), skip=t.skip)
    return AppLayer("code", f"{sum(1 for _, n in code if n.kind != '5')} files", code)


def default_flavor(kind: str, source: str) -> str:
    """The flavor an app goes on when the spec names none."""
    if kind in RUNTIMES:
        return RUNTIMES[kind]
    path = Path(source)
    if not path.is_file():
        raise SpecError(f"app.source {source} must be the executable file for kind binary")
    return elf.flavor_for(elf.inspect_elf(path, "app.source"))


def _needs(tree: Tree, path: str, what: str, hint: str) -> None:
    canonical = tree.resolve(path)
    if tree.get(canonical) is None:
        raise SpecError(what, hint=hint)


def _check_elf(info: elf.ElfInfo, name: str, origin: str, tree: Tree, arch: str) -> None:
    if info.arch != arch:
        raise SpecError(
            f"{name} is built for {info.arch}, but the image is {arch}",
            hint=f"build it for {arch} (or pass --arch {info.arch})",
        )
    if info.interpreter is not None and tree.get(tree.resolve(info.interpreter)) is None:
        libs = ", ".join(info.needed) or "libc"
        raise SpecError(
            f"{name} is dynamically linked (interpreter {info.interpreter}, needs {libs}) but the image has no "
            f"{info.interpreter}",
            hint="use from: base (or cc), or link it statically (CGO_ENABLED=0, -static, "
            "the x86_64-unknown-linux-musl target)",
        )
    entries = ldcache.cache_entries(tree, arch)
    known = {e.key for e in entries}
    for lib in info.needed:
        if lib in known:
            continue
        dirs = [d.replace("$ORIGIN", origin).replace("${ORIGIN}", origin) for d in info.runpath]
        if any(tree.get(tree.resolve(f"{d.strip('/')}/{lib}")) is not None for d in dirs):
            continue
        raise SpecError(
            f"{name} needs {lib}, which the image lacks",
            hint="use a flavor that has it (cc has libstdc++ and libgcc_s; base has libssl, libz, libzstd) "
            "or add the Debian package that ships it to packages",
        )


def _binary(app: AppSpec) -> AppBuild:
    source = Path(app.source)
    if not source.is_file():
        raise SpecError(f"app.source {source} must be the executable file for kind binary")
    info = elf.inspect_elf(source, "app.source")
    image_path = f"{app.dest}/{source.name}"
    entry = files.one_file(source, image_path, 0o755)

    def check(tree: Tree, arch: str) -> None:
        _check_elf(info, source.name, app.dest, tree, arch)

    kind = "static" if info.static else f"dynamic, needs {', '.join(info.needed)}"
    return AppBuild(
        "binary",
        [AppLayer("binary", f"{source.name} ({kind})", [entry])],
        [image_path],
        app.args,
        app.dest,
        checks=[check],
    )


# python3's options that take a value as the next argument (``-X dev``, ``-W error``).
_PY_OPTION_ARGS = {"-X", "-W", "--check-hash-based-pycs"}


def _python_script(entry: list[str], dest: str) -> list[str]:
    """The entrypoint with a relative script made absolute under ``dest``, so that it
    runs from any ``workdir`` (``-m``/``-c`` and python3's options are left as they are)."""
    out = list(entry)
    i = 0
    while i < len(out):
        arg = out[i]
        if arg in ("-m", "-c", "-") or arg.startswith(("-m", "-c")):
            return out  # a module or code, not a script
        if arg in _PY_OPTION_ARGS:
            i += 2
            continue
        if arg.startswith("-"):
            i += 1
            continue
        if not arg.startswith("/"):
            out[i] = f"{dest.rstrip('/')}/{arg.removeprefix('./')}"
        return out
    return out


def _python(app: AppSpec, t: Target) -> AppBuild:
    source = _project(app)
    version, glibc = python.runtime(t.packages)
    layers = []
    resolved: list[Dependency] = []
    requirements = Path(app.requirements) if app.requirements else source / "requirements.txt"
    site = f"usr/local/lib/python{version}/dist-packages"  # on Debian's sys.path
    if app.requirements or os.path.lexists(requirements):  # a FIFO or dangling link is refused, not skipped
        deps, key = python.install(requirements, version, glibc, t.arch, t.cache, t.offline, t.reporter)
        resolved = [Dependency(*d, ecosystem="pypi") for d in python.installed(deps)]
        entries = files.collect(deps, site, cid=f"python:{key}")
        count = sum(1 for p in deps.iterdir() if p.name.endswith(".dist-info"))
        layers.append(
            AppLayer("dependencies", f"{count} Python distributions from {requirements.name}", entries)
        )
    layers.append(_code(app, source, t))
    entry = app.entrypoint
    if entry is None:
        candidates = [n for n in ("__main__.py", "main.py", "app.py", "server.py") if (source / n).is_file()]
        if not candidates:
            raise SpecError(
                "app.entrypoint is needed: what python3 runs, e.g. ['-m', 'myapp'] or ['app.py']",
                hint="without it distill looks for __main__.py, main.py, app.py or server.py in app.source",
            )
        entry = [f"{app.dest}/{candidates[0]}"] if candidates[0] != "__main__.py" else [app.dest]
    entrypoint = ["/usr/bin/python3", *_python_script(entry, app.dest)]

    def check(tree: Tree, arch: str) -> None:
        _needs(
            tree,
            "usr/bin/python3",
            "app kind python needs /usr/bin/python3 in the image",
            "use from: python3",
        )

    return AppBuild(
        "python",
        layers,
        entrypoint,
        app.args,
        app.dest,
        # The files are read-only and Python runs from source (no bytecode is shipped).
        {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": app.dest},
        [check],
        resolved,
    )


def _node(app: AppSpec, t: Target) -> AppBuild:
    source = _project(app)
    rt = t.node_runtime if t.node_runtime is not None else node.runtime(t.packages)
    layers = []
    deps, key, count = node.install(source, t.arch, t.cache, t.offline, t.reporter, rt.version)
    addons: list[tuple[str, elf.ElfInfo]] = []
    if deps is not None:
        entries = files.collect(deps, f"{app.dest}/node_modules", cid=f"node:{key}")
        for path, n in entries:
            if path.endswith(".node") and n.src is not None and elf.is_elf(Path(n.src[0])):
                addons.append((path, elf.inspect_elf(Path(n.src[0]), "node addon")))
        comment = f"{count} production dependencies from package-lock.json"
        layers.append(AppLayer("node_modules", comment, entries))
    layers.append(_code(app, source, t))
    script = app.entrypoint
    if script is None:
        main = node.package_json(source).get("main")
        main = (main if isinstance(main, str) and main else None) or next(
            (n for n in ("server.js", "index.js", "app.js") if (source / n).is_file()), None
        )
        if main is None:
            raise SpecError(
                "app.entrypoint is needed: the script node runs, e.g. ['server.js']",
                hint="there is no shell for 'npm start'; name the file its start script runs",
            )
        script = [main]
    first = script[0] if script[0].startswith("/") else f"{app.dest}/{script[0].removeprefix('./')}"
    cmd = [first, *script[1:], *(app.args or [])]

    def check(tree: Tree, arch: str) -> None:
        _needs(tree, rt.path.lstrip("/"), f"app kind node needs {rt.path} in the image",
               "use from: nodejs, nodejs22, nodejs24 or nodejs26")  # fmt: skip
        for path, info in addons:
            if info.arch != arch:
                raise SpecError(f"node addon /{path} is built for {info.arch}, but the image is {arch}",
                                hint="install the package's prebuilt binary for the image's architecture")  # fmt: skip
            if info.napi or info.node_abi is None or info.node_abi == rt.abi:
                continue  # Node-API addons fit every version
            if rt.abi is None:
                raise SpecError(
                    f"node addon /{path} is built for Node module ABI {info.node_abi}, and the image's Node module "
                    f"ABI is unknown: {rt.unknown}",
                    hint="use a Node-API build of the package, or a base whose node says its ABI",
                )
            node_is = f"node {rt.version}" if rt.version else f"node ({rt.path})"
            raise SpecError(
                f"node addon /{path} is built for Node module ABI {info.node_abi}, but the image's {node_is} "
                f"has ABI {rt.abi}",
                hint="rebuild it against this node (or use a Node-API build of the package)",
            )

    resolved = (
        [Dependency(*d, ecosystem="npm") for d in node.resolved(source, t.arch, t.cache)] if deps else []
    )
    env = {"NODE_ENV": "production"}
    return AppBuild("node", layers, [rt.path], cmd, app.dest, env, [check], resolved)


def _java(app: AppSpec) -> AppBuild:
    jar = Path(app.source)
    if not jar.is_file():
        raise SpecError(f"app.source {jar} must be the application's jar for kind java")
    main = java.main_class(jar, app.main_class) if app.layout == "exploded" or app.main_class else None
    libs = java.libraries(app.libs)
    layers = []
    if libs:
        entries = [files.one_file(p, f"{app.dest}/libs/{p.name}", 0o644) for p in libs]
        layers.append(AppLayer("libs", f"{len(libs)} dependency jars", entries))
    java_cmd = ["/usr/bin/java", *app.jvm_flags]
    if app.layout == "exploded":
        resources, classes = java.exploded(jar, app.dest)
        if resources:
            layers.append(AppLayer("resources", f"{len(resources)} resources of {jar.name}", resources))
        layers.append(AppLayer("classes", f"{len(classes)} classes of {jar.name}", classes))
        classpath = f"{app.dest}/resources:{app.dest}/classes" + (f":{app.dest}/libs/*" if libs else "")
        assert main is not None
        entrypoint = [*java_cmd, "-cp", classpath, main]
    else:
        java.main_class(jar, app.main_class)  # a runnable jar needs one
        layers.append(AppLayer("jar", jar.name, [files.one_file(jar, f"{app.dest}/{jar.name}", 0o644)]))
        if main:
            classpath = f"{app.dest}/{jar.name}" + (f":{app.dest}/libs/*" if libs else "")
            entrypoint = [*java_cmd, "-cp", classpath, main]
        else:
            entrypoint = [*java_cmd, "-jar", f"{app.dest}/{jar.name}"]

    def check(tree: Tree, arch: str) -> None:
        _needs(tree, "usr/bin/java", "app kind java needs /usr/bin/java in the image", "use from: java")

    return AppBuild("java", layers, entrypoint, app.args, app.dest, checks=[check])


def _excludes(app: AppSpec, spec_file: Path | None) -> list[str]:
    out = [*files.ALWAYS_EXCLUDED, *app.exclude, *files.dockerignore(Path(app.source))]
    if spec_file is not None:
        try:
            rel = spec_file.resolve().relative_to(Path(app.source).resolve())
            out.append(str(rel))
        except ValueError:
            pass
    return out


def prepare(app: AppSpec, target: Target) -> AppBuild:
    """The app's layers and run settings for one architecture (dependencies installed, cached)."""
    if app.kind == "binary":
        return _binary(app)
    if app.kind == "python":
        return _python(app, target)
    if app.kind == "node":
        return _node(app, target)
    return _java(app)
