"""Which distill flavor an application needs, from what its entrypoint runs: a
python/node/java command by name, else the executable's ELF interpreter and
libraries; and the distill spec that builds it (``--write-spec``)."""

from __future__ import annotations

import io
import os
import posixpath
import re
import shlex
from pathlib import Path
from typing import Any

import yaml
from elftools.common.exceptions import ELFError

from distill.app.elf import ElfInfo, flavor_for, read_elf
from distill.archive.cache import atomic_write
from distill.errors import AuditError

_PYTHON = re.compile(r"^python(\d(\.\d+)?)?$")
_PY_SCRIPTS = {"gunicorn", "uvicorn", "hypercorn", "flask", "celery", "waitress-serve", "daphne", "streamlit"}
_NODE_RUNNERS = {"npm", "yarn", "pnpm", "npx"}
_SHELLS = {"sh", "bash", "dash", "ash", "zsh", "busybox"}
# The Python each distill distro's python3 flavor runs (its wheels' ABI follows it).
_PYTHON_DISTRO = {"3.13": "debian13", "3.11": "debian12"}
_REQUIREMENTS_NOTE = "the app's requirements.txt brings its dependencies (wheels for the image's CPython)"
# Installers, not the app's dependencies: a distroless image carries no package manager.
_INSTALLERS = {"pip"}
# Environment the flavors set themselves, or that only made sense on the old base.
_BASE_ENV = re.compile(
    r"^(PATH|HOME|HOSTNAME|LANG|LC_ALL|SSL_CERT_FILE|JAVA_HOME|JAVA_VERSION|NODE_VERSION|"
    r"YARN_VERSION|PYTHON_VERSION|PYTHON_SHA256|PYTHON_GET_PIP\w*|PIP_\w+|GPG_KEY|DEBIAN_FRONTEND|"
    r"GOLANG_VERSION|GOPATH|GOTOOLCHAIN|RUSTUP_HOME|CARGO_HOME|RUST_VERSION)$"
)


# The majors of the default flavors on the default distro (Debian 13): java is OpenJDK 21,
# nodejs is Debian's Node.js 20.
_DEFAULT_MAJOR = {"java": "21", "nodejs": "20"}


def _major_flavor(runtime: str, version: str | None) -> str:
    """``java21`` for JAVA_VERSION=21.0.8 (``nodejs22`` for NODE_VERSION=22.1.0) when distill
    has that built-in, else the runtime's default flavor."""
    from distill.builtins import builtin_names

    found = re.match(r"(?:jdk-)?v?(\d+)[.+u]", version or "")
    if not found or found.group(1) == _DEFAULT_MAJOR[runtime]:
        return runtime
    name = f"{runtime}{found.group(1)}"
    return name if name in builtin_names() else runtime


def unwrap(argv: list[str]) -> tuple[list[str], list[str]]:
    """The program a command really runs (shell -c and runners peeled off), and notes."""
    notes = []
    if argv and posixpath.basename(argv[0]) in _SHELLS and len(argv) >= 3 and argv[1] in ("-c", "-ec", "-xc"):
        notes.append("the command goes through a shell: distroless has none, so write it in exec form")
        try:
            words = shlex.split(argv[2])
        except ValueError:
            words = argv[2].split()
        while words and ("=" in words[0] and not words[0].startswith("-")):
            words = words[1:]  # VAR=value prefixes
        if words and words[0] == "exec":
            words = words[1:]
        argv = words + argv[3:]
    return argv, notes


