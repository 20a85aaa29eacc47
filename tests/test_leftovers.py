"""The run-end check (tests/leftovers.py) on runs that leak: a process left running in
the run's temporary directory, more than 200 MiB left there; and a clean run passes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent

LEAKS = """
import subprocess, pathlib

def test_ok(tmp_path):
    (tmp_path / "small").write_bytes(b"x" * 1024)

def test_leaks_a_process(tmp_path):
    if {process}:
        proc = subprocess.Popen(["sleep", "120"], cwd=tmp_path)
        (pathlib.Path({pidfile!r})).write_text(str(proc.pid))

def test_leaks_disk(tmp_path_factory):
    if {disk}:  # a passed test's tmp_path is removed; a directory of the session's is not
        with open(tmp_path_factory.mktemp("data") / "big", "wb") as f:
            for _ in range(201):
                f.write(b"\\1" * (1 << 20))
"""


def _inner(
    tmp_path: Path, *, process: bool = False, disk: bool = False
) -> tuple[subprocess.CompletedProcess[str], Path]:
    pidfile = tmp_path / "pid"
    (tmp_path / "test_inner.py").write_text(LEAKS.format(process=process, disk=disk, pidfile=str(pidfile)))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "leftovers", "-p", "no:cacheprovider",
         "--basetemp", str(tmp_path / "base"), "-o", "tmp_path_retention_policy=failed", "test_inner.py"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    return proc, pidfile


def test_a_clean_run_passes(tmp_path: Path) -> None:
    proc, _ = _inner(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "LEFT BEHIND" not in proc.stdout


def test_a_process_left_running_fails_the_run(tmp_path: Path) -> None:
    proc, pidfile = _inner(tmp_path, process=True)
    pid = int(pidfile.read_text())
    try:
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"LEFT BEHIND: a process is still running: {pid} sleep 120" in proc.stdout
        assert "3 passed" in proc.stdout  # every test passed: the run fails for what it left
    finally:
        os.kill(pid, signal.SIGKILL)


def test_more_than_200_mib_left_fails_the_run(tmp_path: Path) -> None:
    proc, _ = _inner(tmp_path, disk=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "LEFT BEHIND: 201 MiB left in" in proc.stdout and "(limit 200 MiB)" in proc.stdout
