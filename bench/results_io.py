"""Where the benchmarks put their figures: printed, and kept in bench/results/ (gitignored)."""

from __future__ import annotations

import json
import statistics
import subprocess
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def publish(name: str, results: dict[str, object]) -> None:
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(results, indent=2) + "\n"
    (RESULTS / f"{name}.json").write_text(text)
    print(text, end="")


def stats(values: list[float]) -> dict[str, float]:
    return {"best_s": round(min(values), 3), "median_s": round(statistics.median(values), 3)}


def wall(cmd: list[str], env: dict[str, str]) -> float:
    """The wall time of a whole command line (its output discarded)."""
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def installed_distill(work: Path) -> list[str]:
    """distill as a user installs it (`pip install .`, `pipx install .`): the wheel of this
    checkout in a fresh virtual environment with its runtime dependencies only. The
    checkout's .venv also holds the test tools, some of which change what distill's
    dependencies import at start-up (httpx loads its command line, with click and rich,
    when click is there: spdx-tools brings it)."""
    root = Path(__file__).resolve().parents[1]
    dist, venv = work / "dist", work / "venv"
    pip = [str(root / ".venv" / "bin" / "python"), "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(dist), str(root)], check=True
    )
    subprocess.run(
        [str(root / ".venv" / "bin" / "python"), "-m", "venv", "--without-pip", str(venv)], check=True
    )
    (wheel,) = dist.glob("distill-*.whl")
    subprocess.run([*pip, "--python", str(venv / "bin" / "python"), "install", str(wheel)], check=True)
    return [str(venv / "bin" / "distill")]
