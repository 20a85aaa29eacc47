"""Benchmark of application images: the examples rebuilt after a one-line code change,
side by side with `podman build` of the same app on the same base; and image sizes
next to the same app on Google's distroless (computed from its package lists).

Run: .venv/bin/python bench/app.py   (podman from scripts/setup.sh; host gcc and JDK)

1. For each example (python-web, node-web, java-web, static-binary): lock, build
   once (dependencies installed into the cache), then five times: change one line of
   code, rebuild to an archive. Best and median; the layer digests are compared to
   check that only the top (code) layer changed. Also `--load` into podman.
2. python-web with `podman build` (buildah): a Dockerfile FROM distill's python3 image
   (loaded into podman) that COPYs the same installed dependencies and the code, as a
   multi-stage Dockerfile's final stage does; after the warm-up build, one-line change
   and `podman build` again, vs one-line change and `distill build --load` (best of 3). podman's storage here is vfs (see
   docs/performance.md).
3. Sizes: each example's image (uncompressed layers) vs Google distroless: the sum of
   Installed-Size of Google's package list for the flavor (from the Debian 13 index)
   plus the same app layers; for java and nodejs, whose lists are not Debian-only,
   the published sizes (seeds: java21 ~220 MB, nodejs ~180 MB).

Every figure is a whole command line. Results go to bench/results/app.json.
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

from build import timed
from results_io import publish

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from podmanenv import PodmanStorage

ROOT = Path(__file__).resolve().parents[1]
DISTILL = [sys.executable, "-m", "distill"]
ARCH = "amd64"
MiB = 1 << 20
EXAMPLES = {
    # example: (flavor, file to change, old text, new text pattern)
    "python-web": ("python3", "webapp/__init__.py", "hello from", "hello {n} from"),
    "node-web": ("nodejs", "server.js", "hello from", "hello {n} from"),
    "java-web": ("java", "src/web/Hello.java", '" from java "', '" {n} from java "'),
    "static-binary": ("static", "server.c", "hello from static C", "hello {n} from static C"),
}
STATIC = ["base-files", "netbase", "tzdata", "tzdata-legacy", "media-types"]
BASE = [*STATIC, "libc6", "libssl3t64", "libzstd1", "zlib1g"]
CC = [*BASE, "libgomp1", "libstdc++6", "libgcc-s1", "gcc-14-base"]
GOOGLE = {
    "static": STATIC,
    "python3": [
        *CC,
        *[
            "libbz2-1.0",
            "libdb5.3t64",
            "libexpat1",
            "liblzma5",
            "libsqlite3-0",
            "libuuid1",
            "libncursesw6",
            "libtinfo6",
            "zlib1g",
            "libcom-err2",
            "libcrypt1",
            "libc-bin",
            "libgssapi-krb5-2",
            "libk5crypto3",
            "libkeyutils1",
            "libkrb5-3",
            "libkrb5support0",
            "libnsl2",
            "libreadline8t64",
            "libtirpc3t64",
            "libffi8",
            "libpython3.13-minimal",
            "libpython3.13-stdlib",
            "python3.13-minimal",
            "python3.13-venv",
        ],
    ],
}
PUBLISHED_MB = {"java": 220.0, "nodejs": 180.0}


def layers_of(archive_dir: Path) -> list[dict[str, object]]:
    index = json.loads((archive_dir / "index.json").read_text())
    manifest = json.loads(
        (archive_dir / "blobs" / "sha256" / index["manifests"][0]["digest"][7:]).read_text()
    )
    return list(manifest["layers"])


def image_sizes(stdout: str) -> tuple[float, float]:
    line = next(ln for ln in stdout.splitlines() if ln.startswith(f"{ARCH}:"))
    return (
        float(line.split(" MiB compressed")[0].rsplit(" ", 1)[1]),
        float(line.split(" MiB uncompressed")[0].rsplit(" ", 1)[1]),
    )


def google_mib(flavor: str) -> float | None:
    if flavor not in GOOGLE:
        return None
    sys.path.insert(0, str(ROOT / "src"))
    from distill.options import Options
    from distill.pipeline import open_archive
    from distill.spec.load import load_spec

    spec, _ = load_spec("static")
    archive = open_archive(spec, Options())
    try:
        universe = archive.universe(ARCH)
        total = 0
        for name in dict.fromkeys(GOOGLE[flavor]):
            candidates = universe.candidates(name)
            if not candidates:
                raise SystemExit(f"{name} is not in the archive")
            total += candidates[0].installed_size * 1024
    finally:
        archive.close()
    return total / MiB


def timed_in(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    return timed(["sh", "-c", 'cd "$0" && exec "$@"', str(cwd), *cmd], env)[0]


def main() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    work = Path(tempfile.mkdtemp(prefix="distill-bench-app-"))
    storage = PodmanStorage(work / "containers")  # podman's settings, its run root under 50 characters
    env.update(storage.env)
    results: dict[str, object] = {}

    def run(cmd: list[str], cwd: Path) -> str:
        return subprocess.run(cmd, cwd=cwd, check=True, env=env, capture_output=True, text=True).stdout

    try:
        for name, (flavor, path, old, new) in EXAMPLES.items():
            ex = work / name
            shutil.copytree(
                ROOT / "examples" / name, ex, ignore=shutil.ignore_patterns("build", "server", "*.lock.json")
            )
            toolchain = ["sh", str(ex / "build.sh")] if (ex / "build.sh").exists() else None
            if toolchain:
                run(toolchain, ex)
            run([*DISTILL, "lock", "app.yaml", "--arch", ARCH, "-q"], ex)
            cmd = [*DISTILL, "build", "app.yaml", "--arch", ARCH, "-q"]
            out = run([*cmd, "-o", "img"], ex)  # dependencies installed into the cache here
            before = layers_of(ex / "img")
            markers = [old, *(new.format(n=n) for n in range(8))]

            def change(
                n: int,
                ex: Path = ex,
                path: str = path,
                tc: list[str] | None = toolchain,
                mk: list[str] = markers,
            ) -> None:
                f = ex / path
                f.write_text(f.read_text().replace(mk[n], mk[n + 1], 1))
                if tc:  # javac / gcc: the host toolchain's step, not timed
                    run(tc, ex)

            times = []
            for n in range(5):
                change(n)
                times.append(timed_in([*cmd, "-o", "img"], ex, env))
            after = layers_of(ex / "img")
            only_top = [x["digest"] for x in before[:-1]] == [x["digest"] for x in after[:-1]] and (
                before[-1]["digest"] != after[-1]["digest"]
            )
            load = []
            for n in range(5, 8):
                change(n)
                load.append(timed_in([*cmd, "--load", "podman", "--tag", f"bench-{name}:latest"], ex, env))
            compressed, uncompressed = image_sizes(out)
            flavor_out = run(
                [*DISTILL, "build", flavor, "--arch", ARCH, "-q", "-o", str(work / f"{flavor}.tar")], ex
            )
            app_mib = uncompressed - image_sizes(flavor_out)[1]
            google = google_mib(flavor)
            entry: dict[str, object] = {
                "flavor": flavor,
                "rebuild_after_one_line_change": {
                    "best_s": round(min(times), 3),
                    "median_s": round(statistics.median(times), 3),
                },
                "only_code_layer_changed": only_top,
                "rebuild_and_load_into_podman": {
                    "best_s": round(min(load), 3),
                    "median_s": round(statistics.median(load), 3),
                },
                "image_mib": {
                    "compressed": compressed,
                    "uncompressed": uncompressed,
                    "app_layers": round(app_mib, 1),
                },
            }
            if google is not None:
                entry["google_distroless_equivalent_mib"] = round(google + app_mib, 1)
                entry["google_basis"] = (
                    f"sum of Installed-Size of Google's {flavor} package list + the same app layers"
                )
            else:
                entry["google_distroless_equivalent_mib"] = round(
                    PUBLISHED_MB[flavor] * 1e6 / MiB + app_mib, 1
                )
                entry["google_basis"] = f"published size of Google's {flavor} image + the same app layers"
            results[name] = entry
            print(name, json.dumps(entry), flush=True)

        # -- podman build of python-web on the same base ------------------------------------
        ex = work / "python-web"
        run(
            [
                *DISTILL,
                "build",
                "python3",
                "--arch",
                ARCH,
                "-q",
                "--load",
                "podman",
                "--tag",
                "bench-python3:latest",
            ],
            ex,
        )
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "distill" / "apps" / "python"
        deps = max(
            (p for p in cache.iterdir() if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime
        )
        shutil.copytree(deps, ex / "deps")
        spec = ex / "app.yaml"  # the Dockerfile's inputs are not the app's code
        spec.write_text(
            spec.read_text().replace("  kind: python\n", "  kind: python\n  exclude: [deps, Dockerfile]\n")
        )
        (ex / "Dockerfile").write_text(
            "FROM localhost/bench-python3:latest\n"
            "COPY deps/ /usr/local/lib/python3.13/dist-packages/\n"
            "COPY webapp/ /app/webapp/\n"
            "ENV PYTHONPATH=/app PYTHONDONTWRITEBYTECODE=1\nUSER 65532\nWORKDIR /app\n"
            'ENTRYPOINT ["/usr/bin/python3", "-m", "webapp"]\n'
        )
        podman = [
            "podman",
            "build",
            "-q",
            "--pull=never",
            "--network=none",
            "-t",
            "bench-pyweb-podman:latest",
            ".",
        ]
        run(podman, ex)  # warm: the deps layer is cached from here on
        ptimes, dtimes = [], []
        for n in range(3):
            f = ex / "webapp" / "__init__.py"
            f.write_text(f.read_text().replace("hello ", f"hello p{n} ", 1))
            ptimes.append(timed_in(podman, ex, env))
            dtimes.append(timed_in([*DISTILL, "build", "app.yaml", "--arch", ARCH, "-q", "--load", "podman",
                                    "--tag", "bench-python-web:latest"], ex, env))  # fmt: skip
        results["python-web_vs_podman_build"] = {
            "podman_build_best_s": round(min(ptimes), 3),
            "distill_build_load_best_s": round(min(dtimes), 3),
            "ratio_best": round(min(dtimes) / min(ptimes), 2),
            "note": "both end with the image in podman's (vfs) storage after a one-line code change",
        }
    finally:
        storage.close()
        shutil.rmtree(work, ignore_errors=True)
    publish("app", results)


if __name__ == "__main__":
    main()
