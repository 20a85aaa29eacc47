"""`distill publish`: a family built and pushed to a real docker-registry on 127.0.0.1
(tests/registries.py) and read back with skopeo: every tag and alias, the summary's
digests against the registry's, layers shared across flavors uploaded once, a re-run
that only checks (counted in the registry's access log), locks, a failed push that
tags nothing, and bad input. Most tests publish a two-flavor family from a generated,
signed repository; one publishes static and base from the real archive."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from debrepo import Key
from distill.publish import FAMILY, parse_namespace, plan
from registries import Proxy, Registry
from test_build import PACKAGES
from test_cli import MakeRepo, assert_one_line_error, run

VARIANTS = ["latest", "nonroot", "debug", "debug-nonroot"]


def skopeo_raw(ref: str) -> bytes:
    proc = subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    return proc.stdout


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def publish(work: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run("publish", *args, cwd=work, cache=cache)


def writes(requests: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(m, p) for m, p in requests if m in ("PUT", "PATCH", "POST", "DELETE")]


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    reg = Registry(tmp_path / "registry")
    yield reg
    reg.close()


@pytest.fixture
def family(make_repo: MakeRepo, key: Key, tmp_path: Path) -> Path:
    """A two-flavor family on a generated repository: low, and high built on it."""
    server, _ = make_repo({"stable": PACKAGES})
    work = tmp_path / "work"
    work.mkdir()
    (work / "low.yaml").write_text(
        f"name: low\ndistro: debian13\narchs: [amd64, arm64]\nsources:\n  - url: {server.url}\n"
        f"    suites: [stable]\nkeyring: [{key.keyring}]\npackages: [base-files, ca-certificates]\n"
    )
    (work / "high.yaml").write_text("extends: low.yaml\nname: high\npackages: [libz1]\n")
    return work


def test_publish_tags_aliases_summary_sharing_and_a_rerun_that_only_checks(
    family: Path, registry: Registry, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    ns = f"{registry.host}/team/distroless"
    proc = publish(family, cache, "low.yaml", "high.yaml", "--registry", ns, "--summary", "out/summary.json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((family / "out" / "summary.json").read_text())
    expected = [
        f"{ns}/{repo}:{v}"
        for name in ("low", "high")
        for v in VARIANTS
        for repo in (f"{name}-debian13", name)
    ]
    assert sorted(summary["images"]) == sorted(expected)
    assert summary["totals"]["indexes"] == 8 and summary["totals"]["images"] == 16
    # The last lines of stdout: REF@DIGEST for every reference, as in the summary.
    tail = proc.stdout.strip().splitlines()[-len(expected) :]
    assert sorted(tail) == sorted(f"{r}@{d}" for r, d in summary["images"].items())

    # Every tag and alias is in the registry and names the summary's digest: a
    # multi-arch index of amd64 and arm64 images.
    for ref, digest in summary["images"].items():
        raw = skopeo_raw(ref)
        assert sha256(raw) == digest, ref
        index = json.loads(raw)
        assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]
    for name in ("low", "high"):
        for v in VARIANTS:
            assert summary["images"][f"{ns}/{name}:{v}"] == summary["images"][f"{ns}/{name}-debian13:{v}"]
    # The same image `distill build` makes, variant by variant.
    for v in ("nonroot", "debug"):
        built = run(
            "build", "high.yaml", "--variant", v, "-o", str(tmp_path / f"high-{v}"), cwd=family, cache=cache
        )
        assert built.returncode == 0, built.stderr
        assert built.stdout.strip().splitlines()[-1] == summary["images"][f"{ns}/high-debian13:{v}"]

    # Each blob went up once in the whole run: low's layers were mounted into high's
    # repository (and every alias's), not uploaded again.
    requests = registry.requests()
    uploaded = [p.split("digest=")[1].split("&")[0] for m, p in requests if m == "PUT" and "/blobs/" in p]
    assert uploaded and len(uploaded) == len(set(uploaded)), "a blob was uploaded twice"
    low_amd64 = json.loads(skopeo_raw(f"{ns}/low-debian13:latest"))["manifests"][0]["digest"]
    low_layers = [d["digest"] for d in json.loads(skopeo_raw(f"{ns}/low-debian13@{low_amd64}"))["layers"]]
    mounted = {
        p.split("mount=")[1].split("&")[0].replace("%3A", ":")
        for m, p in requests
        if m == "POST" and "/team/distroless/high-debian13/" in p and "mount=" in p
    }
    assert set(low_layers) <= mounted
    details = {d["refs"][0]: d for d in summary["details"]}
    assert details[f"{ns}/high-debian13:latest"]["push"]["mounted"] >= len(low_layers)
    assert details[f"{ns}/low-debian13:nonroot"]["push"]["uploaded_bytes"] < 4096  # only its configs

    # Nothing changed: the re-run uploads nothing, writes nothing, only checks.
    before = len(registry.requests())
    again = publish(family, cache, "low.yaml", "high.yaml", "--registry", ns, "-o", "again.json")
    assert again.returncode == 0, again.stderr
    new = registry.requests()[before:]
    assert new and writes(new) == [], writes(new)[:5]
    assert {m for m, _ in new} == {"HEAD"} and len(new) == len(expected)  # one per tag
    second = json.loads((family / "again.json").read_text())
    assert second["images"] == summary["images"]
    assert second["totals"]["up_to_date"] == 8 and second["totals"]["uploaded"] == 0
    assert "published 8 indexes (16 images)" in again.stdout and "8 up to date" in again.stdout


def test_separate_runs_mount_the_lower_flavors_layers(
    family: Path, registry: Registry, tmp_path: Path
) -> None:
    """One job per flavor (as a CI matrix shards the family): high's job, a process of its
    own that pushed nothing before, mounts low's layers from low's repository."""
    ns = f"{registry.host}/distroless"
    args = ["--registry", ns, "--variant", "latest", "--no-alias"]
    proc = publish(family, tmp_path / "cache-a", "low.yaml", *args)
    assert proc.returncode == 0, proc.stderr
    low = {
        d["digest"]
        for m in json.loads(skopeo_raw(f"{ns}/low-debian13:latest"))["manifests"]
        for d in json.loads(skopeo_raw(f"{ns}/low-debian13@{m['digest']}"))["layers"]
    }
    before = len(registry.requests())
    proc = publish(family, tmp_path / "cache-b", "high.yaml", *args, "-o", "high.json")
    assert proc.returncode == 0, proc.stderr
    new = registry.requests()[before:]
    uploaded = {p.split("digest=")[1].split("&")[0] for m, p in new if m == "PUT" and "/blobs/" in p}
    assert uploaded and not uploaded & low
    mounted = {p.split("mount=")[1].split("&")[0].replace("%3A", ":") for m, p in new if "mount=" in p}
    assert low <= mounted
    push = json.loads((family / "high.json").read_text())["details"][0]["push"]
    assert push["mounted"] == len(low) and push["uploaded"] == 4  # high's layer and config, per arch


def test_lock_dir_locked_and_a_changed_flavor(family: Path, registry: Registry, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    ns = f"{registry.host}/distroless"
    locks = family / "locks"
    base = ["low.yaml", "high.yaml", "--registry", ns, "--arch", "amd64", "--lock-dir", str(locks)]
    proc = publish(family, cache, *base, "--variant", "latest", "--variant", "nonroot", "-o", "one.json")
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in locks.iterdir()) == ["high-debian13.lock.json", "low-debian13.lock.json"]
    first = json.loads((family / "one.json").read_text())
    assert first["totals"]["resolved"] == ["low-debian13", "high-debian13"]
    # --arch amd64: one image per variant, not an index
    raw = skopeo_raw(f"{ns}/high:nonroot")
    assert json.loads(raw)["config"] and sha256(raw) == first["images"][f"{ns}/high:nonroot"]

    # high's config changes (its lock stays current): low is only checked, high gets new
    # configs and manifests, and no layer is uploaded.
    (family / "high.yaml").write_text((family / "high.yaml").read_text() + "env: {MODE: prod}\n")
    before = len(registry.requests())
    proc = publish(
        family, cache, *base, "--variant", "latest", "--variant", "nonroot", "--locked", "-o", "two.json"
    )
    assert proc.returncode == 0, proc.stderr
    second = json.loads((family / "two.json").read_text())
    assert second["totals"]["resolved"] == []
    details = {d["refs"][0]: d for d in second["details"]}
    assert details[f"{ns}/low-debian13:latest"]["push"]["up_to_date"]
    high = details[f"{ns}/high-debian13:latest"]
    assert not high["push"]["up_to_date"] and high["digest"] != first["images"][f"{ns}/high-debian13:latest"]
    assert high["push"]["uploaded"] == 1 and high["push"]["uploaded_bytes"] < 4096  # the config
    new = registry.requests()[before:]
    assert not [p for m, p in new if m == "PUT" and "/low" in p]
    assert sha256(skopeo_raw(f"{ns}/high:latest")) == high["digest"]

    # A spec whose packages changed: its lock is out of date, which --locked refuses.
    (family / "high.yaml").write_text("extends: low.yaml\nname: high\npackages: [libz1, busybox-static]\n")
    proc = publish(family, cache, *base, "--locked")
    assert_one_line_error(proc, "high-debian13.lock.json is out of date")
    # Without --locked it is resolved afresh and rewritten.
    proc = publish(family, cache, *base, "--variant", "latest", "-o", "three.json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads((family / "three.json").read_text())["totals"]["resolved"] == ["high-debian13"]
    assert "busybox-static" in (locks / "high-debian13.lock.json").read_text()


def test_a_failed_push_tags_nothing_and_writes_no_summary(
    family: Path, registry: Registry, tmp_path: Path
) -> None:
    # The registry refuses high's manifests (by digest, which the Pusher writes first).
    proxy = Proxy(
        registry.host,
        lambda method, path: 403 if method == "PUT" and "/high-debian13/manifests/sha256:" in path else None,
    )
    try:
        ns = f"{proxy.host}/distroless"
        args = ["--registry", ns, "--variant", "latest", "--no-alias", "-o", "summary.json"]
        proc = publish(family, tmp_path / "cache", "low.yaml", "high.yaml", *args)
        assert_one_line_error(proc, "access denied (403)")
        assert not (family / "summary.json").exists()
        tags = {
            p.split("/manifests/")[1] for m, p in registry.requests() if m == "PUT" and "/manifests/" in p
        }
        assert "latest" in tags  # low's tag went in, before high was pushed
        assert not [p for m, p in registry.requests() if m == "PUT" and "/high-debian13/manifests/" in p]
        probe = subprocess.run(
            [
                "skopeo",
                "inspect",
                "--raw",
                "--tls-verify=false",
                f"docker://{registry.host}/distroless/high-debian13:latest",
            ],
            capture_output=True,
            timeout=60,
        )
        assert probe.returncode != 0  # no tag names an incomplete image
    finally:
        proxy.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nosuch", "--registry", "127.0.0.1:5000/ns"], "spec 'nosuch' not found"),
        (["static", "--registry", "distroless"], "is not REGISTRY[:PORT][/NAMESPACE]"),
        (["static", "--registry", "127.0.0.1:5000/Team"], "is not REGISTRY[:PORT][/NAMESPACE]"),
        (["static", "--registry", "127.0.0.1:5000/ns:v1"], "is not REGISTRY[:PORT][/NAMESPACE]"),
        (["static", "--registry", "127.0.0.1:5000/ns@sha256:" + "0" * 64], "is not REGISTRY"),
        (["static", "--registry", ""], "is not REGISTRY[:PORT][/NAMESPACE]"),
        (["static", "--variant", "slim", "--registry", "127.0.0.1:5000"], "unknown variant 'slim'"),
        (["static"], "the following arguments are required: --registry"),
        (["low.yaml", "low.yaml", "--registry", "127.0.0.1:5000"], "are both named 'low'"),
        (["app.yaml", "--registry", "127.0.0.1:5000"], "publish builds image flavors"),
        (
            ["static", "--registry", "127.0.0.1:5000", "--locked", "--lock-dir", "none"],
            "no lockfile for static-debian13",
        ),
    ],
)
def test_bad_input_is_one_line_exit_2(family: Path, tmp_path: Path, args: list[str], message: str) -> None:
    (family / "app.yaml").write_text(
        "name: app\nfrom: low.yaml\napp: {kind: python, source: ., entrypoint: [app.py]}\n"
    )
    assert_one_line_error(publish(family, tmp_path / "cache", *args), message)


def test_an_unreachable_registry_is_one_line(family: Path, tmp_path: Path) -> None:
    proc = publish(
        family, tmp_path / "cache", "low.yaml", "--variant", "latest", "--registry", "127.0.0.1:9/ns"
    )
    assert_one_line_error(proc, "cannot reach 127.0.0.1:9")


def test_plan_and_dry_run_name_the_family_in_the_distroless_convention(tmp_path: Path) -> None:
    flavors = plan(None, ["debian13", "debian12"])
    assert [f.name for f in flavors] == [n for n in FAMILY for _ in (0, 1)]
    assert [f.repositories() for f in flavors[8:10]] == [
        ["python3-debian13", "python3"],
        ["python3-debian12"],
    ]
    assert all(f.spec.archs == ["amd64", "arm64"] for f in flavors)
    assert {f.spec.distro for f in flavors} == {"debian13", "debian12"}
    assert parse_namespace("docker://127.0.0.1:5000/a/b/").path == "a/b"
    assert str(parse_namespace("localhost:5000")) == "localhost:5000"
    proc = run(
        "publish",
        "--registry",
        "127.0.0.1:5000/d",
        "--dry-run",
        "--variant",
        "debug",
        cwd=tmp_path,
        cache=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"127.0.0.1:5000/d/{n}-debian13:debug 127.0.0.1:5000/d/{n}:debug  (amd64, arm64)" for n in FAMILY
    ]


# -- the real archive -------------------------------------------------------------


@pytest.mark.network
def test_static_and_base_from_the_real_archive(registry: Registry, test_cache: Path, tmp_path: Path) -> None:
    ns = f"{registry.host}/distroless"
    cmd = [sys.executable, "-m", "distill", "publish", "static", "base", "--registry", ns,
           "--variant", "latest", "--variant", "debug", "--cache-dir", str(test_cache), "-q",
           "--summary", str(tmp_path / "s.json")]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "s.json").read_text())
    refs = [
        f"{ns}/{r}:{v}" for n in ("static", "base") for r in (f"{n}-debian13", n) for v in ("latest", "debug")
    ]
    assert sorted(summary["images"]) == sorted(refs)
    for ref in refs:
        raw = skopeo_raw(ref)
        assert sha256(raw) == summary["images"][ref]
        index = json.loads(raw)
        assert sorted(m["platform"]["architecture"] for m in index["manifests"]) == ["amd64", "arm64"]
    # base's lower layers (static's, the same bytes) were mounted from static's repository
    static_image = json.loads(skopeo_raw(f"{ns}/static-debian13:latest"))["manifests"][0]["digest"]
    static_layers = [
        d["digest"] for d in json.loads(skopeo_raw(f"{ns}/static-debian13@{static_image}"))["layers"]
    ]
    base_image = json.loads(skopeo_raw(f"{ns}/base-debian13:latest"))["manifests"][0]["digest"]
    base_layers = [d["digest"] for d in json.loads(skopeo_raw(f"{ns}/base-debian13@{base_image}"))["layers"]]
    assert base_layers[: len(static_layers)] == static_layers
    requests = registry.requests()
    uploads = [p for m, p in requests if m == "PUT" and "/blobs/" in p]
    for digest in static_layers:
        assert len([p for p in uploads if digest in p]) == 1  # uploaded once, into static's repository
        assert any(
            m == "POST" and "/base-debian13/" in p and digest.replace(":", "%3A") in p for m, p in requests
        )
    # The re-run uploads nothing and only checks.
    before = len(registry.requests())
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    new = registry.requests()[before:]
    assert writes(new) == [] and {m for m, _ in new} == {"HEAD"}
    assert json.loads((tmp_path / "s.json").read_text())["images"] == summary["images"]
