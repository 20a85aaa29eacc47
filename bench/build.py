"""Benchmark of `distill build` against mmdebstrap, same Debian 13 python3 package set.

Run: .venv/bin/python bench/build.py   (installs mmdebstrap if missing)

1. Cold build (empty cache: index download, resolution, .deb download, unpacking,
   layers, archive) vs `mmdebstrap --variant=extract --include=<the same packages>`
   writing a tar of the same set. Best and median of 3 each.
2. Warm build: cache full, output absent (best of 5); also with only the .debs
   cached (nothing unpacked, no layer cache) to show what the caches buy.
3. No-op rebuild: the same command again, output present (best of 5).
4. Peak memory (max RSS) of the cold build.

Every figure is a whole command line, interpreter start-up included. The mirror
comes from the host's apt sources (or DISTILL_MIRROR). Results are printed and
written to bench/results/build.json.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from results_io import publish

ROOT = Path(__file__).resolve().parents[1]
DISTILL = [sys.executable, "-m", "distill"]
ARCH = "amd64"


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall time and peak RSS (KiB) of one command, measured from a fresh parent."""
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
        "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, *cmd], env=env, check=True, capture_output=True, text=True
    )
    seconds, rss = out.stdout.split()
    return float(seconds), int(rss)


def stats(values: list[float]) -> dict[str, float]:
    return {"best_s": round(min(values), 3), "median_s": round(statistics.median(values), 3)}


def main() -> None:
    if shutil.which("mmdebstrap") is None:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "mmdebstrap"], check=True, stdout=subprocess.DEVNULL
        )
    sys.path.insert(0, str(ROOT / "src"))
    from distill.archive.sources import distro_sources
    from distill.distros import DISTROS

    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    work = Path(tempfile.mkdtemp(prefix="distill-bench-build-"))
    results: dict[str, object] = {}
    try:
        lock = work / "python3.lock.json"
        subprocess.run([*DISTILL, "lock", "python3", "--arch", ARCH, "-o", str(lock), "-q",
                        "--cache-dir", str(work / "lock-cache")], check=True, env=env, stdout=subprocess.DEVNULL)  # fmt: skip
        doc = json.loads(lock.read_text())
        names = sorted(p["name"] for p in doc["archs"][ARCH]["packages"])

        # -- 1: cold build vs mmdebstrap ------------------------------------------------------
        cold, rss = [], []
        for n in range(3):
            cache = work / f"cold-{n}"
            seconds, peak = timed(
                [*DISTILL, "build", "python3", "--arch", ARCH, "-o", str(work / f"cold-{n}.tar"),
                 "--cache-dir", str(cache), "-q"], env,
            )  # fmt: skip
            cold.append(seconds)
            rss.append(peak)
            shutil.rmtree(cache)
        distro = DISTROS["debian13"]
        mirrors = [f"deb {s.base} {s.suite} main" for s in distro_sources(distro)]
        mm = []
        for n in range(3):
            seconds, _ = timed(
                ["mmdebstrap", "--quiet", "--variant=extract", f"--architectures={ARCH}", f"--include={','.join(names)}",
                 distro.codename, str(work / f"mm-{n}.tar"), *mirrors],
                {**env, "TMPDIR": str(work)},
            )  # fmt: skip
            mm.append(seconds)
        results["cold_build_python3"] = {
            "packages": len(names),
            "distill": stats(cold),
            "mmdebstrap_extract": stats(mm),
            "ratio_best": round(min(cold) / min(mm), 2),
            "ratio_median": round(statistics.median(cold) / statistics.median(mm), 2),
            "distill_tar_mib": round((work / "cold-0.tar").stat().st_size / 2**20, 1),
            "mmdebstrap_tar_mib": round((work / "mm-0.tar").stat().st_size / 2**20, 1),
        }
        results["peak_rss_mib_cold_build"] = round(max(rss) / 1024, 1)

        # -- 2: warm builds -------------------------------------------------------------------
        cache = work / "warm"
        build = [
            *DISTILL,
            "build",
            "python3",
            "--lock",
            str(lock),
            "--arch",
            ARCH,
            "--cache-dir",
            str(cache),
            "-q",
        ]
        subprocess.run(
            [*build, "-o", str(work / "prime.tar")], check=True, env=env, stdout=subprocess.DEVNULL
        )
        warm = []
        for n in range(5):
            seconds, _ = timed([*build, "-o", str(work / f"warm-{n}.tar")], env)
            warm.append(seconds)
        debs_only = []
        for n in range(3):
            for sub in ("expanded", "layers", "blobs"):
                shutil.rmtree(cache / sub, ignore_errors=True)
            seconds, _ = timed([*build, "-o", str(work / f"debs-{n}.tar")], env)
            debs_only.append(seconds)
        results["warm_build_python3"] = {"cache_full": stats(warm), "only_debs_cached": stats(debs_only)}

        # -- 3: no-op rebuild -----------------------------------------------------------------
        noop = []
        for _ in range(5):
            seconds, _ = timed([*build, "-o", str(work / "warm-0.tar")], env)
            noop.append(seconds)
        layout = work / "layout"
        subprocess.run([*build, "-o", str(layout)], check=True, env=env, stdout=subprocess.DEVNULL)
        noop_layout = [timed([*build, "-o", str(layout)], env)[0] for _ in range(5)]
        results["noop_rebuild_python3"] = {"archive": stats(noop), "layout": stats(noop_layout)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    publish("build", results)


if __name__ == "__main__":
    main()