def recommend(
    argv: list[str],
    elf: bytes | None,
    exe_path: str | None,
    user_is_root: bool,
    env: dict[str, str] | None = None,
    workdir: str | None = None,
) -> dict[str, Any]:
    """The flavor and variant for an entrypoint; ``kind``/``app`` describe the distill app spec."""
    argv, notes = unwrap(argv)
    out: dict[str, Any] = {"flavor": None, "variant": "nonroot", "reason": "", "notes": notes}
    if user_is_root:
        notes.append(
            "the image runs as root today: the nonroot variant (uid 65532) needs files it writes to be "
            "in a writable volume or owned by 65532"
        )
    if not argv:
        out["reason"] = "the image has no entrypoint or command"
        return out
    exe = posixpath.basename(argv[0])
    app: dict[str, Any] = {}
    if exe in _SHELLS:
        out["reason"] = f"the entrypoint is an interactive shell ({argv[0]}): no application to migrate"
        return out
    if _PYTHON.match(exe) or exe in _PY_SCRIPTS:
        out.update(flavor="python3", reason=f"the entrypoint runs {exe}")
        rest = argv[1:] if _PYTHON.match(exe) else ["-m", exe.replace("-serve", ""), *argv[1:]]
        app = {"kind": "python", "source": ".", "entrypoint": rest or None}
        notes.append(_REQUIREMENTS_NOTE)
    elif exe in ("node", "nodejs"):
        flavor = _major_flavor("nodejs", (env or {}).get("NODE_VERSION"))
        out.update(flavor=flavor, reason=f"the entrypoint runs {exe}")
        app = {"kind": "node", "source": ".", "entrypoint": argv[1:2] or None}
        if flavor == "nodejs" and (argv[0].startswith("/nodejs/") or (exe_path or "").startswith("/nodejs/")):
            notes.append(
                "the entrypoint is /nodejs/bin/node, an upstream Node.js build (Google's layout): distill's "
                "nodejs is Debian's Node.js; nodejs22, nodejs24 and nodejs26 take the official release archives "
                "(docs/migrating-from-distroless.md)"
            )
    elif exe in _NODE_RUNNERS:
        out.update(flavor="nodejs", reason=f"the entrypoint runs {exe} (a package manager)")
        notes.append(
            f"`{' '.join(argv)}` needs {exe}, which distroless nodejs lacks: run the script with node "
            'directly (CMD ["server.js"]); signals then reach the app'
        )
        app = {"kind": "node", "source": "."}
    elif exe == "java":
        out.update(
            flavor=_major_flavor("java", (env or {}).get("JAVA_VERSION")), reason="the entrypoint runs java"
        )
        jar = argv[argv.index("-jar") + 1] if "-jar" in argv[:-1] else None
        flags = [a for a in argv[1:] if a.startswith("-X") or a.startswith("-D")]
        if jar:
            app = {"kind": "java", "source": posixpath.basename(jar), "layout": "jar"}
        else:
            main = next((a for a in argv[1:] if not a.startswith("-") and "." in a and "/" not in a), None)
            app = {"kind": "java", "source": "app.jar", "layout": "exploded", "main_class": main}
            notes.append("the classpath becomes the jar's layers: point source at the application jar")
        if flags:
            app["jvm_flags"] = flags
    elif elf is not None:
        try:
            info = read_elf(io.BytesIO(elf), exe_path or exe)
        except (ELFError, ValueError, OSError) as exc:
            out["reason"] = f"{exe_path} is not a readable ELF file ({exc})"
            return out
        out.update(_binary(info, exe_path or exe))
        app = {"kind": "binary", "source": posixpath.basename(exe_path or exe)}
        if len(argv) > 1:
            out["args"] = argv[1:]
    else:
        out["reason"] = (
            f"{argv[0]} is not an executable the audit could read"
            if exe_path is None
            else f"{exe_path} is not an ELF executable (a script?)"
        )
        return out
    out["app"] = {k: v for k, v in app.items() if v is not None}
    if env:
        kept = {k: v for k, v in env.items() if not _BASE_ENV.match(k)}
        if kept:
            out["env"] = kept
    if workdir and workdir not in ("/", "/app"):
        out["workdir"] = workdir
    return out


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def carried_dependencies(
    rec: dict[str, Any], dists: list[tuple[str, str, str]], node_locks: dict[str, bytes]
) -> dict[str, bytes]:
    """What the image had installed for the app, as the files the migrated spec needs
    beside it: ``requirements.txt`` pinning every distribution pip installed (from the
    image's ``*.dist-info``), or the app's ``package-lock.json``. Records them in ``rec``
    (``requirements``, ``python_version``, ``distro``, ``node_lock``)."""
    kind = (rec.get("app") or {}).get("kind")
    if kind == "node":
        for path, data in node_locks.items():
            rec["node_lock"] = "/" + path
            return {"package-lock.json": data}
        return {}
    if kind != "python" or not dists:
        return {}
    by_site: dict[str, dict[str, str]] = {}
    for site, name, version in dists:
        if _canonical(name) not in _INSTALLERS:
            by_site.setdefault(site, {})[_canonical(name)] = f"{name}=={version}"
    if not by_site:
        return {}
    # The site directory with the most distributions is the app's (a venv or the
    # interpreter's); one name in several places keeps that one's version.
    ordered = sorted(by_site, key=lambda s: -len(by_site[s]))
    pins: dict[str, str] = {}
    for site in reversed(ordered):
        pins.update(by_site[site])
    rec["requirements"] = sorted(pins.values(), key=str.lower)
    notes = [n for n in rec.get("notes", []) if n != _REQUIREMENTS_NOTE]
    shown = ", ".join(rec["requirements"][:5]) + (", …" if len(pins) > 5 else "")
    notes.append(
        f"pip installed {len(pins)} distribution{'s' if len(pins) > 1 else ''} in /{ordered[0]} ({shown}): "
        "--write-spec pins them in requirements.txt beside the spec"
    )
    rec["notes"] = notes
    m = re.search(r"python(3\.\d+)", ordered[0])
    if m:
        rec["python_version"] = m.group(1)
        distro = _PYTHON_DISTRO.get(m.group(1))
        if distro:
            rec["distro"] = distro
        else:
            rec.setdefault("notes", []).append(
                f"the image ran Python {m.group(1)}; distill's python3 is 3.13 (debian13) or 3.11 "
                "(debian12): a pinned version may have no wheel for it"
            )
    head = (
        f"# What {'/' + ordered[0]} had installed, pinned (written by `distill audit`).\n"
        "# distill installs wheels only, for the image's CPython: a pin without one is one error line.\n"
    )
    return {"requirements.txt": (head + "\n".join(rec["requirements"]) + "\n").encode()}


