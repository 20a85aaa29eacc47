"""Signing and verifying an index of two platforms on the loopback registry.

Run: .venv/bin/python bench/sign.py   (needs docker-registry and podman: scripts/setup.sh)

1. ``distill sign`` and ``distill verify`` of distill's static (amd64 + arm64: an
   index and two platform manifests, so three signatures) on Debian's docker-registry
   on 127.0.0.1, whole command lines (interpreter start-up included), beside
   ``distill --version`` (the start-up alone). Goal: <= 0.5 s each.
2. The same work in-process, split: opening the key (scrypt N=2^16, the cosign
   format's cost), signing the three manifests, verifying them.
3. Side by side, the tool a user would pick instead here: Debian 13's skopeo 1.18 (a
   distill image run in podman; cosign is not installable on this machine) signing the
   index (``skopeo copy --sign-by-sigstore-private-key``, the top manifest only) and
   verifying one platform under a sigstoreSigned policy (``skopeo copy`` into an OCI
   layout), beside ``skopeo --version`` in the same container (podman's start-up).

The command lines are an installed distill's (the wheel in a fresh virtual environment,
runtime dependencies only, as `pip install .` makes it); `--checkout` times the
checkout's .venv instead. Results are printed and written to bench/results/sign.json.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from podmanenv import PodmanStorage  # noqa: E402
from registries import Registry  # noqa: E402
from results_io import installed_distill, publish, stats, wall  # noqa: E402

RUNS = 9
PASSWORD = "bench"


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="distill-bench-sign-"))
    cache = os.environ.get("DISTILL_TEST_CACHE") or str(work / "cache")
    env = {**os.environ, "DISTILL_PASSWORD": PASSWORD, "PYTHONPATH": str(ROOT / "src")}
    storage = PodmanStorage(work / "containers")  # podman's settings, its run root under 50 characters
    podman_env = {**env, **storage.env}
    if "--checkout" in sys.argv[1:]:
        distill = [sys.executable, "-m", "distill"]
    else:
        distill = installed_distill(work / "install")
        env.pop("PYTHONPATH")
    registry = Registry(work / "registry")
    results: dict[str, object] = {
        "runs": RUNS,
        "distill": "checkout" if distill[0] == sys.executable else "installed wheel",
        "load_average": os.getloadavg()[0],
    }
    try:
        ref = f"{registry.host}/bench/static:1"
        subprocess.run([*distill, "build", "static", "--arch", "amd64", "--arch", "arm64", "--push", ref,
                        "--cache-dir", cache, "-q"], check=True, env=env, stdout=subprocess.DEVNULL)  # fmt: skip
        subprocess.run([*distill, "keygen", "--output-prefix", str(work / "k")], check=True, env=env,
                       stdout=subprocess.DEVNULL)  # fmt: skip

        # -- 1: whole command lines, alternating so the machine's load hits each alike --
        times: dict[str, list[float]] = {"startup": [], "sign": [], "verify": []}
        for _ in range(RUNS):
            times["startup"].append(wall([*distill, "--version"], env))
            times["sign"].append(wall([*distill, "sign", ref, "--key", str(work / "k.key")], env))
            times["verify"].append(wall([*distill, "verify", ref, "--key", str(work / "k.pub")], env))
        results["cli"] = {name: stats(v) for name, v in times.items()}

        # -- 2: in-process ---------------------------------------------------------
        from distill.sign import image, keys

        inproc: dict[str, list[float]] = {"open_key": [], "sign_3_manifests": [], "verify_3_manifests": []}
        public = keys.load_public((work / "k.pub").read_bytes(), "k.pub")
        data = (work / "k.key").read_bytes()
        for _ in range(RUNS):
            t = time.perf_counter()
            key = keys.decrypt_private(data, PASSWORD.encode(), "k.key")
            inproc["open_key"].append(time.perf_counter() - t)
            t = time.perf_counter()
            with image.open_target(ref) as target:
                image.sign(target, key)
            inproc["sign_3_manifests"].append(time.perf_counter() - t)
            t = time.perf_counter()
            with image.open_target(ref) as target:
                assert len(image.verify(target, public, identity=target.identity)) == 3
            inproc["verify_3_manifests"].append(time.perf_counter() - t)
        results["in_process"] = {name: stats(v) for name, v in inproc.items()}

        # -- 3: skopeo 1.18 in podman --------------------------------------------------
        if shutil.which("podman"):
            spec = work / "skopeo.yaml"
            spec.write_text("name: skopeo\nextends: base\ndistro: debian13\npackages: [skopeo]\n")
            subprocess.run([*distill, "build", str(spec), "--arch", "amd64", "-o", str(work / "skopeo.tar"),
                            "--tag", "bench/skopeo:1", "--cache-dir", cache, "-q"], check=True, env=env,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            subprocess.run(["podman", "load", "-q", "-i", str(work / "skopeo.tar")], check=True, env=podman_env,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            w = work / "w"
            (w / "registries.d").mkdir(parents=True)
            shutil.copy(work / "k.key", w / "k.key")
            shutil.copy(work / "k.pub", w / "k.pub")
            (w / "pass").write_text(PASSWORD)
            (w / "registries.d" / "r.yaml").write_text(
                f"docker:\n  {registry.host}:\n    use-sigstore-attachments: true\n"
            )
            rule = {
                "type": "sigstoreSigned",
                "keyPath": "/w/k.pub",
                "signedIdentity": {"type": "matchRepository"},
            }
            (w / "policy.json").write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}],
                                                       "transports": {"docker": {registry.host: [rule]}}}))  # fmt: skip
            (w / "any.json").write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
            run = ["podman", "run", "--rm", "--network", "host", "-v", f"{w}:/w:ro", "--entrypoint",
                   "/usr/bin/skopeo", "localhost/bench/skopeo:1"]  # fmt: skip
            sk: dict[str, list[float]] = {"startup": [], "sign_index": [], "verify_platform": []}
            for _ in range(RUNS):
                sk["startup"].append(wall([*run, "--version"], podman_env))
                sk["sign_index"].append(wall([*run, "--policy", "/w/any.json", "--registries.d", "/w/registries.d",
                                              "copy", "-q", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
                                              "--sign-by-sigstore-private-key", "/w/k.key", "--sign-passphrase-file",
                                              "/w/pass", f"docker://{ref}", f"docker://{ref}"], podman_env))  # fmt: skip
                sk["verify_platform"].append(wall([*run, "--policy", "/w/policy.json", "--registries.d",
                                                   "/w/registries.d", "copy", "-q", "--remove-signatures",
                                                   "--src-tls-verify=false", f"docker://{ref}", "oci:/tmp/o:x"],
                                                  podman_env))  # fmt: skip
            results["skopeo_in_podman"] = {name: stats(v) for name, v in sk.items()}
            cli = results["cli"]
            assert isinstance(cli, dict)
            results["ratios_median"] = {
                "distill_sign_vs_skopeo_sign": round(
                    cli["sign"]["median_s"] / stats(sk["sign_index"])["median_s"], 2
                ),
                "distill_verify_vs_skopeo_verify": round(
                    cli["verify"]["median_s"] / stats(sk["verify_platform"])["median_s"], 2
                ),
            }
    finally:
        registry.close()
        subprocess.run(
            ["podman", "rmi", "-f", "localhost/bench/skopeo:1"], env=podman_env, capture_output=True
        )
        storage.close()
        shutil.rmtree(work, ignore_errors=True)
    publish("sign", results)


if __name__ == "__main__":
    main()
