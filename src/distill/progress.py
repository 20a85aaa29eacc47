"""Progress reporting: observers of long work, chosen by the command line.

The library calls a :class:`Reporter`; it never prints by itself. On a terminal the
command line uses :class:`RichReporter` (live bars); otherwise :class:`LineReporter`
writes one plain ``distill: <event> <fields>`` line per finished step to stderr,
which is easy to grep and to parse. ``-q`` (:class:`QuietReporter`) keeps only the
warnings.
"""

from __future__ import annotations

import sys
import threading
from typing import IO, Any


class Reporter:
    """Does nothing; subclasses show progress. All methods are thread-safe."""

    def task(self, description: str, total: int | None = None) -> int:
        return 0

    def advance(self, task: int, amount: int) -> None:
        pass

    def done(self, task: int, message: str | None = None) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def close(self) -> None:
        pass


class LineReporter(Reporter):
    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()
        self._tasks: dict[int, str] = {}
        self._next = 1

    def task(self, description: str, total: int | None = None) -> int:
        with self._lock:
            tid = self._next
            self._next += 1
            self._tasks[tid] = description
            return tid

    def done(self, task: int, message: str | None = None) -> None:
        with self._lock:
            desc = self._tasks.pop(task, "")
            print(f"distill: {message or desc}", file=self.stream, flush=True)

    def note(self, message: str) -> None:
        with self._lock:
            print(f"distill: {message}", file=self.stream, flush=True)


class RichReporter(Reporter):
    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TransferSpeedColumn,
        )

        self.console = Console(stderr=True)
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            console=self.console,
            transient=True,
        )
        self.progress.start()

    def task(self, description: str, total: int | None = None) -> int:
        return int(self.progress.add_task(description, total=total))

    def advance(self, task: int, amount: int) -> None:
        self.progress.advance(task, amount)  # type: ignore[arg-type]

    def done(self, task: int, message: str | None = None) -> None:
        self.progress.remove_task(task)  # type: ignore[arg-type]
        if message:
            self.progress.console.print(f"[green]✓[/green] {message}", highlight=False)

    def note(self, message: str) -> None:
        self.progress.console.print(message, highlight=False)

    def close(self) -> None:
        self.progress.stop()


class QuietReporter(Reporter):
    """``-q``: no progress; only the warnings that change the result (a damaged cache
    entry downloaded again, a package whose engines exclude the image's runtime)."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream or sys.stderr
        self._lock = threading.Lock()

    def note(self, message: str) -> None:
        if message.startswith("warning:"):
            with self._lock:
                print(f"distill: {message}", file=self.stream, flush=True)


def make_reporter(quiet: bool, stream: Any = None) -> Reporter:
    if quiet:
        return QuietReporter(stream)
    if (stream or sys.stderr).isatty():
        return RichReporter()
    return LineReporter(stream)
