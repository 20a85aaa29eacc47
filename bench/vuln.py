"""Benchmark: `distill scan` of the python3 image with a Debian Security Tracker export of
realistic size (generated: 1,000 source packages x 30 CVEs, three releases, the image's own
sources among them), cold (the index is made) and warm (read from the indexed cache); and
`distill outdated` of the python3 lock on a warm cache. Beside them, the time Syft (which
Grype runs first) takes only to catalogue the same image, the part of a Grype or Trivy
scan before any matching.

Every command runs in its own process; wall time is the best of --repeat runs, peak memory
the process's maximum resident set (wait4). Figures go to bench/results/vuln.json (see
docs/performance.md). Needs the mirror of the host's apt sources (or DISTILL_MIRROR).

    .venv/bin/python bench/vuln.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_io import publish

REPO = Path(__file__).resolve().parent.parent
MiB = 1 << 20


def measure(cmd: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> tuple[float, float, float]:
    """(wall seconds, peak RSS in MiB, CPU seconds of the process and its children)."""
    t0 = time.perf_counter()
    env = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) not in ok:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    # wait4's usage is the child's own; the gpgv processes it runs are its children, not
    # counted here (a few ms each)
    return elapsed, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def best(n: int, cmd: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> dict[str, float]:
    runs = [measure(cmd, cwd, ok) for _ in range(n)]
    return {
        "seconds": round(min(t for t, _, _ in runs), 3),
        "median": round(sorted(t for t, _, _ in runs)[len(runs) // 2], 3),
        "cpu_seconds": round(min(c for _, _, c in runs), 3),
        "peak_mib": round(max(m for _, m, _ in runs), 1),
    }


def tracker(lock: dict[str, object], sources: int = 1000, per: int = 30) -> dict[str, object]:
    """A tracker export: the image's own sources plus made-up ones, ``per`` CVEs each, in
    every state, for trixie, bookworm and sid."""
    rnd = random.Random(14)
    pkgs = lock["archs"]["amd64"]["packages"]  # type: ignore[index]
    own = sorted({(p["source"], p["source_version"]) for p in pkgs})  # type: ignore[index]
    names = [s for s, _ in own] + [f"src{i:04d}" for i in range(sources - len(own))]
    version = dict(own)
    doc: dict[str, object] = {}
    n = 0
    for name in names:
        issues = {}
        for _ in range(per):
            n += 1
            v = version.get(name, "1.0-1")
            kind = rnd.random()
            if kind < 0.5:
                rel = {
                    "status": "resolved",
                    "fixed_version": v if rnd.random() < 0.8 else v + "+1",
                    "urgency": "medium",
                }
            elif kind < 0.7:
                rel = {"status": "resolved", "fixed_version": "0", "urgency": "low"}
            elif kind < 0.9:
                rel = {"status": "open", "urgency": "low", "nodsa": "Minor issue", "nodsa_reason": ""}
            else:
                rel = {"status": "open", "urgency": "unimportant"}
            releases = {r: {**rel, "repositories": {r: v}} for r in ("trixie", "bookworm", "sid")}
            issues[f"CVE-2026-{n:05d}"] = {"description": f"generated issue {n} in {name}", "scope": "remote",
                                          "releases": releases}  # fmt: skip
        doc[name] = issues
    return doc


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    distill = [sys.executable, "-m", "distill"]
    syft = str(Path(sys.executable).parent / "syft")
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="distill-bench-vuln-") as tmp:
        work = Path(tmp)
        cache = ["--cache-dir", str(work / "cache")]
        subprocess.run([*distill, "lock", "python3", "--arch", "amd64", *cache, "-q"], cwd=work, check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        subprocess.run([*distill, "build", "python3", "--arch", "amd64", "-o", "py3", *cache, "-q"], cwd=work,
                       check=True, stdout=subprocess.DEVNULL)  # fmt: skip
        lock = json.loads((work / "python3.lock.json").read_text())
        doc = tracker(lock)
        data = work / "tracker.json"
        data.write_text(json.dumps(doc))
        results["tracker"] = {
            "sources": len(doc),
            "cves": sum(len(v) for v in doc.values()),  # type: ignore[arg-type]
            "mib": round(data.stat().st_size / MiB, 1),
        }
        scan = [*distill, "scan", "py3", "--db", str(data), *cache, "-q", "--format", "json"]
        subprocess.run(
            [*distill, "outdated", "python3.lock.json", *cache, "-q"],
            cwd=work,
            check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip  (the changelog and candidate caches)
        # cold: the first scan makes the index (the archive part of the cache is warm)
        results["scan_cold_index"] = best(1, scan, work)
        results["scan_warm"] = best(args.repeat, scan, work)
        results["scan_warm_offline"] = best(args.repeat, [*scan, "--offline"], work)
        results["scan_warm_terminal"] = best(args.repeat, [*scan[:-2], "--offline"], work)
        results["outdated_warm"] = best(
            args.repeat, [*distill, "outdated", "python3.lock.json", *cache, "-q"], work, (0, 1)
        )
        results["outdated_warm_offline"] = best(
            args.repeat, [*distill, "outdated", "python3.lock.json", *cache, "-q", "--offline"], work, (0, 1)
        )
        results["syft_catalogue"] = best(args.repeat, [syft, "scan", "oci-dir:py3", "-q", "-o", "json"], work)
        results["scan_warm_vs_syft"] = round(
            results["scan_warm"]["seconds"] / results["syft_catalogue"]["seconds"],
            2,  # type: ignore[index]
        )
        results["date"] = time.strftime("%Y-%m-%d")
    publish("vuln", results)


if __name__ == "__main__":
    main()