def _binary(info: ElfInfo, path: str) -> dict[str, Any]:
    if info.static:
        return {"flavor": "static", "reason": f"{path} is statically linked", "elf": _elf(info)}
    if info.interpreter and "musl" in info.interpreter:
        return {
            "flavor": "static" if not info.needed else "base",
            "reason": f"{path} is linked against musl ({info.interpreter})",
            "elf": _elf(info),
            "notes": [
                "distill's flavors carry glibc: rebuild the binary statically (CGO_ENABLED=0, "
                "--target x86_64-unknown-linux-musl with static linking) or against glibc"
            ],
        }
    flavor = flavor_for(info)
    return {
        "flavor": flavor,
        "reason": f"{path} links {', '.join(info.needed) or 'nothing'}",
        "elf": _elf(info),
    }


def _elf(info: ElfInfo) -> dict[str, Any]:
    return {"arch": info.arch, "interpreter": info.interpreter, "needed": info.needed}


def spec_for(
    rec: dict[str, Any],
    name: str,
    origin: str,
    ports: list[str],
    arch: str | None,
    distro: str | None = None,
    files: dict[str, bytes] | None = None,
) -> str:
    """The distill spec (YAML text) that builds the recommended image; ``files`` are
    written beside it (``requirements.txt``, ``package-lock.json``)."""
    if not rec.get("flavor") or not rec.get("app"):
        raise AuditError(f"{origin}: no spec to write ({rec.get('reason') or 'no flavor fits'})")
    app = dict(rec["app"])
    spec: dict[str, Any] = {"name": name, "from": rec["flavor"], "app": app}
    if files and "requirements.txt" in files:
        app["requirements"] = "requirements.txt"
    distro = distro or rec.get("distro")
    if distro:
        spec["distro"] = distro
    if rec.get("args") and app["kind"] == "binary":
        app["args"] = rec["args"]
    if arch:
        spec["archs"] = [arch]
    if ports:
        spec["exposed_ports"] = [
            int(p.split("/")[0]) if p.endswith("/tcp") or "/" not in p else p for p in ports
        ]
    if rec.get("env"):
        spec["env"] = rec["env"]
    if rec.get("workdir"):
        spec["workdir"] = rec["workdir"]
    from distill.spec.model import Spec

    try:
        Spec.model_validate(spec)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise AuditError(
            f"{origin}: the migrated spec would not be valid ({str(exc).splitlines()[0]})"
        ) from None
    where = {
        "python": "the project directory (with requirements.txt)",
        "node": "the project directory (with package-lock.json)",
        "java": "the application jar",
        "binary": "the executable",
    }[app["kind"]]
    head = [
        f"# Migrated by `distill audit` from {origin}.",
        f"# Flavor: {rec['flavor']} ({rec['reason']}); the app runs as uid 65532 (nonroot).",
        f"# app.source is {where}, relative to this file: put it there, then",
        "#   distill build THIS-FILE --load",
    ]
    for written in sorted(files or {}):
        what = (
            "what the image had installed, pinned"
            if written == "requirements.txt"
            else "the image's lockfile"
        )
        head.append(f"# Written beside it: {written} ({what}).")
    head += [f"# Note: {n}" for n in rec.get("notes", [])]
    return "\n".join(head) + "\n" + yaml.safe_dump(spec, sort_keys=False, default_flow_style=False)


def write_spec(path: Path, text: str, files: dict[str, bytes] | None = None) -> list[Path]:
    """Write the spec and the files beside it (atomically each); the paths written.
    A file of the same name that is already there with other content is left alone:
    one error line, before anything is written."""
    beside = [(path.parent / n, data) for n, data in sorted((files or {}).items())]
    for p, data in beside:
        try:
            same = p.read_bytes() == data if os.path.lexists(p) else True
        except OSError:
            same = False
        if not same:
            raise AuditError(
                f"{p} already exists: the migration's {p.name} is not written over it",
                hint="write the spec into another directory (--write-spec DIR/app.yaml)",
            )
    try:
        for p, data in beside:
            atomic_write(p, data)
        atomic_write(path, text.encode())
    except OSError as exc:
        raise AuditError(f"cannot write {path}: {exc.strerror or exc}") from None
    return [*(p for p, _ in beside), path]


def dockerfile_name(name: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", name.lower().rsplit("/", 1)[-1].split(":")[0].split("@")[0]).strip("-")
    return base or "app"
