"""Benchmark: `distill fleet` on 200 workloads over 20 distinct images in a loopback
registry (Debian's docker-registry), beside what a user would run instead: one
`distill audit` per image (20 processes, the images read again every time) and
`skopeo inspect` per image (metadata only: no layer is read, nothing judged).

The 20 images: distill's static, base, python3 and nodejs (nonroot) and a conventional
Debian 12 (mmdebstrap minbase), each with four small application layers of its own
(umoci), pushed as app-N:1. The 200 workloads: Deployments, StatefulSets and CronJobs
in 10 namespaces, a quarter with an init container, every image in ten of them.
The first run has an empty cache; the re-run changes nothing (it resolves the 20 tags).
Wall time is the best of --repeat runs, peak memory the process's maximum resident set
(wait4). Figures go to bench/results/fleet.json (see docs/performance.md).

    .venv/bin/python bench/fleet.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from results_io import publish

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from registries import Registry  # noqa: E402

DISTILL = [sys.executable, "-m", "distill"]


def measure(cmd: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one run of cmd."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) not in (0, 1):
        raise SystemExit(f"{' '.join(cmd[:6])} failed: {proc.stderr.read().decode() if proc.stderr else ''}")
    return elapsed, usage.ru_maxrss / 1024


def serial(cmds: list[list[str]]) -> tuple[float, float]:
    """Wall time of running cmds one after another, and the largest peak among them."""
    t0 = time.perf_counter()
    peak = max(measure(c)[1] for c in cmds)
    return time.perf_counter() - t0, peak


def app_layer(n: int) -> Path:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        data = f"application {n}\n".encode() * 2000
        info = tarfile.TarInfo(f"app/app-{n}.txt")
        info.size, info.mode, info.mtime = len(data), 0o644, 0
        tf.addfile(info, io.BytesIO(data))
    path = Path(tempfile.mkstemp(suffix=".tar")[1])
    path.write_bytes(buf.getvalue())
    return path


def images(work: Path, reg: Registry, cache: list[str]) -> list[str]:
    bases: dict[str, Path] = {}
    for flavor in ("static", "base", "python3", "nodejs"):
        out = work / f"{flavor}.oci"
        subprocess.run(
            [*DISTILL, "build", flavor, "--arch", "amd64", "--variant", "nonroot", "-o", str(out), "-q", *cache],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        bases[flavor] = out
    from conventional import debian_image

    bases["debian"] = debian_image(work, "debian", cmd=("/usr/bin/sleep", "infinity"))[1]
    refs = []
    for i in range(20):
        base = list(bases.values())[i % 5]
        layout = work / f"app-{i}"
        subprocess.run(["skopeo", "copy", "-q", f"oci:{base}:{_tag(base)}", f"oci:{layout}:1"], check=True)
        layer = app_layer(i)
        subprocess.run(["umoci", "raw", "add-layer", "--image", f"{layout}:1", str(layer)], check=True)
        layer.unlink()
        ref = f"{reg.host}/fleet/app-{i}:1"
        subprocess.run([*DISTILL, "push", f"{layout}:1", ref, "-q"], check=True, stdout=subprocess.DEVNULL)
        shutil.rmtree(layout)
        refs.append(ref)
    return refs


def _tag(layout: Path) -> str:
    import json

    index = json.loads((layout / "index.json").read_text())
    names = [m.get("annotations", {}).get("org.opencontainers.image.ref.name") for m in index["manifests"]]
    return next(n for n in names if n and n.endswith("amd64")) if len(names) > 1 else str(names[0])


def manifests(path: Path, refs: list[str]) -> None:
    docs = []
    for w in range(200):
        ns, image, kind = f"team-{w % 10}", refs[w % 20], ("Deployment", "StatefulSet", "CronJob")[w % 3]
        pod = f"""      containers:
      - name: main
        image: {image}
        readinessProbe: {{httpGet: {{path: /health, port: 8080}}}}
"""
        if w % 4 == 0:
            pod = f"      initContainers:\n      - {{name: init, image: {refs[(w + 7) % 20]}}}\n" + pod
        if kind == "CronJob":
            body = "  schedule: '0 3 * * *'\n  jobTemplate:\n    spec:\n      template:\n        spec:\n"
            pod = "\n".join("    " + ln if ln else ln for ln in pod.splitlines()) + "\n"
        else:
            body = "  template:\n    spec:\n"
        docs.append(
            f"apiVersion: {'batch/v1' if kind == 'CronJob' else 'apps/v1'}\nkind: {kind}\n"
            f"metadata: {{name: svc-{w}, namespace: {ns}}}\nspec:\n{body}{pod}"
        )
    path.write_text("---\n".join(docs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--build-cache",
        default=os.environ.get("DISTILL_TEST_CACHE"),
        help="distill's cache for building the images",
    )
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="distill-bench-fleet-"))
    reg = Registry(work / "registry")
    try:
        refs = images(work, reg, ["--cache-dir", args.build_cache] if args.build_cache else [])
        fleet = work / "fleet.yaml"
        manifests(fleet, refs)
        cmd = [*DISTILL, "fleet", str(fleet), "-q", "--format", "json", "-o", str(work / "report.json")]
        first, again = [], []
        for _ in range(args.repeat):
            shutil.rmtree(work / "cache", ignore_errors=True)
            first.append(measure([*cmd, "--cache-dir", str(work / "cache")]))
            again.append(measure([*cmd, "--cache-dir", str(work / "cache")]))
        audits = [serial([[*DISTILL, "audit", f"docker://{r}", "--format", "json", "-q"] for r in refs])]
        skopeo = [
            serial([["skopeo", "inspect", "--tls-verify=false", f"docker://{r}"] for r in refs])
            for _ in range(args.repeat)
        ]
        import json

        doc = json.loads((work / "report.json").read_text())
        f_s, f_mib = min(first)[0], max(p for _, p in first)
        a_s, a_mib = min(again)[0], max(p for _, p in again)
        au_s, au_mib = min(audits)
        sk_s = min(s for s, _ in skopeo)
        results = {
            "repeat": args.repeat,
            "cpus": os.cpu_count(),
            "load": round(os.getloadavg()[0], 2),
            "workloads": doc["summary"]["workloads"],
            "images": doc["summary"]["images"],
            "uncompressed_mib": round(
                sum(i["uncompressed_bytes"] for i in doc["images"].values()) / 1048576, 1
            ),
            "fleet_first_s": round(f_s, 3),
            "fleet_first_peak_mib": round(f_mib, 1),
            "fleet_rerun_s": round(a_s, 3),
            "fleet_rerun_peak_mib": round(a_mib, 1),
            "audit_x20_s": round(au_s, 3),
            "audit_x20_peak_mib": round(au_mib, 1),
            "skopeo_inspect_x20_s": round(sk_s, 3),
            "first_vs_audit_x20": round(f_s / au_s, 2),
            "rerun_vs_audit_x20": round(a_s / au_s, 3),
            "rerun_vs_skopeo_inspect_x20": round(a_s / sk_s, 2),
            "goals": {"first_s": 30, "rerun_s": 3, "peak_mib": 300},
        }
        publish("fleet", results)
    finally:
        reg.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
