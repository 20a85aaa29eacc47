"""Dockerfile checks, on the instructions BuildKit's own parser reads (the
``dockerfile`` package wraps it), so line continuations, heredocs, parser
directives and JSON/shell forms are understood exactly as ``docker build`` does."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dockerfile

from distill.audit.model import Finding, Report
from distill.audit.recommend import recommend
from distill.errors import AuditError
from distill.limits import read_text
from distill.redact import key_label

MAX_FILE = 4 << 20
_VAR = re.compile(r"\$\{?(\w+)(?::?-([^}]*))?\}?")
_INSTALL = re.compile(
    r"\b(apt-get|apt|apk|yum|dnf|microdnf)\b[^&;|]*\b(install|add)\b[^&;|]*"
    r"\b(build-essential|build-base|gcc|g\+\+|make|clang|cmake|golang|rustc|cargo|maven|gradle|default-jdk\S*|openjdk-\d+-jdk\S*|\w+-dev)\b"
)
_BUILD_CMD = re.compile(
    r"\b(go build|cargo build|mvn\b|gradle\b|\./gradlew|\./mvnw|npm (ci|install)|yarn install|pip install|make\b|gcc\b|javac\b|dotnet (publish|build))"
)
_SDK_BASE = re.compile(
    r"(^|/)(golang|rust|maven|gradle|openjdk|eclipse-temurin|amazoncorretto|node|python|gcc|buildpack-deps|ruby|dotnet/sdk)(:|$)"
)
_SLIM = re.compile(r"(slim|alpine|jre|distroless)")


@dataclass
class Stage:
    image: str
    alias: str | None
    line: int
    commands: list[Any] = field(default_factory=list)


def is_distroless(image: str) -> bool:
    repo = image.split("@")[0]
    return "distroless" in repo or repo == "scratch" or "/distill" in repo or repo.startswith("distill")


def split_image_ref(image: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of an image reference."""
    ref, _, digest = image.partition("@")
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repo, _, tag = ref.rpartition(":")
        return repo, tag, digest or None
    return ref, None, digest or None


def _expand(text: str, args: dict[str, str]) -> str:
    return _VAR.sub(lambda m: args.get(m.group(1)) or m.group(2) or m.group(0), text)


def read_bounded(path: Path, limit: int) -> str:
    """A UTF-8 text file of at most ``limit`` bytes (else one-line errors); a FIFO or
    device is refused without blocking (see distill.limits.read_regular)."""
    return read_text(path, limit, error=AuditError)


def parse(path: Path, text: str | None = None) -> list[Any]:
    if text is None:
        text = read_bounded(path, MAX_FILE)
    if "\x00" in text:
        raise AuditError(f"{path}: binary content (NUL bytes); not a Dockerfile")
    try:
        cmds = list(dockerfile.parse_string(text))
    except dockerfile.GoParseError as exc:
        raise AuditError(f"{path}: unparsable Dockerfile ({' '.join(str(exc).split())})") from None
    for c in cmds:  # the parser gives no instruction for a line it cannot name (control characters)
        if not isinstance(c.cmd, str) or not c.cmd:
            raise AuditError(f"{path}:{c.start_line}: unparsable Dockerfile (no instruction)")
    if not any(c.cmd.upper() == "FROM" for c in cmds):
        raise AuditError(f"{path}: unparsable Dockerfile (no FROM instruction)")
    known = {
        "FROM",
        "RUN",
        "CMD",
        "LABEL",
        "MAINTAINER",
        "EXPOSE",
        "ENV",
        "ADD",
        "COPY",
        "ENTRYPOINT",
        "VOLUME",
        "USER",
        "WORKDIR",
        "ARG",
        "ONBUILD",
        "STOPSIGNAL",
        "HEALTHCHECK",
        "SHELL",
    }
    for c in cmds:
        if c.cmd.upper() not in known:
            # The word is quoted only when it is a plain identifier (distill.redact): a file
            # that is not a Dockerfile (a secret's) must not be echoed into the error.
            raise AuditError(
                f"{path}:{c.start_line}: unparsable Dockerfile (unknown instruction {key_label(c.cmd)})"
            )
        if not c.value and not c.heredocs and c.cmd.upper() not in ("CMD", "ENTRYPOINT", "MAINTAINER"):
            raise AuditError(
                f"{path}:{c.start_line}: unparsable Dockerfile ({c.cmd.upper()} requires arguments)"
            )
    return cmds


