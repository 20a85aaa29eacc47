"""Benchmarks of pushing to a registry, beside skopeo: Debian's docker-registry on
127.0.0.1 (the tests' helper, tests/registries.py), a fresh one for every timed run.

Run: .venv/bin/python bench/registry.py [--runs N] [--cold N]

1. The family: `distill publish` of the built-in family (7 flavors x 4 variants x
   amd64+arm64 = 56 images in 28 indexes) to an empty registry from an empty cache
   (cold), then again with nothing changed (re-run), beside the sum of 28 x
   (`distill build FLAVOR --variant V -o LAYOUT` + `skopeo copy --all oci:LAYOUT
   docker://REGISTRY/distroless/FLAVOR-debian13:V`), cold and re-run the same way
   (one cache for the 28 builds, as a script would). Both write the same 28
   repositories (publish with --no-alias), and the benchmark checks that every tag
   names the same digest. Then the re-run of the default publish (with the
   version-less aliases: 56 tags), the <= 10 s goal. Cold runs alternate, `--cold`
   times each (default 2); re-runs 5 times (2 for the 28-command script).
2. Push of the python3 image (amd64 + arm64, the OCI layout distill built) to an empty
   registry: `distill push LAYOUT REF` vs `skopeo copy --all oci:LAYOUT docker://REF`,
   alternating, `--runs` each (default 7); goal <= 1.0x.

Every figure is a whole command line, interpreter start-up included (bytecode
cached, as for an installed distill); the registry's
access log gives what each client sent. The Debian mirror comes from the host's apt
sources (or DISTILL_MIRROR). Results are printed and written to bench/results/registry.json.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from results_io import installed_distill, publish

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from registries import Registry  # noqa: E402

DISTILL = [sys.executable, "-m", "distill"]
FAMILY = ["static", "base-nossl", "base", "cc", "python3", "java", "nodejs"]
VARIANTS = ["latest", "nonroot", "debug", "debug-nonroot"]
_LINE = re.compile(r'"([A-Z]+) (\S+) HTTP/[0-9.]+" (\d{3})')


def stats(values: list[float]) -> dict[str, float]:
    return {"best_s": round(min(values), 3), "median_s": round(statistics.median(values), 3)}


def wall(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def traffic(reg: Registry, since: int = 0) -> dict[str, int]:
    """What the registry's access log says a client did: requests by method, blobs
    uploaded (an upload completed with ?digest=), blobs mounted (201 to ?mount=)."""
    lines = [m.groups() for m in map(_LINE.search, reg.log.read_text(errors="replace").splitlines()) if m]
    lines = lines[since:]
    methods = Counter(method for method, _, _ in lines)
    return {
        "requests": len(lines),
        **{m.lower(): methods[m] for m in ("HEAD", "GET", "POST", "PATCH", "PUT")},
        "blobs_uploaded": sum(1 for m, p, s in lines if m == "PUT" and "/blobs/" in p and "digest=" in p),
        "blobs_mounted": sum(1 for m, p, s in lines if m == "POST" and "mount=" in p and s == "201"),
    }


def log_length(reg: Registry) -> int:
    return traffic(reg)["requests"]


def tags(reg: Registry, repos: list[str], variants: list[str]) -> dict[str, str]:
    """repo:tag -> the digest the registry names (HEAD, as any client reads it)."""
    import httpx

    accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
    out = {}
    with httpx.Client(timeout=30) as client:
        for repo in repos:
            for v in variants:
                r = client.head(f"http://{reg.host}/v2/{repo}/manifests/{v}", headers={"Accept": accept})
                out[f"{repo}:{v}"] = r.headers.get("docker-content-digest", f"missing ({r.status_code})")
    return out


def skopeo_copy(layout: Path, ref: str) -> list[str]:
    return ["skopeo", "copy", "-q", "--all", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{ref}"]


def family(work: Path, env: dict[str, str], cold_runs: int) -> dict[str, object]:
    repos = [f"distroless/{f}-debian13" for f in FAMILY]
    out: dict[str, object] = {}
    cold: dict[str, list[float]] = {"publish": [], "script": []}
    rerun: dict[str, list[float]] = {"publish": [], "script": []}
    seen: dict[str, dict[str, str]] = {}
    counts: dict[str, dict[str, object]] = {}

    def run_publish(n: int) -> None:
        cache, reg = work / f"publish-cache-{n}", Registry(work / f"publish-reg-{n}")
        cmd = [*DISTILL, "publish", "--registry", f"{reg.host}/distroless", "--no-alias", "-q",
               "--cache-dir", str(cache), "-o", str(work / "summary.json")]  # fmt: skip
        try:
            cold["publish"].append(wall(cmd, env, work))
            first = traffic(reg)
            before = log_length(reg)
            rerun["publish"].append(wall(cmd, env, work))
            counts["publish"] = {"cold": first, "rerun": traffic(reg, before)}
            for _ in range(4):
                rerun["publish"].append(wall(cmd, env, work))
            seen["publish"] = tags(reg, repos, VARIANTS)
            # The default: the version-less aliases too (56 tags); one run to add them,
            # then the re-run with nothing changed.
            alias = [c for c in cmd if c != "--no-alias"]
            out["publish_adding_aliases_s"] = round(wall(alias, env, work), 3)
            before = log_length(reg)
            with_alias = [wall(alias, env, work)]
            sent = traffic(reg, before)
            with_alias += [wall(alias, env, work) for _ in range(4)]
            out["publish_rerun_with_aliases"] = {**stats(with_alias), "registry_traffic_one_run": sent}
        finally:
            reg.close()
            if n < cold_runs - 1:
                shutil.rmtree(cache, ignore_errors=True)

    def run_script(n: int) -> None:
        cache, reg = work / f"script-cache-{n}", Registry(work / f"script-reg-{n}")
        layouts = work / f"script-layouts-{n}"
        layouts.mkdir()
        steps = []
        for flavor in FAMILY:
            for v in VARIANTS:
                layout = layouts / f"{flavor}-{v}"
                steps.append(
                    (
                        [*DISTILL, "build", flavor, "--variant", v, "-o", str(layout), "-q", "--cache-dir", str(cache)],
                        skopeo_copy(layout, f"{reg.host}/distroless/{flavor}-debian13:{v}"),
                    )
                )  # fmt: skip

        def script() -> float:
            return sum(wall(build, env, work) + wall(copy, env, work) for build, copy in steps)

        try:
            cold["script"].append(script())
            first = traffic(reg)
            before = log_length(reg)
            rerun["script"].append(script())
            counts["script"] = {"cold": first, "rerun": traffic(reg, before)}
            rerun["script"].append(script())
            seen["script"] = tags(reg, repos, VARIANTS)
        finally:
            reg.close()
            shutil.rmtree(cache, ignore_errors=True)
            shutil.rmtree(layouts, ignore_errors=True)

    for n in range(cold_runs):
        run_publish(n)
        run_script(n)
    differ = sorted(t for t in seen["publish"] if seen["publish"][t] != seen["script"].get(t))
    out["tags_compared"] = len(seen["publish"])
    out["tags_naming_other_digests"] = differ  # publish and the script push the same images: []
    for key, runs in (("cold", cold), ("rerun", rerun)):
        out[f"family_{key}"] = {
            "publish": stats(runs["publish"]),
            "28_builds_and_skopeo_copies": stats(runs["script"]),
            "ratio_best": round(min(runs["publish"]) / min(runs["script"]), 3),
            "ratio_median": round(statistics.median(runs["publish"]) / statistics.median(runs["script"]), 3),
        }
    out["registry_traffic"] = counts
    out["warm_cache"] = str(work / f"publish-cache-{cold_runs - 1}")
    return out


def push(work: Path, env: dict[str, str], cache: Path, runs: int) -> dict[str, object]:
    layout = work / "python3.oci"
    subprocess.run([*DISTILL, "build", "python3", "-o", str(layout), "-q", "--cache-dir", str(cache)],
                   check=True, env=env, cwd=work, stdout=subprocess.DEVNULL)  # fmt: skip
    blobs = sum(f.stat().st_size for f in (layout / "blobs" / "sha256").iterdir())
    times: dict[str, list[float]] = {"distill": [], "skopeo": []}
    sent: dict[str, dict[str, int]] = {}
    tools: dict[str, Callable[[str], list[str]]] = {
        "distill": lambda ref: [*DISTILL, "push", str(layout), ref, "-q"],
        "skopeo": lambda ref: skopeo_copy(layout, ref),
    }
    for n in range(runs):
        order = ["distill", "skopeo"] if n % 2 == 0 else ["skopeo", "distill"]
        for tool in order:
            reg = Registry(work / f"push-{tool}-{n}")
            try:
                times[tool].append(wall(tools[tool](f"{reg.host}/distroless/python3:latest"), env, work))
                sent[tool] = traffic(reg)
            finally:
                reg.close()
                shutil.rmtree(work / f"push-{tool}-{n}", ignore_errors=True)
    return {
        "push_python3": {
            "blobs_mib": round(blobs / 2**20, 1),
            "distill_push": stats(times["distill"]),
            "skopeo_copy_all": stats(times["skopeo"]),
            "ratio_best": round(min(times["distill"]) / min(times["skopeo"]), 3),
            "ratio_median": round(
                statistics.median(times["distill"]) / statistics.median(times["skopeo"]), 3
            ),
            "registry_traffic": sent,
        }
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timed pushes per tool (default: 7)")
    parser.add_argument("--cold", type=int, default=2, help="cold family runs per tool (default: 2)")
    parser.add_argument(
        "--skip-family", action="store_true", help="only the push (with a cold cache of its own)"
    )
    parser.add_argument(
        "--checkout",
        action="store_true",
        help="time the checkout's distill (.venv, with the test tools) instead of an installed wheel",
    )
    args = parser.parse_args()
    for tool in ("skopeo", "docker-registry"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: run scripts/setup.sh")
    # As an installed distill runs: its bytecode cached (a session that sets
    # PYTHONDONTWRITEBYTECODE would compile every module on every command, ~20 ms).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT / "src")
    work = Path(tempfile.mkdtemp(prefix="distill-bench-registry-"))
    results: dict[str, object] = {}
    try:
        if not args.checkout:
            DISTILL[:] = installed_distill(work / "install")
            env.pop("PYTHONPATH")
        results["distill"] = "checkout" if args.checkout else "installed wheel"
        results["load_average_start"] = os.getloadavg()[0]
        if args.skip_family:
            cache = work / "push-cache"
        else:
            results.update(family(work, env, args.cold))
            cache = Path(str(results.pop("warm_cache")))
        results.update(push(work, env, cache, args.runs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["load_average_end"] = os.getloadavg()[0]
    publish("registry", results)


if __name__ == "__main__":
    main()
