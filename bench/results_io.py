"""Where the benchmarks put their figures: printed, and kept in bench/results/ (gitignored)."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def publish(name: str, results: dict[str, object]) -> None:
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(results, indent=2) + "\n"
    (RESULTS / f"{name}.json").write_text(text)
    print(text, end="")
