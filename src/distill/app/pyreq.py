"""Requirements files read before pip sees them: only wheels may be installed.

pip's ``--only-binary=:all:`` covers what it finds on an index or in ``--find-links``,
but not a requirement that *is* a project: a local directory, a source archive, an
editable (``-e``) or a VCS/URL reference. For those pip runs the project's build
backend (``setup.py``, hatchling, …) on the host — code from the dependency, built for
the host's interpreter and architecture rather than the image's. So every line of the
requirements file and of the files it includes (``-r``/``-c``) is read here first, the
way pip splits it (continuations, comments, ``${VAR}``), and anything that is not a
wheel or a name for the index is refused with one line naming its file and line.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

from distill.errors import SpecError
from distill.limits import read_text

MAX_REQUIREMENT_FILES = 100  # -r/-c includes followed from one requirements file

_VCS = ("git+", "hg+", "svn+", "bzr+", "git:", "git@")
# What pip takes for a file when a requirement names one (pip's is_archive_file).
_ARCHIVES = (".zip", ".whl", ".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz", ".tar.xz", ".txz", ".tlz", ".tar.lz", ".tar.lzma")  # fmt: skip
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_ENV = re.compile(r"\$\{([A-Z0-9_]+)\}")  # pip expands these in requirements files
_COMMENT = re.compile(r"(^|\s+)#.*$")
_INCLUDE = {"-r", "--requirement", "-c", "--constraint"}
_REFUSED_OPTIONS = {"-e", "--editable", "--no-binary"}
_BUILD = (
    "distill installs wheels only and never runs a build backend on the host: build a wheel for the "
    "image (pip wheel --no-deps PROJECT -w wheels, on the image's Python and architecture) and require "
    "it by name with '--find-links wheels' in the requirements"
)


def _quoted(text: str) -> str:
    """The requirement as written, when it is short and plainly one (errors never echo
    arbitrary file content, e.g. a hash from a file that is not a requirements file)."""
    if len(text) <= 200 and re.fullmatch(r"[\w.\-+/:@~%=\[\],!<> ]+", text):
        return f"{text!r} "
    return ""


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, line) after joining '\\' continuations and dropping comments."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = number
        if raw.endswith("\\"):
            pending.append(raw[:-1])
            continue
        pending.append(raw)
        line = _COMMENT.sub("", "".join(pending)).strip()
        pending = []
        if line:
            out.append((start, line))
    if pending:
        line = _COMMENT.sub("", "".join(pending)).strip()
        if line:
            out.append((start, line))
    return out


def _expand(line: str) -> str:
    return _ENV.sub(lambda m: os.environ.get(m.group(1), m.group(0)), line)


def _is_wheel(location: str) -> bool:
    path = urlsplit(location).path if _URL.match(location) else location
    return path.lower().endswith(".whl")


def check_requirement(requirement: str, where: str) -> None:
    """Refuse a requirement pip would build: a directory, an sdist, a VCS or non-wheel URL."""
    text = requirement.strip()
    location: str | None = None
    if _URL.match(text) and not re.match(r"^[A-Za-z]:[\\/]", text):
        location = text.split("; ", 1)[0].strip()  # pip: a URL's marker follows '; '
        spec = location
    else:
        name, at, ref = text.partition("@")
        if at and not re.search(r"[/\\]", name):
            location = (ref.split() or [""])[0]  # PEP 508 direct reference: name @ URL [; marker]
        spec = text.split(";", 1)[0].strip()
    if location is not None:
        if location.lower().startswith(_VCS) or re.match(r"^(git|hg|svn|bzr)\+", location, re.I):
            raise SpecError(
                f"{where}: requirement {_quoted(text)}is a VCS URL, which pip would build", hint=_BUILD
            )
        if not _is_wheel(location.split("#", 1)[0]):
            raise SpecError(
                f"{where}: requirement {_quoted(text)}is a URL of a source archive or project, "
                "which pip would build",
                hint=_BUILD,
            )
        return
    bare = re.sub(r"\[[^\]]*\]$", "", spec.strip())  # ./dir[extra]
    looks_like_path = bool(re.search(r"[/\\]", bare)) or bare.startswith((".", "~"))
    if looks_like_path or bare.lower().endswith(_ARCHIVES):
        if bare.lower().endswith(".whl"):
            return
        raise SpecError(
            f"{where}: requirement {_quoted(text)}is a local project or source archive, which pip would build",
            hint=_BUILD,
        )


def _options(tokens: list[str]) -> list[tuple[str, str | None]]:
    """(option, value) pairs of an option line: '-r f', '-rf', '--requirement=f', '--pre'."""
    out: list[tuple[str, str | None]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--"):
            name, eq, value = token.partition("=")
            if eq:
                out.append((name, value))
            elif name in _INCLUDE | _REFUSED_OPTIONS or name in ("--find-links", "--index-url", "--extra-index-url", "--trusted-host", "--only-binary", "--hash", "--config-settings", "--global-option", "--install-option"):  # fmt: skip
                out.append((name, tokens[i + 1] if i + 1 < len(tokens) else None))
                i += 1
            else:
                out.append((name, None))
        elif token.startswith("-") and len(token) > 1:
            name = token[:2]
            if len(token) > 2:
                out.append((name, token[2:].lstrip("=")))
            elif name in ("-r", "-c", "-e", "-f", "-i"):
                out.append((name, tokens[i + 1] if i + 1 < len(tokens) else None))
                i += 1
            else:
                out.append((name, None))
        i += 1
    return out


def _stamp(location: Path) -> list[tuple[Path, bytes]]:
    """A local wheel, or the wheels of a --find-links directory, as (path, name/size/mtime)
    for the cache key: a wheel rebuilt under the same name makes a new key."""
    try:
        wheels = sorted(location.glob("*.whl")) if location.is_dir() else [location]
        return [
            (w, f"{w.name}\0{st.st_size}\0{st.st_mtime_ns}".encode())
            for w in wheels
            if (st := w.stat()) and w.is_file()
        ]
    except OSError:
        return []  # not there: pip says so


def _local(value: str, current: Path, top: Path) -> Path | None:
    """Where a path-like requirement or --find-links value points (None for URLs)."""
    if value.startswith("file:"):
        value = re.sub(r"^file:(//)?", "", value)
    elif _URL.match(value) and not re.match(r"^[A-Za-z]:[\\/]", value):
        return None
    path = Path(os.path.expanduser(value))
    if path.is_absolute():
        return path
    # pip: --find-links relative to the file naming it when that exists, else the cwd.
    beside = current.parent / path
    return beside if beside.exists() else top / path


def scan(path: Path) -> list[tuple[Path, bytes]]:
    """``path``, the files it includes (bounded) and the local wheels it names, as
    (path, content or stamp) for the cache key; refuses what pip would build."""
    seen: set[Path] = set()
    files: list[tuple[Path, bytes]] = []
    stamps: list[tuple[Path, bytes]] = []
    top = path.parent
    todo = [path]
    while todo:
        current = todo.pop(0)
        real = current.resolve()
        if real in seen:
            continue
        if len(seen) >= MAX_REQUIREMENT_FILES:
            raise SpecError(f"{path}: includes more than {MAX_REQUIREMENT_FILES} requirements files (-r/-c)")
        seen.add(real)
        text = read_text(current, error=SpecError, what="requirements file")
        files.append((real, text.encode()))
        for number, line in _logical_lines(text):
            where = f"{current}:{number}"
            if "\0" in line:  # would end a path early for the OS (and no requirement has one)
                raise SpecError(f"{where}: a NUL character in a requirements file")
            line = _expand(line)
            try:
                tokens = shlex.split(line, posix=True)
            except ValueError:
                tokens = line.split()
            if not tokens:
                continue
            if tokens[0].startswith("-"):
                for name, value in _options(tokens):
                    if name in ("-e", "--editable"):
                        raise SpecError(
                            f"{where}: an editable requirement (-e) is a project pip would build", hint=_BUILD
                        )
                    if name == "--no-binary":
                        raise SpecError(f"{where}: --no-binary asks pip to build from source", hint=_BUILD)
                    if name in _INCLUDE:
                        if not value:
                            raise SpecError(f"{where}: {name} names no file")
                        if _URL.match(value) and not re.match(r"^[A-Za-z]:[\\/]", value):
                            raise SpecError(
                                f"{where}: a requirements file from a URL ({name}) cannot be checked before "
                                "pip runs",
                                hint="download it into the project and include it by path",
                            )
                        todo.append(current.parent / value)
                    if name in ("-f", "--find-links") and value:
                        where_to = _local(value, current, top)
                        stamps += _stamp(where_to) if where_to is not None else []
                continue
            # A requirement, perhaps followed by per-requirement options (--hash=…).
            words: list[str] = []
            for token in tokens:
                if token.startswith("-"):
                    break
                words.append(token)
            requirement = " ".join(words)
            check_requirement(requirement, where)
            if requirement.lower().split(";")[0].strip().endswith(".whl"):
                name, at, ref = requirement.partition("@")
                wheel = _local((ref.split() or [""])[0] if at and "/" not in name else words[0], current, top)
                stamps += _stamp(wheel) if wheel is not None else []
    return files + stamps
