"""Python applications: wheels for the image's CPython, ABI, glibc and architecture.

pip runs on the host but is told the *image's* interpreter (``--python-version``,
``--implementation cp``, ``--abi``) and platform (every ``manylinux`` tag the image's
glibc satisfies), with ``--only-binary=:all:``: nothing is compiled and no code from
the dependencies runs. No bytecode is written (``--no-compile``): the files are
read-only in the image and Python runs from source. The result is cached by the
requirements' content and the target, so rebuilding after a code change does not
run pip at all.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from distill.errors import BuildError, SpecError
from distill.progress import Reporter
from distill.redact import pip_failure

PIP_MACHINES = {"amd64": "x86_64", "arm64": "aarch64", "ppc64el": "ppc64le", "s390x": "s390x", "armhf": "armv7l", "i386": "i686", "riscv64": "riscv64"}  # fmt: skip
# The legacy manylinux names and the glibc they stand for.
_LEGACY = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}
FORMAT = "distill-python-deps-1"


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


def _requirement_files(path: Path, seen: set[Path]) -> list[Path]:
    """The requirements file and those it includes (-r / -c), for the cache key."""
    real = path.resolve()
    if real in seen or not real.is_file():
        return []
    seen.add(real)
    out = [real]
    for line in real.read_text(encoding="utf-8", errors="replace").splitlines():
        m = re.match(r"\s*(?:-r|-c|--requirement|--constraint)[\s=]+(\S+)", line)
        if m:
            out += _requirement_files(real.parent / m.group(1), seen)
    return out


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
    files = _requirement_files(requirements, set())
    tags = platform_tags(arch, glibc)
    h = hashlib.sha256(f"{FORMAT}\0{version}\0{arch}\0{' '.join(tags)}".encode())
    for f in files:
        h.update(b"\0" + f.read_bytes())
    key = h.hexdigest()
    target = cache_root / "apps" / "python" / key
    if target.is_dir():
        return target, key
    if offline:
        raise BuildError(
            f"the Python dependencies of {requirements.name} are not in the cache (offline)",
            hint="build once without --offline",
        )
    abi = "cp" + version.replace(".", "")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    cmd = [
        sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
        "--no-compile", "--no-warn-script-location", "--target", str(tmp / "site"),
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
            env={**os.environ, "PIP_NO_INPUT": "1"},
        )
        if proc.returncode != 0:
            error = _no_wheel(proc.stderr, version, arch)
            if error is not None:
                raise error
            if "No module named pip" in proc.stderr:
                raise BuildError(
                    "pip is not available to distill's Python", hint="install pip (python3 -m ensurepip)"
                )
            # pip quotes the lines it cannot parse; `-r /etc/shadow` must not print them.
            raise BuildError(pip_failure(proc.stderr, requirements.name))
        site = tmp / "site"
        site.mkdir(exist_ok=True)
        # Console-script launchers point at the host's python; the image runs modules.
        shutil.rmtree(site / "bin", ignore_errors=True)
        reporter.done(
            task,
            f"installed {sum(1 for p in site.iterdir() if p.name.endswith('.dist-info'))} "
            f"Python distributions for {arch}",
        )
        os.replace(site, tmp / "done")
        try:
            os.rename(tmp / "done", target)
        except OSError:
            if not target.is_dir():  # another build finished first: use its copy
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target, key