def stages(cmds: list[Any]) -> list[Stage]:
    args: dict[str, str] = {}
    out: list[Stage] = []
    for c in cmds:
        cmd = c.cmd.upper()
        if cmd == "ARG" and not out:
            for v in c.value:
                k, _, d = v.partition("=")
                args[k] = d.strip('"')
        elif cmd == "FROM":
            value = list(c.value)
            alias = value[2] if len(value) >= 3 and value[1].upper() == "AS" else None
            out.append(Stage(_expand(value[0], args), alias, c.start_line))
        elif out:
            out[-1].commands.append(c)
    return out


def _argv(c: Any) -> tuple[list[str], bool]:
    """A CMD/ENTRYPOINT/RUN's argv and whether it was written in JSON (exec) form."""
    if c.json:
        return list(c.value), True
    return ["/bin/sh", "-c", " ".join(c.value)], False


def audit_dockerfile(path: Path, name: str | None = None) -> Report:
    where = name or str(path)
    cmds = parse(path)
    st = stages(cmds)
    report = Report(where, "dockerfile")
    f = report.findings
    aliases = {s.alias.lower() for s in st if s.alias}
    final = st[-1]

    def add(fid: str, sev: str, title: str, line: int, why: str, fix: str) -> None:
        f.append(Finding(fid, sev, title, f"{where}:{line}", why, fix, line=line))

    for s in st:
        if s.image.lower() in aliases or s.image == "scratch":
            continue
        _, tag, digest = split_image_ref(s.image)
        if "$" in s.image:
            continue
        if tag in (None, "latest") and not digest:
            add(
                "DF-FROM-LATEST",
                "medium",
                f"FROM {s.image} floats on latest",
                s.line,
                "Without a tag (or with :latest) the base changes under you between builds.",
                "Pin a version tag, and better a digest: FROM image:tag@sha256:…",
            )
        elif not digest:
            add(
                "DF-FROM-UNPINNED",
                "low",
                f"FROM {s.image} is not pinned by digest",
                s.line,
                "A tag can be moved; builds are not reproducible and a compromised tag goes unnoticed.",
                "Pin by digest (FROM image:tag@sha256:…) and update it deliberately (e.g. with Renovate).",
            )
    distroless = is_distroless(final.image)
    final_tag = split_image_ref(final.image)[1] or ""
    if distroless and "debug" in final_tag:
        add(
            "DF-DEBUG-BASE",
            "high",
            f"final stage on a debug image ({final.image})",
            final.line,
            "Debug variants add a busybox shell: the attack surface distroless removes.",
            "Use the non-debug (ideally :nonroot) tag in production; debug with `kubectl debug`.",
        )
    entry: list[str] = []
    cmd: list[str] = []
    user: tuple[str, int] | None = None
    for c in final.commands:
        kind = c.cmd.upper()
        if kind == "RUN" and distroless and not c.json:
            add(
                "DF-RUN-NO-SHELL",
                "high",
                "shell-form RUN in a distroless stage",
                c.start_line,
                "RUN in shell form runs /bin/sh -c, which a distroless image does not have: the build fails.",
                "Do the work in a builder stage and COPY --from it; or use the exec form with a binary the image has.",
            )
        if kind in ("CMD", "ENTRYPOINT"):
            argv, exec_form = _argv(c)
            if kind == "ENTRYPOINT":
                entry, cmd = argv, []
            else:
                cmd = argv
            if not exec_form:
                if distroless:
                    add(
                        "DF-SHELL-FORM",
                        "high",
                        f"shell-form {kind} in a distroless image",
                        c.start_line,
                        f"{kind} {' '.join(c.value)} runs through /bin/sh -c; distroless has no shell, so the "
                        "container fails to start.",
                        f"Write it in exec form: {kind} {_json_form(c.value)}",
                    )
                else:
                    add(
                        "DF-SHELL-FORM",
                        "low",
                        f"shell-form {kind}",
                        c.start_line,
                        "The shell becomes PID 1 and does not forward SIGTERM: the app is killed after the grace "
                        "period instead of shutting down; and the image cannot move to distroless as is.",
                        f"Write it in exec form: {kind} {_json_form(c.value)}",
                    )
            words = (
                argv if exec_form else shlex.split(" ".join(c.value), posix=True) if _safe(c.value) else argv
            )
            if any(w in ("npm", "yarn", "pnpm") for w in words[:3]) and any(
                w in ("start", "run") for w in words[:4]
            ):
                add(
                    "DF-NPM-START",
                    "medium",
                    f"{kind} starts the app through a package manager",
                    c.start_line,
                    "`npm start` keeps npm as PID 1 (signals are not forwarded) and needs npm, which distroless "
                    "nodejs images do not have.",
                    'Run the script with node directly: CMD ["server.js"] on a nodejs image.',
                )
        if kind == "HEALTHCHECK" and c.value and str(c.value[0]).upper() == "CMD":
            body = list(c.value[1:])
            text = " ".join(body)
            uses_tool = re.search(r"\b(curl|wget|nc)\b", text)
            if distroless and (not c.json or uses_tool):
                add(
                    "DF-HEALTHCHECK-SHELL",
                    "high",
                    "HEALTHCHECK needs a shell or curl",
                    c.start_line,
                    "A distroless image has neither /bin/sh nor curl/wget: this health check always fails.",
                    "Use an exec-form check with the app's own runtime or binary (e.g. HEALTHCHECK CMD "
                    '["/app/server", "-healthcheck"]), or orchestrator httpGet/tcpSocket probes.',
                )
            elif uses_tool:
                add(
                    "DF-HEALTHCHECK-CURL",
                    "medium",
                    f"HEALTHCHECK relies on {uses_tool.group(1)}",
                    c.start_line,
                    f"{uses_tool.group(1)} must stay in the image just for the health check, and it is an "
                    "attacker's download tool.",
                    "Check health from outside (Kubernetes httpGet/tcpSocket/grpc probes) or with the app's binary.",
                )
        if kind == "USER" and c.value:
            user = (str(c.value[0]), c.start_line)
    base_nonroot = "nonroot" in final_tag
    if user is None:
        if not base_nonroot and final.image != "scratch":
            add(
                "DF-USER-MISSING",
                "high",
                "the final stage sets no USER",
                final.line,
                "Without USER the container runs as root (unless the base sets a user).",
                "Add USER 65532:65532 (or use a :nonroot distroless base).",
            )
    else:
        name, line = user
        uname = name.split(":")[0]
        if uname in ("root", "0"):
            add(
                "DF-USER-ROOT",
                "high",
                f"USER {name} runs as root",
                line,
                "The application runs as uid 0 in the container.",
                "Use a numeric non-root user: USER 65532:65532.",
            )
        elif not uname.isdigit() and "$" not in uname:
            add(
                "DF-USER-NAME",
                "medium",
                f"USER {name} is not numeric",
                line,
                "Kubernetes runAsNonRoot cannot verify a user name and refuses to start the pod.",
                "Use the numeric uid, e.g. USER 65532:65532.",
            )
    if len(st) == 1:
        text = "\n".join(" ".join(map(str, c.value)) for c in final.commands if c.cmd.upper() == "RUN")
        sdk = _SDK_BASE.search(final.image.split("@")[0]) and not _SLIM.search(final.image)
        m = _INSTALL.search(text) or _BUILD_CMD.search(text)
        if m or sdk:
            what = m.group(0).strip()[:60] if m else final.image
            add(
                "DF-SINGLE-STAGE",
                "medium",
                "build tools ship in a single-stage image",
                final.line,
                f"The image is built and run in one stage ({what}): compilers, package managers and sources "
                "stay in the runtime image.",
                "Build in a first stage and COPY only the result into a distroless final stage (see the suggested "
                "rewrite), or let `distill build` package the app.",
            )
    argv = entry + cmd
    rec = recommend(argv, None, None, user is None or (user[0].split(":")[0] in ("root", "0")))
    if not rec.get("flavor") and argv:
        rec["flavor"] = "static" if re.search(r"golang|rust", " ".join(s.image for s in st)) else "base"
        rec["reason"] = f"{argv[0]} is a compiled program (base for glibc, static if it is statically linked)"
        rec["app"] = {"kind": "binary", "source": argv[0].rsplit("/", 1)[-1]}
    if rec.get("flavor"):
        rec["rewrite"] = _rewrite(st, rec, argv)
    ports = [str(v) for c in cmds if c.cmd.upper() == "EXPOSE" for v in c.value]
    rec["ports"] = ports
    report.recommendation = rec
    return report


