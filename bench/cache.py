"""What verifying the cache costs, and what sharing one cache between concurrent builds costs.

Run: .venv/bin/python bench/cache.py

1. Warm build of the Debian 13 python3 image (cache full, output absent), with hash
   on read (this tree) vs the same command on the commit before verification
   (660249f, checked out in a temporary git worktree: no hidden switch in the
   product). Each version has its own warm cache (the entry formats differ). Runs
   alternate between the two versions so a neighbour's load hits both alike. To an
   archive (.tar) and to a layout (where the old code hard-linked the cache's blobs
   and the new one copies and hashes them). Goal: <= 1.15x. Also a warm
   `distill lock --offline` (the Packages indexes are hashed on read).
2. Concurrency: 8 `distill build` at once on one empty cache vs one build on an
   empty cache (wall time, every run downloading from the mirror).

Every figure is a whole command line, interpreter start-up included. The mirror
comes from the host's apt sources (or DISTILL_MIRROR). Results are printed and
written to bench/results/cache.json.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_io import publish, stats, wall

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "660249f"  # the last commit without hash on read
ARCH = "amd64"
RUNS = 9


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="distill-bench-cache-"))
    old_tree = work / "before"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old_tree), BEFORE], check=True
    )
    results: dict[str, object] = {"before": BEFORE, "runs": RUNS}
    try:
        envs = {
            "verified": {**os.environ, "PYTHONPATH": str(ROOT / "src")},
            "before": {**os.environ, "PYTHONPATH": str(old_tree / "src")},
        }
        distill = [sys.executable, "-m", "distill"]
        lock = work / "python3.lock.json"
        subprocess.run([*distill, "lock", "python3", "--arch", ARCH, "-o", str(lock), "-q",
                        "--cache-dir", str(work / "lock-cache")], check=True, env=envs["verified"])  # fmt: skip

        def build(version: str, out: Path, cache: Path | None = None) -> list[str]:
            cache = cache or work / f"cache-{version}"
            return [*distill, "build", "python3", "--lock", str(lock), "--arch", ARCH,
                    "--cache-dir", str(cache), "-q", "-o", str(out)]  # fmt: skip

        # -- 1: warm builds, hash on read vs before -------------------------------------------
        for version, env in envs.items():
            subprocess.run(build(version, work / f"prime-{version}.tar"), check=True, env=env)
            # and the indexes, for the warm resolution below
            subprocess.run([*distill, "lock", "python3", "--arch", ARCH, "-q", "--cache-dir",
                            str(work / f"cache-{version}"), "-o", str(work / f"relock-{version}.json")],
                           check=True, env=env)  # fmt: skip
        for kind, suffix in (("archive", ".tar"), ("layout", ".oci")):
            times: dict[str, list[float]] = {v: [] for v in envs}
            for n in range(RUNS):
                for version, env in envs.items():
                    out = work / f"{kind}-{version}-{n}{suffix}"
                    times[version].append(wall(build(version, out), env))
                    if out.is_dir():
                        shutil.rmtree(out)
                    else:
                        out.unlink()
            results[f"warm_build_python3_{kind}"] = {
                "hash_on_read": stats(times["verified"]),
                "before": stats(times["before"]),
                "ratio_best": round(min(times["verified"]) / min(times["before"]), 2),
                "ratio_median": round(
                    statistics.median(times["verified"]) / statistics.median(times["before"]), 2
                ),
            }

        # -- 1b: warm resolution (the indexes are hashed on read) ----------------------------
        times = {v: [] for v in envs}
        for _ in range(RUNS):
            for version, env in envs.items():
                cmd = [*distill, "lock", "python3", "--arch", ARCH, "--offline", "-q",
                       "--cache-dir", str(work / f"cache-{version}"), "-o", str(work / f"relock-{version}.json")]  # fmt: skip
                times[version].append(wall(cmd, env))
        results["warm_lock_python3_offline"] = {
            "hash_on_read": stats(times["verified"]),
            "before": stats(times["before"]),
            "ratio_best": round(min(times["verified"]) / min(times["before"]), 2),
            "ratio_median": round(
                statistics.median(times["verified"]) / statistics.median(times["before"]), 2
            ),
        }

        # -- 2: 8 concurrent builds on one empty cache vs one -------------------------------
        env = envs["verified"]
        single = []
        for n in range(3):
            single.append(wall(build("verified", work / f"one-{n}.tar", work / f"one-cache-{n}"), env))
            shutil.rmtree(work / f"one-cache-{n}")
        shared = work / "shared-cache"
        t = time.perf_counter()
        procs = [
            subprocess.Popen(
                build("verified", work / f"many-{i}.tar", shared),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            for i in range(8)
        ]
        codes = [p.wait() for p in procs]
        eight = time.perf_counter() - t
        digests = {hashlib.sha256((work / f"many-{i}.tar").read_bytes()).hexdigest() for i in range(8)}
        results["concurrent_builds_python3_cold"] = {
            "one_build_empty_cache": stats(single),
            "eight_builds_one_empty_cache_s": round(eight, 3),
            "ratio_to_one_best": round(eight / min(single), 2),
            "all_exit_0": all(c == 0 for c in codes),
            "identical_outputs": len(digests) == 1,
            "cpus": os.cpu_count(),
        }
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old_tree)], check=False)
        shutil.rmtree(work, ignore_errors=True)
    publish("cache", results)


if __name__ == "__main__":
    main()
