"""Parser bombs and malformed documents, through the command line: YAML (specs and
Kubernetes manifests), the JSON of OCI layouts, and tar archives (image layers, .debs).
Each must end in one error line and exit 2, quickly and in bounded memory."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

# The command's own time and peak memory, measured by its own process (VmHWM): a
# pytest worker's high-water mark is carried across exec into a child's rusage.
_PROBE = (
    "import sys, time\nfrom distill.cli import main\nt = time.perf_counter()\nrc = main(sys.argv[1:])\n"
    "t = time.perf_counter() - t\n"
    "hwm = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM:')][0].split()[1]\n"
    "print('PROBE', hwm, t, file=sys.stderr)\nsys.exit(rc)"
)


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str  # without the probe's line
    seconds: float  # in main(), without the interpreter's start
    peak_mib: float


def probe(*args: str, cwd: Path | None = None, timeout: float = 120) -> Run:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd
    )
    *lines, last = proc.stderr.strip().splitlines() or [""]
    assert last.startswith("PROBE "), proc.stderr[-3000:]
    _, hwm, seconds = last.split()
    return Run(proc.returncode, proc.stdout, "\n".join(lines), float(seconds), int(hwm) / 1024)


def one_line_exit_2(run: Run, *needles: str, seconds: float = 1.0, mib: float = 100) -> str:
    """Exit 2, exactly one ``distill: error:`` line (no traceback), within the bounds."""
    assert run.code == 2, (run.code, run.stdout[-500:], run.stderr[-3000:])
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("distill: error: "), run.stderr[-3000:]
    for n in needles:
        assert n in lines[0], lines[0]
    assert run.seconds < seconds, f"{run.seconds:.2f} s: {lines[0]}"
    assert run.peak_mib < mib, f"peak RSS {run.peak_mib:.0f} MiB: {lines[0]}"
    return lines[0]


# -- YAML ----------------------------------------------------------------------------

LAUGHS = "".join(
    f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join([f'*{chr(96 + i)}'] * 9) if i else ', '.join(['lol'] * 9)}]\n"
    for i in range(9)
)


def test_billion_laughs_is_small() -> None:
    assert len(LAUGHS.encode()) < 400 and LAUGHS.count("*") == 72


@pytest.mark.parametrize(
    "name, text, needle",
    [
        ("bomb.yaml", LAUGHS, "aliases expand to more than"),
        ("deep.yaml", "[" * 100_000 + "\n", "nest"),
        ("deepmap.yaml", "a: " + "{a: " * 100_000 + "\n", "nested deeper than 64"),
        ("blockmap.yaml", "".join(" " * i + "a:\n" for i in range(1000)), "nested deeper than 64"),
        (
            "alias-depth.yaml",
            "a: &a " + "[" * 40 + "]" * 40 + "\nb: " + "[" * 30 + "*a" + "]" * 30 + "\n",
            "nested deeper than 64 levels (through an alias)",
        ),
        ("cycle.yaml", "a: &a [1, *a]\n", "an alias refers to a node that contains it"),
        (
            "merge-bomb.yaml",
            "a: &a {x: 1, y: 2}\n"
            + "".join(
                f"b{i}: &b{i} {{<<: [{', '.join([f'*b{i - 1}' if i else '*a'] * 8)}]}}\n" for i in range(9)
            ),
            "aliases expand",
        ),
    ],
)
@pytest.mark.parametrize("command", ["build", "audit"])
def test_yaml_bombs_are_one_line_fast_and_small(
    tmp_path: Path, name: str, text: str, needle: str, command: str
) -> None:
    """A spec (distill build) or a manifest (distill audit) that would take minutes and
    gigabytes to expand, or nest deeper than a parser recurses, is refused while it is
    composed: one line with the file's line:column, exit 2, < 1 s, < 100 MiB."""
    path = tmp_path / name
    path.write_text(text)
    line = one_line_exit_2(probe(command, str(path), cwd=tmp_path), needle, f"{name}:")
    assert "lol" not in line  # positions, never the file's content
