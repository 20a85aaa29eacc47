"""Benchmark: `distill audit` on images of about 100 MB and more, beside the time
`umoci unpack` and `skopeo copy` need just to read (and write out) the same image.

Images: distill's nodejs runtime (~117 MiB uncompressed) and java runtime (~211 MiB),
and a conventional Debian 12 image from mmdebstrap (minbase + curl + python3,
~216 MiB), each as an OCI layout. Every command runs in its own process; wall time is
the best of --repeat runs and peak memory is the process's maximum resident set (from
wait4). Figures go to bench/results/audit.json (see docs/performance.md).

    .venv/bin/python bench/audit.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_io import publish

REPO = Path(__file__).resolve().parent.parent
MiB = 1 << 20


def measure(cmd: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one run of cmd."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return elapsed, usage.ru_maxrss / 1024


def best(cmd: list[str], repeat: int, before: list[str] | None = None) -> tuple[float, float]:
    runs = []
    for _ in range(repeat):
        if before:
            subprocess.run(before, check=True)
        runs.append(measure(cmd))
    return min(r[0] for r in runs), max(r[1] for r in runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="distill-bench-audit-"))
    distill = [sys.executable, "-m", "distill"]
    images: dict[str, str] = {}
    for flavor in ("nodejs", "java"):
        subprocess.run(
            [*distill, "build", flavor, "--variant", "nonroot", "-o", str(work / flavor), "-q"],
            check=True,
            cwd=REPO,
        )
        # the platform's manifest (umoci unpacks a manifest, not an index)
        images[f"distill {flavor}:nonroot"] = f"{work / flavor}:nonroot-amd64"
    if shutil.which("mmdebstrap") and shutil.which("umoci"):
        from distill.archive.sources import host_mirrors

        mirror = os.environ.get("DISTILL_MIRROR") or (host_mirrors() or SystemExit("no mirror")).main  # type: ignore[union-attr]
        tar = work / "curlpy.tar"
        subprocess.run(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--quiet",
                "--mode=root",
                "--include=curl,python3",
                "bookworm",
                str(tar),
                str(mirror),
            ],
            check=True,
        )
        layout = work / "curlpy"
        subprocess.run(["umoci", "init", "--layout", str(layout)], check=True)
        subprocess.run(["umoci", "new", "--image", f"{layout}:1"], check=True)
        subprocess.run(["umoci", "raw", "add-layer", "--image", f"{layout}:1", str(tar)], check=True)
        images["mmdebstrap minbase+curl+python3"] = f"{layout}:1"
    results: dict[str, object] = {"repeat": args.repeat, "cpus": os.cpu_count(), "images": {}}
    for name, ref in images.items():
        path, _, tag = ref.rpartition(":")
        import json

        facts = json.loads(
            subprocess.run(
                [*distill, "audit", ref, "--format", "json", "-q"], capture_output=True, text=True, check=True
            ).stdout
        )["reports"][0]["facts"]
        audit_s, audit_mib = best([*distill, "audit", ref, "--format", "json", "-q"], args.repeat)
        bundle = work / "bundle"
        umoci_s, umoci_mib = best(
            ["umoci", "unpack", "--image", ref, str(bundle)], args.repeat, before=["rm", "-rf", str(bundle)]
        )
        shutil.rmtree(bundle, ignore_errors=True)
        copy = work / "copy"
        skopeo_s, skopeo_mib = best(
            ["skopeo", "copy", "-q", f"oci:{path}:{tag}", f"oci:{copy}:x"],
            args.repeat,
            before=["rm", "-rf", str(copy)],
        )
        shutil.rmtree(copy, ignore_errors=True)
        entry = {
            "uncompressed_mib": round(facts["uncompressed_bytes"] / MiB, 1),
            "compressed_mib": round(facts["compressed_bytes"] / MiB, 1),
            "files": facts["files"],
            "audit_s": round(audit_s, 3),
            "audit_peak_mib": round(audit_mib, 1),
            "umoci_unpack_s": round(umoci_s, 3),
            "skopeo_copy_s": round(skopeo_s, 3),
            "audit_vs_umoci": round(audit_s / umoci_s, 2),
            "audit_vs_skopeo": round(audit_s / skopeo_s, 2),
            "umoci_peak_mib": round(umoci_mib, 1),
            "skopeo_peak_mib": round(skopeo_mib, 1),
        }
        results["images"][name] = entry  # type: ignore[index]
        print(f"{name}: {entry}", file=sys.stderr)
    shutil.rmtree(work, ignore_errors=True)
    publish("audit", results)


if __name__ == "__main__":
    main()
