"""Helpers of the hostile-input tests: a call that must end in time, one error line."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable


def finishes_within(
    seconds: float, fn: Callable[[], object], unblock: Callable[[], None] | None = None
) -> BaseException | None:
    """What ``fn`` raised (None if nothing); the test fails if it takes longer than
    ``seconds`` (``unblock`` is called first, to free the thread, e.g. open a FIFO's other end)."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            fn()
            outcome.append(None)
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(seconds)
    if thread.is_alive() and unblock is not None:
        unblock()
        thread.join(seconds)
    assert not outcome or time.monotonic() - start < seconds, f"took longer than {seconds} s"
    assert outcome, f"still running after {seconds} s"
    return outcome[0]


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The single line of stderr: ``distill: error: ...``, exit status 2, no traceback."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("distill: error: "), proc.stderr
    return lines[0]
