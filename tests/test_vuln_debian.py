"""Integration: distill outdated, lock --update and scan against the real Debian archive
(the mirror of the host's apt sources, or DISTILL_MIRROR).

Debian 12 locked from its release suite alone is behind bookworm-security: outdated
names the security updates with the CVE ids read from the candidates' real changelogs
(OpenSSL's among them), lock --update moves them, and a freshly locked flavor has
nothing waiting. The python-web and node-web examples, built, are scanned with tracker and OSV
data generated for their own packages (Debian, PyPI, npm), and Syft's SBOMs of them give
the same findings."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.network

REPO = Path(__file__).resolve().parent.parent
CVE = re.compile(r"CVE-\d{4}-\d{4,}")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    shared = os.environ.get("DISTILL_TEST_CACHE")
    return Path(shared) if shared else tmp_path_factory.mktemp("debian-cache")


def distill(*args: str, cwd: Path, cache: Path, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DISTILL_VULN_DB"}
    return subprocess.run(
        [sys.executable, "-m", "distill", *args, "--cache-dir", str(cache), "-q"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def test_debian12_release_suite_is_behind_security_and_lock_update_moves_it(
    tmp_path: Path, cache_dir: Path
) -> None:
    packages = "packages:\n  - libssl3\n  - zlib1g\n  - libexpat1\n  - libgcc-s1\n"
    (tmp_path / "release.yaml").write_text(
        f"distro: debian12\narchs: [amd64]\nsources:\n  - suites: [bookworm]\n{packages}"
    )
    (tmp_path / "full.yaml").write_text(f"distro: debian12\narchs: [amd64]\n{packages}")
    proc = distill("lock", "release.yaml", cwd=tmp_path, cache=cache_dir)
    assert proc.returncode == 0, proc.stderr
    old = json.loads((tmp_path / "release.lock.json").read_text())
    assert {p["suite"] for p in old["archs"]["amd64"]["packages"]} == {"bookworm"}
    shutil.copy(tmp_path / "release.lock.json", tmp_path / "full.lock.json")
    proc = distill("outdated", "full.yaml", "--format", "json", cwd=tmp_path, cache=cache_dir)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # security updates wait
    report = json.loads(proc.stdout)["reports"][0]
    assert report["suites"] == ["bookworm", "bookworm-updates", "bookworm-security"]
    sec = {u["package"]: u for u in report["security"]}
    ssl = sec["libssl3"]
    assert ssl["source"] == "openssl" and ssl["suite"] == "bookworm-security"
    assert ssl["candidate"] != ssl["installed"]
    assert len(ssl["cves"]) >= 3 and all(CVE.fullmatch(c) for c in ssl["cves"]), ssl["cves"]
    assert all(e["version"] != ssl["installed"] for e in ssl["entries"])
    # every CVE comes from an entry of the candidate's changelog newer than the installed version
    assert set(ssl["cves"]) == {c for e in ssl["entries"] for c in e["cves"]}
    # the terminal report lists security updates first, each with its CVEs
    proc = distill("outdated", "full.yaml", cwd=tmp_path, cache=cache_dir)
    assert proc.returncode == 1 and "libssl3" in proc.stdout and ssl["cves"][0] in proc.stdout
    # lock --update moves libssl3 only, and says which CVEs the move fixes
    proc = distill("lock", "full.yaml", "--update", "libssl3", cwd=tmp_path, cache=cache_dir)
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.strip().startswith("libssl3:"))
    assert f"{ssl['installed']} → {ssl['candidate']}" in line and f"fixes {len(ssl['cves'])} CVE" in line, (
        line
    )
    new = {
        p["name"]: p
        for p in json.loads((tmp_path / "full.lock.json").read_text())["archs"]["amd64"]["packages"]
    }
    before = {p["name"]: p["version"] for p in old["archs"]["amd64"]["packages"]}
    assert new["libssl3"]["version"] == ssl["candidate"]
    assert all(new[n]["version"] == v for n, v in before.items() if n != "libssl3")  # the others stay
    proc = distill("outdated", "full.yaml", "--format", "json", cwd=tmp_path, cache=cache_dir)
    waiting = {u["package"] for u in json.loads(proc.stdout)["reports"][0]["security"]}
    assert "libssl3" not in waiting and waiting == set(sec) - {"libssl3"}
    # everything: then nothing waits
    proc = distill("lock", "full.yaml", "--update", cwd=tmp_path, cache=cache_dir)
    assert proc.returncode == 0, proc.stderr
    proc = distill("outdated", "full.yaml", "--format", "json", cwd=tmp_path, cache=cache_dir)
    assert proc.returncode == 0, proc.stdout
    r = json.loads(proc.stdout)["reports"][0]
    assert r["security"] == [] and r["ordinary"] == []


@pytest.mark.parametrize("distro", ["debian13", "debian12"])
def test_a_freshly_locked_flavor_has_nothing_waiting(tmp_path: Path, cache_dir: Path, distro: str) -> None:
    assert distill("lock", "python3", "--distro", distro, cwd=tmp_path, cache=cache_dir).returncode == 0
    # --distro other than the spec's own (python3's is debian13) writes a lock of its own name
    lock = "python3.lock.json" if distro == "debian13" else f"python3.{distro}.lock.json"
    proc = distill("outdated", lock, "--format", "json", cwd=tmp_path, cache=cache_dir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(proc.stdout)["reports"][0]
    assert r["security"] == [] and r["ordinary"] == [] and r["checked"] > 20


def _generated_data(
    lock: dict[str, Any], example: str, work: Path
) -> tuple[Path, Path, set[tuple[str, str, str]]]:
    """Tracker and OSV data made for the image's real packages, and what a scan must find."""
    pkgs = lock["archs"]["amd64"]["packages"]
    by_source: dict[str, dict[str, Any]] = {}
    for p in pkgs:
        by_source.setdefault(p["source"], p)
    binaries = {s: sorted(p["name"] for p in pkgs if p["source"] == s) for s in by_source}
    ssl = by_source["openssl"]
    assert "zlib" in by_source and "base-files" in by_source
    tracker = {
        "openssl": {
            "CVE-2099-0001": {"releases": {"trixie": {"status": "resolved", "urgency": "high",
                                                      "fixed_version": ssl["source_version"] + "+fix1"}}},
            "CVE-2099-0002": {"releases": {"trixie": {"status": "resolved", "urgency": "high",
                                                      "fixed_version": ssl["source_version"]}}},
        },
        "zlib": {"CVE-2099-0003": {"releases": {"trixie": {"status": "open", "urgency": "low", "nodsa": "minor",
                                                           "nodsa_reason": ""}}}},
        # in the image, and not affected: finds nothing
        "base-files": {"CVE-2099-0004": {"releases": {"trixie": {"status": "resolved", "fixed_version": "0",
                                                            "urgency": "high"}}}},
    }  # fmt: skip
    (work / "tracker.json").write_text(json.dumps(tracker))
    want = {(b, "CVE-2099-0001", "fixed") for b in binaries["openssl"]}
    want |= {(b, "CVE-2099-0003", "affected") for b in binaries["zlib"]}
    if example == "python-web":
        records = [
            (
                "GHSA-test-0001",
                "PyPI",
                "Flask",
                "ECOSYSTEM",
                [{"introduced": "0"}, {"fixed": "99.0"}],
                ["CVE-2099-0101"],
            ),
            ("GHSA-test-0002", "PyPI", "waitress", "ECOSYSTEM", [{"introduced": "0"}, {"fixed": "1.0"}], []),
            (
                "GHSA-test-0003",
                "PyPI",
                "Werkzeug",
                "ECOSYSTEM",
                [{"introduced": "0"}, {"last_affected": "99.0"}],
                [],
            ),
        ]
        want |= {("flask", "CVE-2099-0101", "fixed"), ("werkzeug", "GHSA-test-0003", "affected")}
    else:
        npm = json.loads((REPO / "examples" / "node-web" / "package-lock.json").read_text())["packages"]
        express, parser = npm["node_modules/express"]["version"], npm["node_modules/body-parser"]["version"]
        dev = npm["node_modules/is-number"]["version"]  # a devDependency: not in the image
        records = [
            (
                "GHSA-test-0011",
                "npm",
                "express",
                "SEMVER",
                [{"introduced": "0"}, {"fixed": "99.0.0"}],
                ["CVE-2099-0111"],
            ),
            (
                "GHSA-test-0012",
                "npm",
                "body-parser",
                "SEMVER",
                [{"introduced": "0"}, {"last_affected": parser}],
                [],
            ),
            (
                "GHSA-test-0013",
                "npm",
                "is-number",
                "SEMVER",
                [{"introduced": "0"}, {"last_affected": dev}],
                [],
            ),
            ("GHSA-test-0014", "npm", "express", "SEMVER", [{"introduced": "0"}, {"fixed": express}], []),
        ]
        want |= {("express", "CVE-2099-0111", "fixed"), ("body-parser", "GHSA-test-0012", "affected")}
    osv = work / "osv"
    osv.mkdir()
    for vid, eco, name, kind, events, aliases in records:
        doc = {"id": vid, "modified": "2026-01-01T00:00:00Z", "aliases": aliases,
               "database_specific": {"severity": "MODERATE"},
               "affected": [{"package": {"ecosystem": eco, "name": name},
                             "ranges": [{"type": kind, "events": events}]}]}  # fmt: skip
        (osv / f"{vid}.json").write_text(json.dumps(doc))
    return work / "tracker.json", osv, want


