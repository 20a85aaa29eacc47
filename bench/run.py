"""Benchmarks for the archive client and resolver, side by side with what users
would pick instead. Run: .venv/bin/python bench/run.py  (installs its extras).

1. Parse a full Debian main Packages index: distill vs python-debian, same file.
2. Resolve the python3 set from a warm cache (in-process, and the whole CLI).
3. Cold lock (empty cache) of the python3 set vs mmdebstrap --simulate (apt's
   resolver doing the same index download and resolution) for the same set.

The mirror comes from the host's apt sources (or DISTILL_MIRROR), as for distill.
Results are printed and written to bench/results/archive.json.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from distill.archive.sources import distro_sources  # noqa: E402
from distill.debian.deb822 import parse_file  # noqa: E402
from distill.distros import DISTROS  # noqa: E402
from distill.options import Options  # noqa: E402
from distill.pipeline import make_lock, open_archive, resolve  # noqa: E402
from distill.spec.load import load_spec  # noqa: E402
from results_io import publish  # noqa: E402


def best_of(n: int, fn: object) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t)
    return min(times), statistics.median(times)


def ensure_tools() -> None:
    try:
        import debian.deb822  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "python-debian"], check=True)
    if shutil.which("mmdebstrap") is None:
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "mmdebstrap"], check=True, stdout=subprocess.DEVNULL
        )


def main() -> None:
    ensure_tools()
    from debian import deb822 as pydeb

    results: dict[str, object] = {}
    spec, _ = load_spec("python3")
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    warm = Path(tempfile.mkdtemp(prefix="distill-bench-warm-"))

    # -- 2 (first, to fill the cache): warm resolve -----------------------------
    options = Options(cache_dir=warm, offline=False)
    archive = open_archive(spec, options)
    lock = make_lock(spec, archive, resolve(spec, archive, [arch]))
    archive.close()

    def warm_resolve() -> None:
        a = open_archive(spec, Options(cache_dir=warm, offline=True))
        resolve(spec, a, [arch])

    best, median = best_of(7, warm_resolve)
    cli = [sys.executable, "-m", "distill", "lock", "python3", "--offline", "-q", "--arch", arch,
           "--cache-dir", str(warm), "-o", str(warm / "p.lock.json")]  # fmt: skip
    cli_best, cli_median = best_of(5, lambda: subprocess.run(cli, check=True, stdout=subprocess.DEVNULL))
    results["warm_resolve_python3"] = {
        "packages": len(lock.packages[arch]),
        "in_process_best_s": round(best, 4),
        "in_process_median_s": round(median, 4),
        "cli_offline_best_s": round(cli_best, 3),
        "cli_offline_median_s": round(cli_median, 3),
    }

    # -- 1: parse a full Packages index ------------------------------------------
    main_index = max((warm / "indexes").glob("[0-9a-f]" * 64), key=lambda p: p.stat().st_size)
    data = main_index.read_bytes()
    ours, _ = best_of(3, lambda: parse_file(data))

    def python_debian() -> None:
        with open(main_index, "rb") as f:
            for _ in pydeb.Packages.iter_paragraphs(f, use_apt_pkg=False):
                pass

    theirs, _ = best_of(2, python_debian)
    results["parse_packages_index"] = {
        "stanzas": len(parse_file(data)),
        "bytes": len(data),
        "distill_s": round(ours, 3),
        "python_debian_s": round(theirs, 3),
        "speedup": round(theirs / ours, 1),
    }

    # -- 3: cold lock vs mmdebstrap --simulate -----------------------------------
    def cold_distill() -> None:
        with tempfile.TemporaryDirectory(prefix="distill-bench-cold-") as d:
            a = open_archive(spec, Options(cache_dir=Path(d)))
            make_lock(spec, a, resolve(spec, a, [arch]))
            a.close()

    cold, cold_median = best_of(3, cold_distill)
    srcs = distro_sources(DISTROS[spec.distro])
    names = ",".join(sorted(p.name for p in lock.packages[arch]))
    mirrors = [f"deb {s.base} {s.suite} main" for s in srcs]

    def cold_mmdebstrap() -> None:
        subprocess.run(
            ["mmdebstrap", "--quiet", "--simulate", "--variant=extract", f"--architectures={arch}",
             f"--include={names}", spec.distro and DISTROS[spec.distro].codename, "/dev/null", *mirrors],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "TMPDIR": "/tmp"},
        )  # fmt: skip

    mm, mm_median = best_of(3, cold_mmdebstrap)
    results["cold_lock_python3"] = {
        "arch": arch,
        "distill_best_s": round(cold, 2),
        "distill_median_s": round(cold_median, 2),
        "mmdebstrap_simulate_best_s": round(mm, 2),
        "mmdebstrap_simulate_median_s": round(mm_median, 2),
        "ratio_distill_over_mmdebstrap": round(cold / mm, 2),
    }
    shutil.rmtree(warm, ignore_errors=True)

    publish("archive", results)


if __name__ == "__main__":
    main()