def _safe(value: Any) -> bool:
    try:
        shlex.split(" ".join(value))
        return True
    except ValueError:
        return False


def _json_form(value: Any) -> str:
    import json

    text = " ".join(value)
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    return json.dumps(words)


# pip installing into the builder's interpreter: in the rewrite it installs wheels for the
# flavor's Python into /app/site-packages, which the final stage copies with the app.
_PIP_INSTALL = re.compile(
    r"\b(?P<pip>pip3?(?:\.\d+)?|python3?(?:\.\d+)?\s+-m\s+pip)\s+install\b(?P<rest>[^&;|]*)"
)
_FLAVOR_PYTHON = "3.13"  # Debian 13's, the python3 flavor's default distro


def _pip_target(m: re.Match[str]) -> str:
    rest = m.group("rest")
    words = rest.split()
    if "--target" in rest or "-t" in words or "--user" in words or "--prefix" in rest:
        return m.group(0)  # already installs somewhere of its own
    names = [w for w in words if not w.startswith("-")]
    if names and all(re.fullmatch(r"(pip|setuptools|wheel)([<>=!~].*)?", n) for n in names):
        return m.group(0)  # upgrading the installer itself
    return (
        f"{m.group('pip')} install --target /app/site-packages --python-version {_FLAVOR_PYTHON} "
        f"--only-binary=:all:{rest}"
    )


