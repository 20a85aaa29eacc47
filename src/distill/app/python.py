"""Python applications: wheels for the image's CPython, ABI, glibc and architecture.

pip runs on the host — distill's own pip (``sys.executable -m pip``, at least
:data:`MIN_PIP`, declared in pyproject.toml) — but is told the *image's* interpreter
(``--python-version``, ``--implementation cp``, ``--abi``) and platform (every
``manylinux`` tag the image's glibc satisfies), with ``--only-binary=:all:``.

The rule: **only wheels are installed** — from an index, from ``--find-links``
directories, or local ``.whl`` files/URLs. Anything that would need a build backend
(a local project directory, a source archive, ``-e``, a VCS or non-wheel URL,
``--no-binary``) is refused by :mod:`distill.app.pyreq` before pip runs, with one line
naming the file, the line and how to build a wheel: so no code from the dependencies
runs on the host, and nothing is built for the host's interpreter by mistake.

No bytecode is written (``--no-compile``): the files are read-only in the image and
Python runs from source. pip's own cache is ``<cache-dir>/pip``, never the user's.
The result is cached by the requirements' content and the target (with a manifest,
verified on every use), so rebuilding after a code change does not run pip at all.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from distill.app import cachecheck, pyreq
from distill.errors import BuildError, SpecError
from distill.progress import Reporter
from distill.redact import pip_failure

PIP_MACHINES = {"amd64": "x86_64", "arm64": "aarch64", "ppc64el": "ppc64le", "s390x": "s390x", "armhf": "armv7l", "i386": "i686", "riscv64": "riscv64"}  # fmt: skip
# The legacy manylinux names and the glibc they stand for.
_LEGACY = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
FORMAT = "distill-python-deps-3"  # 2: the tree in <key>/site beside a manifest; 3: and pip's report
# pip 24.2 is the first to check a package's Requires-Python against --python-version
# (the image's Python) instead of the interpreter pip runs on.
MIN_PIP = (24, 2)
# Environment settings that would make pip install something else, somewhere else, or
# from source; the index, find-links, certificate and proxy settings are kept.
_PIP_ENV_DROPPED = {"PIP_EDITABLE", "PIP_REQUIREMENT", "PIP_NO_BINARY", "PIP_TARGET", "PIP_PREFIX", "PIP_ROOT", "PIP_USER", "PIP_SRC", "PIP_CACHE_DIR", "PIP_NO_CACHE_DIR", "PIP_NO_BUILD_ISOLATION", "PIP_COMPILE", "PIP_REQUIRE_VIRTUALENV"}  # fmt: skip


def runtime(packages: list[tuple[str, str]]) -> tuple[str, tuple[int, int]]:
    """The image's Python version ("3.13") and glibc version ((2, 41)), from the lock."""
    version = None
    glibc = None
    for name, pkg_version in packages:
        m = re.fullmatch(r"(?:lib)?python(3\.\d+)-minimal", name)
        if m:
            version = m.group(1)
        if name == "libc6":
            g = re.match(r"(\d+)\.(\d+)", pkg_version)
            if g:
                glibc = (int(g.group(1)), int(g.group(2)))
    if version is None:
        raise SpecError(
            "app kind python needs Python in the image", hint="use from: python3 (or a spec extending it)"
        )
    if glibc is None:
        raise SpecError("app kind python needs glibc in the image", hint="use from: python3")
    return version, glibc


def platform_tags(arch: str, glibc: tuple[int, int]) -> list[str]:
    machine = PIP_MACHINES.get(arch)
    if machine is None:
        raise SpecError(f"no Python wheel platform is known for {arch}")
    tags = [f"manylinux_2_{minor}_{machine}" for minor in range(glibc[1], 4, -1)]
    tags += [f"{name}_{machine}" for name, minor in _LEGACY.items() if minor <= glibc[1]]
    return tags


def _no_wheel(stderr: str, version: str, arch: str) -> SpecError | None:
    m = re.search(r"No matching distribution found for (\S+)", stderr)
    if not m:
        return None
    abi = "cp" + version.replace(".", "")
    return SpecError(
        f"no wheel of {m.group(1)} for CPython {version} ({abi}, manylinux {PIP_MACHINES.get(arch, arch)}) "
        "matches the image",
        hint="distill installs wheels only (nothing is compiled for the image): pick a version of it that "
        "publishes such wheels, or build one and add '--find-links DIR' to the requirements",
    )


def _pip_version() -> tuple[int, ...] | None:
    try:
        version = importlib.metadata.version("pip")
    except importlib.metadata.PackageNotFoundError:
        return None
    return tuple(int(x) for x in re.findall(r"\d+", version)[:3])


def check_pip() -> None:
    """distill's own pip must be one that checks Requires-Python against the image."""
    found = _pip_version()
    if found is None:
        raise BuildError(
            "pip is not installed in distill's Python environment",
            hint=f"{sys.executable} -m pip install 'pip>={'.'.join(map(str, MIN_PIP))}'",
        )
    if found < MIN_PIP:
        raise BuildError(
            f"distill needs pip {'.'.join(map(str, MIN_PIP))} or newer in its environment, found "
            f"{'.'.join(map(str, found))} (older pip checks Requires-Python against the host's Python)",
            hint=f"{sys.executable} -m pip install 'pip>={'.'.join(map(str, MIN_PIP))}'",
        )


