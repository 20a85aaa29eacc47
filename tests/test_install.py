"""distill as a user installs it: the wheel (`pip install .`, `pipx install .`) built
from this checkout and installed into a fresh virtual environment, then run from outside
the checkout: `distill --version`, and `distill build static` from the built-in spec the
wheel ships (distill/_images)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from distill import __version__
from distill.builtins import builtin_names

pytestmark = pytest.mark.network  # pip fetches distill's dependencies from the configured index
REPO = Path(__file__).resolve().parent.parent


def sh(*cmd: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: int = 600) -> str:
    proc = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_the_wheel_installs_and_builds_a_builtin_outside_the_checkout(
    tmp_path: Path, test_cache: Path
) -> None:
    dist = tmp_path / "dist"
    sh(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        dist,
        REPO,
        cwd=tmp_path,
    )
    (wheel,) = dist.glob("distill-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert sorted(n.split("/")[-1][:-5] for n in names if n.startswith("distill/_images/")) == builtin_names()
    assert not any(n.startswith(("tests/", "images/", "bench/")) for n in names)
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    # this environment's pip installs into the new one (as pipx does with its shared pip)
    sh(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q",
       "--disable-pip-version-check", wheel, cwd=tmp_path)  # fmt: skip
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    distill = venv / "bin" / "distill"
    assert sh(distill, "--version", cwd=work, env=env).strip() == f"distill {__version__}"
    where = sh(
        venv / "bin" / "python",
        "-c",
        "import distill.builtins as b; print(b.builtin_dir())",
        cwd=work,
        env=env,
    )
    assert Path(where.strip()).is_relative_to(venv) and where.strip().endswith("distill/_images")
    out = sh(distill, "build", "static", "--arch", "amd64", "-o", "static.tar", "--cache-dir", test_cache, "-q",
             cwd=work, env=env)  # fmt: skip
    assert out.startswith("sha256:") and out.count("\n") == 1
    with tarfile.open(work / "static.tar") as tf:
        assert {"oci-layout", "index.json", "manifest.json"} <= set(tf.getnames())
    helptext = " ".join(sh(distill, "--help", cwd=work, env=env).split())
    assert "Built-in specs: " + ", ".join(builtin_names()) + " (each for amd64 and arm64" in helptext
    assert all(n in builtin_names() for n in ("java", "nodejs", "java17", "nodejs26"))
