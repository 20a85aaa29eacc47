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