def _pip_env(cache_root: Path) -> dict[str, str]:
    """pip's environment: the host's index and find-links configuration is kept; what
    would install something else, somewhere else, or from source is not."""
    env = {k: v for k, v in os.environ.items() if k not in _PIP_ENV_DROPPED}
    env["PIP_NO_INPUT"] = "1"
    env["PIP_CACHE_DIR"] = str(cache_root / "pip")  # never ~/.cache/pip
    return env


def _pip_error(stderr: str, requirements: Path) -> BuildError:
    if "No module named pip" in stderr:
        return BuildError(
            "pip is not available to distill's Python", hint="install pip (python3 -m ensurepip)"
        )
    # pip quotes the lines it cannot parse; `-r /etc/shadow` must not print them.
    return BuildError(pip_failure(stderr, requirements.name))


REPORT = "report.json"  # pip's installation report, beside site/ in a cache entry
MAX_REPORT = 64 << 20


def installed(site: Path) -> list[tuple[str, str, str, dict[str, str]]]:
    """The wheels a cached install took (name, version, URL, {sha256: hex}), from the
    installation report pip wrote beside it (an entry is checked against its manifest
    before use, the report with it)."""
    from distill.limits import read_json

    doc = read_json(site.parent / REPORT, MAX_REPORT, error=BuildError, what="pip's report")
    out = []
    for item in doc.get("install") or [] if isinstance(doc, dict) else []:
        info = item.get("download_info") if isinstance(item, dict) else None
        meta = item.get("metadata") if isinstance(item, dict) else None
        if not isinstance(info, dict) or not isinstance(meta, dict):
            continue
        hashes = (
            (info.get("archive_info") or {}).get("hashes")
            if isinstance(info.get("archive_info"), dict)
            else None
        )
        digest = {
            k: v
            for k, v in (hashes or {}).items()
            if isinstance(k, str) and isinstance(v, str) and re.fullmatch(r"[0-9a-f]{32,128}", v)
        }
        out.append(
            (str(meta.get("name", "")), str(meta.get("version", "")), str(info.get("url", "")), digest)
        )
    return sorted(out)


def install(
    requirements: Path,
    version: str,
    glibc: tuple[int, int],
    arch: str,
    cache_root: Path,
    offline: bool,
    reporter: Reporter,
) -> tuple[Path, str]:
    """The installed dependency tree for the target (cached); (directory, cache key)."""
    files = pyreq.scan(requirements)  # refuses what pip would build, before pip runs
    tags = platform_tags(arch, glibc)
    h = hashlib.sha256(f"{FORMAT}\0{version}\0{arch}\0{' '.join(tags)}".encode())
    for _, data in files:
        h.update(b"\0" + data)
    key = h.hexdigest()
    target = cache_root / "apps" / "python" / key
    what = f"Python dependencies of {requirements.name}"
    if cachecheck.usable(target, what, offline, reporter):
        return target / "site", key
    if offline:
        raise BuildError(f"the {what} are not in the cache (offline)", hint="build once without --offline")
    check_pip()
    abi = "cp" + version.replace(".", "")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    (tmp / "entry").mkdir()
    cmd = [
        sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
        "--no-compile", "--no-warn-script-location", "--target", str(tmp / "entry" / "site"),
        "--cache-dir", str(cache_root / "pip"),
        "--report", str(tmp / "entry" / REPORT),  # what was installed from where (provenance)
        "--only-binary=:all:", "--implementation", "cp", "--python-version", version,
        "--abi", abi, "--abi", "abi3", "--abi", "none",
        *[arg for tag in tags for arg in ("--platform", tag)],
        "-r", str(requirements),
    ]  # fmt: skip
    task = reporter.task(f"pip: wheels of {requirements.name} for CPython {version} {arch}")
    try:
        proc = subprocess.run(
            cmd,
            cwd=requirements.parent,
            capture_output=True,
            text=True,
            errors="replace",
            env=_pip_env(cache_root),
        )
        if proc.returncode != 0:
            raise _no_wheel(proc.stderr, version, arch) or _pip_error(proc.stderr, requirements)
        site = tmp / "entry" / "site"
        site.mkdir(parents=True, exist_ok=True)
        # Console-script launchers point at the host's python; the image runs modules.
        shutil.rmtree(site / "bin", ignore_errors=True)
        cachecheck.write_manifest(tmp / "entry")
        reporter.done(
            task,
            f"installed {sum(1 for p in site.iterdir() if p.name.endswith('.dist-info'))} "
            f"Python distributions for {arch}",
        )
        try:
            os.rename(tmp / "entry", target)
        except OSError:
            if not target.is_dir():  # another build finished first: use its copy
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target / "site", key