def _rewrite(st: list[Stage], rec: dict[str, Any], argv: list[str]) -> str:
    """A multi-stage Dockerfile whose final stage is the recommended distill flavor."""
    flavor = rec["flavor"]
    final = st[-1]
    builder = st[0] if len(st) > 1 else final
    lines = [f"FROM {builder.image} AS build"]
    deps = False  # pip installed the app's dependencies: they go to /app/site-packages
    for c in builder.commands:
        if c.cmd.upper() in ("WORKDIR", "COPY", "ADD", "RUN", "ARG", "ENV"):
            line = c.original
            if flavor == "python3" and c.cmd.upper() == "RUN":
                line, n = _PIP_INSTALL.subn(_pip_target, line)
                deps = deps or n > 0
            lines.append(line)
    exe, _ = argv[:1], argv[1:]
    lines.append(
        f"FROM <distill {flavor} image>:nonroot   # distill build images/{flavor}.yaml --variant nonroot"
    )
    app = rec.get("app", {})
    if app.get("kind") == "binary" and exe:
        lines.append(f"COPY --from=build {exe[0]} /app/{app['source']}")
        entry = [f"/app/{app['source']}", *argv[1:]]
    else:
        lines.append("COPY --from=build /app /app")
        from distill.audit.recommend import unwrap

        inner, _ = unwrap(argv)
        if flavor == "nodejs" and inner and inner[0] in ("npm", "yarn", "pnpm"):
            inner = ["node", "server.js"]
        entry = inner
        if flavor == "python3" and app.get("entrypoint"):
            # the flavor has python3 and no console scripts: gunicorn is python3 -m gunicorn
            entry = ["/usr/bin/python3", *app["entrypoint"]]
        if deps:
            lines.append("ENV PYTHONPATH=/app/site-packages")
    lines.append("WORKDIR /app")
    lines.append("USER 65532:65532")
    if entry:
        import json

        lines.append(f"ENTRYPOINT {json.dumps(entry)}")
    return "\n".join(lines)
