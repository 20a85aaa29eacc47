"""What a test run leaves behind, checked when it ends (a pytest plugin: tests/conftest.py
takes its hook; tests/test_leftovers.py runs it on runs that leak).

Every daemon a test starts is stopped by the test (Key.close: gpgconf --kill all;
the registry fixture; Server.close), tmp is kept for failed tests only
(pyproject.toml: tmp_path_retention_policy), and the session fails when a process
that names this run's temporary directory is still alive, or when more than
LEFT_BEHIND_LIMIT bytes of it are left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Generator
from pathlib import Path

import pytest

# conftest.test_cache: the run's shared distill cache, when DISTILL_TEST_CACHE is unset
RUN_CACHE = "distill-cache"

LEFT_BEHIND_LIMIT = 200 << 20


def _leftover_processes(root: Path) -> list[str]:
    mark = str(root).encode() + b"/"  # pytest-1/, not pytest-12
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            names = [cmdline, (proc / "environ").read_bytes(), os.readlink(proc / "cwd").encode() + b"/"]
        except OSError:  # gone, or a kernel thread
            continue
        if any(mark in n for n in names):
            command = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()
            found.append(f"{proc.name} {command[:200]}")
    return found


def _size(root: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            with contextlib.suppress(OSError):  # removed meanwhile
                total += os.lstat(os.path.join(dirpath, f)).st_blocks * 512
    return total


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> Generator[None, None, None]:
    config = session.config
    root = config._tmp_path_factory._basetemp  # type: ignore[attr-defined]
    if hasattr(config, "workerinput") or root is None:
        # a worker (the controller checks the whole run: by its session's end every worker
        # has torn its fixtures down), or a run that made no temporary directory
        return (yield)
    # Before pytest removes a passed run's directory: a gpg-agent whose home is removed
    # stops by itself a few seconds later, which would hide that nothing stopped it.
    deadline = time.monotonic() + 5
    while (procs := _leftover_processes(root)) and time.monotonic() < deadline:
        time.sleep(0.2)  # a daemon told to stop may take a moment
    result = yield
    shutil.rmtree(root / RUN_CACHE, ignore_errors=True)  # a cache, not a failed test's evidence
    size = _size(root) if root.exists() else 0
    problems = [f"a process is still running: {p}" for p in procs]
    if size > LEFT_BEHIND_LIMIT:
        problems.append(f"{size / 1048576:.0f} MiB left in {root} (limit {LEFT_BEHIND_LIMIT >> 20} MiB)")
    if problems:
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        for line in problems:
            if reporter is not None:
                reporter.write_line(f"LEFT BEHIND: {line}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    return result