@pytest.mark.parametrize("example", ["python-web", "node-web"])
def test_example_image_and_its_syft_sboms_give_the_same_findings(
    tmp_path: Path, cache_dir: Path, example: str
) -> None:
    work = tmp_path / example
    shutil.copytree(REPO / "examples" / example, work, ignore=shutil.ignore_patterns("*.lock.json"))
    assert distill("lock", "app.yaml", "--arch", "amd64", cwd=work, cache=cache_dir).returncode == 0
    proc = distill(
        "build", "app.yaml", "--arch", "amd64", "-o", str(tmp_path / "img"), cwd=work, cache=cache_dir
    )
    assert proc.returncode == 0, proc.stderr
    lock = json.loads((work / "app.lock.json").read_text())
    tracker, osv, want = _generated_data(lock, example, tmp_path)
    dbs = ("--db", str(tracker), "--db", str(osv))

    def found(target: str) -> set[tuple[str, str, str]]:
        proc = distill("scan", target, *dbs, "--format", "json", cwd=work, cache=cache_dir)
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)["results"][0]
        assert doc["release"] == "trixie", target
        return {(f["package"], f["id"], f["state"]) for f in doc["findings"]}

    assert found(str(tmp_path / "img")) == want
    syft = Path(sys.executable).parent / "syft"
    env = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false", "HOME": str(tmp_path)}
    for fmt in ("spdx-json", "cyclonedx-json"):
        out = tmp_path / f"sbom-{fmt}.json"
        s = subprocess.run([str(syft), "scan", f"oci-dir:{tmp_path / 'img'}", "-q", "-o", f"{fmt}={out}"],
                           env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert s.returncode == 0, s.stderr
        assert found(str(out)) == want, fmt
