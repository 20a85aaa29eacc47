"""distill outdated, lock --update and scan against a generated, signed repository
served on 127.0.0.1 whose packages carry real changelogs, with tracker and OSV data made
for it: exact findings, waivers, --fail-on, SARIF and CycloneDX checked by their schemas,
the data cache, URLs and --offline, and bad input."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import vulnfixtures as vf
from debrepo import Key, Server
from distill.debian.version import compare_versions
from distill.vuln import changelog
from distill.vuln.versions import in_ranges, sort_key

TESTS = Path(__file__).resolve().parent


def run(
    *args: str, cwd: Path, cache: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "XDG_CACHE_HOME": str(cache), **(env or {})}
    for k in ("DISTILL_MIRROR", "DISTILL_VULN_DB"):
        if k not in (env or {}):
            e.pop(k, None)
    return subprocess.run(
        [sys.executable, "-m", "distill", *args], cwd=cwd, env=e, capture_output=True, text=True, timeout=300
    )


def one_line_error(proc: subprocess.CompletedProcess[str], pattern: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("distill: error:")]
    assert len(lines) == 1, proc.stderr
    assert pattern in lines[0], lines[0]


def spec(url: str, keyring: Path, suites: str) -> str:
    return (
        f"distro: debian13\narchs: [amd64]\nsources:\n  - url: {url}\n    suites: {suites}\n"
        f"keyring: [{keyring}]\npackages:\n  - app\n"
    )


@pytest.fixture
def project(tmp_path: Path, key: Key) -> Any:
    """A repository (trixie, trixie-updates, trixie-security), a spec locked from the
    release suite alone (release.yaml) and the same packages on every suite (full.yaml,
    with the release-only lock)."""
    root = tmp_path / "repo"
    vf.write_repository(root, key)
    server = Server(root)
    work = tmp_path / "work"
    work.mkdir()
    cache = tmp_path / "cache"
    (work / "release.yaml").write_text(spec(server.url, key.keyring, "[trixie]"))
    (work / "full.yaml").write_text(
        spec(server.url, key.keyring, "[trixie, trixie-updates, trixie-security]")
    )
    proc = run("lock", "release.yaml", "-q", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    (work / "full.lock.json").write_bytes((work / "release.lock.json").read_bytes())
    data = tmp_path / "data"
    data.mkdir()
    (data / "tracker.json").write_text(json.dumps(vf.tracker()))
    vf.write_osv_dir(data / "osv-debian", vf.osv_debian())
    yield server, work, cache, data
    server.close()


# -- formats -----------------------------------------------------------------------------------


def test_changelog_entries_cves_and_the_entries_between_two_versions() -> None:
    text = gzip.decompress(vf.changelog("zed", vf.ZED_SEC)).decode()
    entries = changelog.parse(text)
    assert [e.version for e in entries] == ["1:3.0-1+deb13u1", "1:3.0-1", "1:3.0~rc1-1"]
    assert entries[0].urgency == "medium" and entries[0].distributions == ("trixie-security",)
    assert entries[0].security and not entries[1].security
    assert entries[0].cves == ("CVE-2026-3001",) and "integer overflow" in entries[0].notes["CVE-2026-3001"]
    # after the installed version, up to the candidate: ~ sorts before the release, epochs first
    assert [e.version for e in changelog.between(entries, "1:3.0~rc1-1", "1:3.0-1+deb13u1")] == [
        "1:3.0-1+deb13u1",
        "1:3.0-1",
    ]
    assert changelog.between(entries, "1:3.0-1+deb13u1", "1:3.0-1+deb13u1") == []
    # one change item naming two CVEs, and continuation lines joined
    log = changelog.parse(
        "foo (2-1) bookworm-security; urgency=high\n\n  * Fix CVE-2024-0001 and\n    CVE-2024-12345.\n"
        "  * Unrelated.\n\n -- A <a@example.invalid>  Mon, 01 Jun 2026 12:00:00 +0000\n\n"
        "foo (1-1) unstable; urgency=low\n\n  * Initial.\n\n -- A <a@example.invalid>  Sun, 31 May 2026 12:00:00 +0000\n"
        "\nOld Changelog:\nnot an entry (0.1) here\n"
    )
    assert [e.version for e in log] == ["2-1", "1-1"]
    assert log[0].cves == ("CVE-2024-0001", "CVE-2024-12345")
    with pytest.raises(changelog.ChangelogError):
        changelog.decompress(b"not gzip", "x")


def test_version_orders_and_osv_ranges() -> None:
    assert compare_versions("1:1.0", "2.0") > 0 and compare_versions("1.0~rc1", "1.0") < 0
    assert sort_key("pypi", "1.0rc1") < sort_key("pypi", "1.0") < sort_key("pypi", "1.0.post1")
    assert sort_key("npm", "1.2.3-beta.2") < sort_key("npm", "1.2.3-beta.10") < sort_key("npm", "1.2.3")
    assert sort_key("maven", "1.0-alpha") < sort_key("maven", "1.0") < sort_key("maven", "1.0.1")
    assert sort_key("pypi", "not a version") is None
    r = ((("introduced", "0"), ("fixed", "2.0.1")),)
    assert in_ranges("pypi", "2.0.0", r) == (True, "2.0.1")
    assert in_ranges("pypi", "2.0.1", r) == (False, None)
    last = ((("introduced", "1.0"), ("last_affected", "1.5")),)
    assert in_ranges("npm", "1.5.0", ((("introduced", "1.0.0"), ("last_affected", "1.5.0")),)) == (True, None)
    assert in_ranges("pypi", "1.6", last) == (False, None) and in_ranges("pypi", "0.9", last) == (False, None)
    two = ((("introduced", "0"), ("fixed", "1.2")), (("introduced", "2.0"), ("fixed", "2.3")))
    assert in_ranges("pypi", "1.5", two) == (False, None) and in_ranges("pypi", "2.1", two) == (True, "2.3")
    assert in_ranges("deb", "1:1.0-1", ((("introduced", "0"), ("fixed", "2.0-1")),)) == (False, None)
    assert in_ranges("pypi", "3.0", (), ("3.0",)) == (True, None)


# -- outdated and lock --update -----------------------------------------------------------------


def test_outdated_names_security_updates_with_their_changelog_cves(project: Any) -> None:
    _, work, cache, _ = project
    proc = run("outdated", "full.yaml", "--format", "json", "-q", cwd=work, cache=cache)
    assert proc.returncode == 1, proc.stderr  # a security update waits
    report = json.loads(proc.stdout)["reports"][0]
    sec = {u["package"]: u for u in report["security"]}
    assert set(sec) == {"libfoo1", "libbar1", "bar-base", "zed"}
    assert (
        sec["libfoo1"]["cves"] == ["CVE-2026-1001", "CVE-2026-1002"] and sec["libfoo1"]["urgency"] == "high"
    )
    assert sec["libfoo1"]["suite"] == "trixie-security" and sec["libfoo1"]["candidate"] == "1.0-1+deb13u1"
    # libbar1's doc directory is a link: its changelog was read from bar-base, the same source's sibling
    assert sec["libbar1"]["cves"] == ["CVE-2026-2001"] and sec["libbar1"]["changelog"] == "bar-base"
    # the entry of the installed version (CVE-2025-0999) is not part of the update
    assert "CVE-2025-0999" not in sec["bar-base"]["cves"]
    assert sec["zed"]["cves"] == ["CVE-2026-3001"]
    assert [e["version"] for e in sec["zed"]["entries"]] == ["1:3.0-1+deb13u1", "1:3.0-1"]
    assert [u["package"] for u in report["ordinary"]] == ["tool"] and report["ordinary"][0]["cves"] == []
    # the release-only spec sees none of it (its suites are its own repository's release)
    proc = run("outdated", "release.yaml", "-q", cwd=work, cache=cache)
    assert proc.returncode == 0 and "up to date" in proc.stdout, proc.stdout + proc.stderr
    # terminal and markdown
    proc = run("outdated", "full.yaml", "-q", "--format", "markdown", cwd=work, cache=cache)
    assert (
        "| libfoo1 | 1.0-1 | 1.0-1+deb13u1 | trixie-security | high | CVE-2026-1001, CVE-2026-1002 |"
        in proc.stdout
    )
    proc = run("outdated", "full.yaml", "-q", cwd=work, cache=cache)
    assert "security updates" in proc.stdout and "other updates" in proc.stdout and proc.returncode == 1


def test_outdated_warm_reads_no_deb_and_works_offline(project: Any) -> None:
    server, work, cache, _ = project
    # the lock records the release suite only; the mirror's -updates and -security are added
    mirror = ("--mirror", server.url, "--security-mirror", server.url, "--keyring", str(key_of(work)))
    proc = run("outdated", "full.lock.json", "-q", *mirror, "--format", "json", cwd=work, cache=cache)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["reports"][0]["suites"] == ["trixie", "trixie-updates", "trixie-security"]
    debs = cache / "distill" / "debs"
    for p in debs.iterdir():
        p.unlink()  # the changelogs are cached apart: no .deb is needed again
    proc = run("outdated", "full.yaml", "-q", "--offline", "--format", "json", cwd=work, cache=cache)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["reports"][0]["security"][0]["cves"]
    assert not any(debs.iterdir())
    # a damaged changelog entry is read again from the .deb (one warning), never trusted
    entry = next((cache / "distill" / "vuln").glob("*.changelog"))
    entry.write_bytes(entry.read_bytes()[:-3] + b"xyz")
    proc = run("outdated", "full.yaml", "--format", "json", cwd=work, cache=cache)
    assert proc.returncode == 1 and "damaged" in proc.stderr, proc.stderr
    proc = run("cache", "verify", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_lock_update_moves_what_is_named_and_prints_the_diff(project: Any) -> None:
    _, work, cache, _ = project
    proc = run("lock", "full.yaml", "--update", "foo", "-q", cwd=work, cache=cache)  # a source name
    assert proc.returncode == 0, proc.stderr
    assert "libfoo1: 1.0-1 → 1.0-1+deb13u1 (fixes 2 CVEs: CVE-2026-1001, CVE-2026-1002)" in proc.stdout
    lock = json.loads((work / "full.lock.json").read_text())
    versions = {p["name"]: p["version"] for p in lock["archs"]["amd64"]["packages"]}
    assert versions["libfoo1"] == "1.0-1+deb13u1" and versions["zed"] == "1:3.0~rc1-1"
    assert versions["tool"] == "5.0-1" and versions["libbar1"] == "2.0-1"
    out = json.loads(run("outdated", "full.yaml", "--format", "json", "-q", cwd=work, cache=cache).stdout)
    assert "libfoo1" not in {u["package"] for u in out["reports"][0]["security"]}
    # a binary name moves what its exact relation needs too
    proc = run("lock", "full.yaml", "--update", "libbar1", "--json", "-q", cwd=work, cache=cache)
    changes = {c["package"]: c for c in json.loads(proc.stdout)["changes"]}
    assert set(changes) == {"libbar1", "bar-base"} and changes["bar-base"]["cves"] == ["CVE-2026-2001"]
    # everything
    proc = run("lock", "full.yaml", "--update", "-q", cwd=work, cache=cache)
    assert "zed: 1:3.0~rc1-1 → 1:3.0-1+deb13u1 (fixes 1 CVE: CVE-2026-3001)" in proc.stdout, proc.stdout
    assert "tool: 5.0-1 → 5.0-2\n" in proc.stdout
    proc = run("outdated", "full.yaml", "-q", cwd=work, cache=cache)
    assert proc.returncode == 0 and "up to date" in proc.stdout
    one_line_error(run("lock", "full.yaml", "--update", "nosuch", cwd=work, cache=cache), "--update nosuch")


# -- scan --------------------------------------------------------------------------------------------


def _findings(doc: dict[str, Any]) -> set[tuple[str, str, str, str, tuple[str, ...]]]:
    return {
        (f["package"], f["id"], f["state"], f["fix"], tuple(f["origins"]))
        for r in doc["results"]
        for f in r["findings"]
    }


def test_scan_matches_by_source_with_every_tracker_state(project: Any) -> None:
    _, work, cache, data = project
    proc = run(
        "scan", "full.yaml", "--db", str(data / "tracker.json"), "--db", str(data / "osv-debian"),
        "--format", "json", "-q", cwd=work, cache=cache,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert _findings(doc) == vf.EXPECTED
    by = {(f["package"], f["id"]): f for f in doc["results"][0]["findings"]}
    assert by[("libfoo1", "CVE-2026-1001")]["severity"] == "high"  # the tracker's urgency
    assert "DSA-9001-1" in by[("libfoo1", "CVE-2026-1001")]["aliases"]
    assert by[("libfoo1", "CVE-2026-1003")]["detail"] == "no-dsa"
    assert by[("libbar1", "CVE-2026-2003")]["detail"] == "postponed"
    assert by[("libbar1", "CVE-2026-2001")]["source"] == "bar"
    assert by[("zed", "CVE-2026-3001")]["severity"] == "medium"  # "medium**"
    assert by[("tool", "CVE-2026-4001")]["severity"] == "negligible"  # "unimportant"
    assert by[("libfoo1", "CVE-2026-5001")]["severity"] == "high"  # OSV ecosystem_specific urgency
    assert by[("zed", "CVE-2026-3003")]["available"] == "1:3.0-1+deb13u1"
    assert by[("zed", "CVE-2026-5003")]["severity"] == "critical"  # CVSS 3.1 base score 9.8
    assert by[("zed", "CVE-2026-5003")]["fixed_version"] == "1:3.0-1"
    sources = doc["results"][0]["sources"]
    assert [s["kind"] for s in sources] == ["archive", "tracker", "osv"]
    assert all(s["age_seconds"] is not None for s in sources[1:])
    # the same from DISTILL_VULN_DB, and from the lock itself
    env = {"DISTILL_VULN_DB": f"{data / 'tracker.json'} {data / 'osv-debian'}"}
    mirror = ("--mirror", project[0].url, "--security-mirror", project[0].url, "--keyring", key_of(work))
    proc = run("scan", "full.lock.json", *mirror, "--format", "json", "-q", cwd=work, cache=cache, env=env)
    assert _findings(json.loads(proc.stdout)) == vf.EXPECTED
    # without data: only what the changelogs name
    proc = run("scan", "full.yaml", "--format", "json", "-q", cwd=work, cache=cache)
    assert {(p, i) for p, i, *_ in _findings(json.loads(proc.stdout))} == {
        ("libfoo1", "CVE-2026-1001"), ("libfoo1", "CVE-2026-1002"), ("libbar1", "CVE-2026-2001"),
        ("bar-base", "CVE-2026-2001"), ("zed", "CVE-2026-3001"),
    }  # fmt: skip
    # the terminal groups by package
    proc = run("scan", "full.yaml", "--db", str(data / "tracker.json"), "-q", cwd=work, cache=cache)
    assert "libfoo1" in proc.stdout and "fixed by rebuilding" in proc.stdout and "no fix yet" in proc.stdout


def key_of(work: Path) -> str:
    return next(
        line for line in (work / "full.yaml").read_text().splitlines() if line.startswith("keyring:")
    )[10:-1]


def test_scan_of_the_built_image_finds_what_the_lock_does(project: Any, tmp_path: Path) -> None:
    server, work, cache, data = project
    proc = run("build", "release.yaml", "--locked", "-o", str(tmp_path / "img"), "-q", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    dbs = ("--db", str(data / "tracker.json"), "--db", str(data / "osv-debian"))
    # an image is compared with its release's suites on the mirror named (here, the fixture's)
    mirror = ("--mirror", server.url, "--security-mirror", server.url, "--keyring", key_of(work))
    proc = run("scan", str(tmp_path / "img"), "--distro", "debian13", *dbs, *mirror, "--format", "json", "-q",
               cwd=work, cache=cache)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert _findings(doc) == vf.EXPECTED
    assert doc["results"][0]["kind"] == "image"
    # without --distro, the image's os-release (distill writes it) names the release
    proc = run("scan", str(tmp_path / "img"), *dbs, *mirror, "--format", "json", "-q", cwd=work, cache=cache)
    assert _findings(json.loads(proc.stdout)) == vf.EXPECTED
    assert json.loads(proc.stdout)["results"][0]["release"] == "trixie"
    # the same image in a registry (Debian's docker-registry on 127.0.0.1), read through the API
    from registries import Registry

    reg = Registry(tmp_path / "reg")
    try:
        push = ["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{tmp_path / 'img'}",
                f"docker://127.0.0.1:{reg.port}/fixture/app:1"]  # fmt: skip
        assert subprocess.run(push, capture_output=True, text=True, timeout=120).returncode == 0
        ref = f"docker://127.0.0.1:{reg.port}/fixture/app:1"
        # a cache of its own: the package list is kept by layer digests, and the layout's are the same
        proc = run("scan", ref, *dbs, *mirror, "--format", "json", "-q", cwd=work, cache=tmp_path / "c2")
        assert proc.returncode == 0, proc.stderr
        assert _findings(json.loads(proc.stdout)) == vf.EXPECTED
        assert list((tmp_path / "c2" / "distill" / "vuln").glob("*.inventory"))
    finally:
        reg.close()
    # an SBOM that does not say which release its Debian packages are from
    bom = {"bomFormat": "CycloneDX", "specVersion": "1.6", "components": [{"type": "library", "name": "zed",
           "version": "1:3.0~rc1-1", "purl": "pkg:deb/debian/zed@1:3.0~rc1-1?arch=amd64"}]}  # fmt: skip
    (tmp_path / "bom.json").write_text(json.dumps(bom))
    one_line_error(
        run("scan", str(tmp_path / "bom.json"), cwd=work, cache=cache), "does not say which Debian release"
    )
    # outdated reads the image's dpkg database the same way
    proc = run("outdated", str(tmp_path / "img"), "--distro", "debian13", *mirror, "--format", "json", "-q",
               cwd=work, cache=cache)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    sec = {u["package"]: u["cves"] for u in json.loads(proc.stdout)["reports"][0]["security"]}
    assert sec == {"libfoo1": ["CVE-2026-1001", "CVE-2026-1002"], "libbar1": ["CVE-2026-2001"],
                   "bar-base": ["CVE-2026-2001"], "zed": ["CVE-2026-3001"]}  # fmt: skip


def test_waivers_and_fail_on(project: Any, tmp_path: Path) -> None:
    _, work, cache, data = project
    db = ("--db", str(data / "tracker.json"))
    assert run("scan", "full.yaml", *db, "--fail-on", "high", "-q", cwd=work, cache=cache).returncode == 1
    assert run("scan", "full.yaml", *db, "--fail-on", "critical", "-q", cwd=work, cache=cache).returncode == 0
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "waivers:\n"
        "  - {id: CVE-2026-1001, package: libfoo1, reason: the parser is never reached, expires: 2999-01-01}\n"
        "  - {id: CVE-2026-3003, reason: accepted until the rebuild, expires: 2020-01-01}\n"  # expired
    )
    proc = run("scan", "full.yaml", *db, "--ignore", str(waivers), "--fail-on", "high", "--format", "json", "-q",
               cwd=work, cache=cache)  # fmt: skip
    assert proc.returncode == 1  # CVE-2026-3003 (high) still counts: its waiver expired
    r = json.loads(proc.stdout)["results"][0]
    assert [(f["package"], f["id"]) for f in r["waived"]] == [("libfoo1", "CVE-2026-1001")]
    assert r["waived"][0]["waiver"]["reason"] == "the parser is never reached"
    assert ("zed", "CVE-2026-3003") in {(f["package"], f["id"]) for f in r["findings"]}
    assert any("expired on 2020-01-01" in n for n in r["notes"])
    waivers.write_text(
        "waivers:\n  - {id: CVE-2026-1001, reason: r}\n  - {id: CVE-2026-1002, reason: r}\n"
        "  - {id: CVE-2026-3003, reason: r}\n"
    )
    assert run("scan", "full.yaml", *db, "--ignore", str(waivers), "--fail-on", "high", "-q", cwd=work,
               cache=cache).returncode == 0  # fmt: skip
    proc = run("scan", "full.yaml", *db, "--only-fixed", "--format", "json", "-q", cwd=work, cache=cache)
    assert {f["state"] for f in json.loads(proc.stdout)["results"][0]["findings"]} == {"fixed"}
    for bad, msg in (
        ("waivers:\n  - {id: CVE-1, package: x}\n", "reason"),
        ("waivers:\n  - {id: CVE-1, reason: r, expires: soon}\n", "expires"),
        ("waivers:\n  - {id: CVE-1, reason: r, colour: red}\n", "unknown field 'colour'"),
        ("waivers: [\n", "invalid YAML"),
    ):
        waivers.write_text(bad)
        one_line_error(run("scan", "full.yaml", "--ignore", str(waivers), cwd=work, cache=cache), msg)


def test_sarif_and_cyclonedx_pass_their_schemas(project: Any, tmp_path: Path) -> None:
    import jsonschema
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    _, work, cache, data = project
    waivers = tmp_path / "w.yaml"
    waivers.write_text(
        "- {id: CVE-2026-1003, reason: minor, state: not_affected, justification: code_not_reachable}\n"
    )
    db = ("--db", str(data / "tracker.json"), "--db", str(data / "osv-debian"), "--ignore", str(waivers))
    proc = run(
        "scan",
        "full.yaml",
        *db,
        "--format",
        "sarif",
        "-o",
        str(tmp_path / "out.sarif"),
        cwd=work,
        cache=cache,
    )
    assert proc.returncode == 0, proc.stderr
    sarif = json.loads((tmp_path / "out.sarif").read_text())
    schema = json.loads((TESTS / "schemas" / "sarif-2.1.0-rtm.5.json").read_text())
    jsonschema.validate(sarif, schema)
    results = sarif["runs"][0]["results"]
    assert len(results) == len(vf.EXPECTED)
    assert {r["ruleId"] for r in results if r.get("suppressions")} == {"CVE-2026-1003"}
    assert {r["level"] for r in results} >= {"error", "warning", "note"}
    proc = run("scan", "full.yaml", *db, "--format", "cyclonedx", "-q", cwd=work, cache=cache)
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(proc.stdout)
    assert errors is None, errors
    bom = json.loads(proc.stdout)
    vulns = {(v["id"], v["affects"][0]["ref"].split("@")[0]) for v in bom["vulnerabilities"]}
    assert ("CVE-2026-1001", "pkg:deb/debian/libfoo1") in vulns
    assert ("CVE-2026-2001", "pkg:deb/debian/libbar1") in vulns
    waived = next(v for v in bom["vulnerabilities"] if v["id"] == "CVE-2026-1003")
    assert waived["analysis"] == {
        "state": "not_affected",
        "detail": "minor",
        "justification": "code_not_reachable",
    }
    refs = {c["bom-ref"] for c in bom["components"]}
    assert all(a["ref"] in refs for v in bom["vulnerabilities"] for a in v["affects"])


# -- data sources: formats, the cache, URLs ---------------------------------------------------------


def test_data_is_recognised_by_content_and_indexed_once(project: Any, tmp_path: Path) -> None:
    _, work, cache, data = project
    zipped = vf.write_osv_zip(tmp_path / "all.zip", vf.osv_debian())
    renamed = tmp_path / "data.bin"  # the name says nothing: the content does
    renamed.write_text(json.dumps(vf.tracker()))
    gz = tmp_path / "tracker.json.gz"
    gz.write_bytes(gzip.compress((data / "tracker.json").read_bytes()))
    single = tmp_path / "one.json"
    single.write_text(json.dumps(vf.osv_debian()[0]))
    want = {f[:2] for f in vf.EXPECTED if "osv" in f[4] or "tracker" in f[4]}
    got: set[tuple[str, str]] = set()
    for db in (renamed, gz, zipped, single):
        proc = run("scan", "full.yaml", "--db", str(db), "--format", "json", "-q", cwd=work, cache=cache)
        assert proc.returncode == 0, proc.stderr
        r = json.loads(proc.stdout)["results"][0]
        assert r["sources"][1]["kind"] == ("tracker" if db in (renamed, gz) else "osv")
        got |= {(f["package"], f["id"]) for f in r["findings"] if set(f["origins"]) - {"archive"}}
    assert got == want
    indexes = sorted((cache / "distill" / "vuln").glob("*.index"))
    assert len(indexes) == 4  # one per data file, named by its SHA256
    before = [p.stat().st_mtime_ns for p in indexes]
    run("scan", "full.yaml", "--db", str(renamed), "-q", cwd=work, cache=cache)
    assert [p.stat().st_mtime_ns for p in indexes] == before  # read from the index, not made again


def test_data_url_is_cached_with_its_age_and_offline_uses_it(project: Any, tmp_path: Path) -> None:
    _, work, cache, _ = project
    served = tmp_path / "served"
    served.mkdir()
    (served / "tracker.json").write_text(json.dumps(vf.tracker()))
    srv = Server(served)
    try:
        url = f"{srv.url}/tracker.json"
        proc = run("scan", "full.yaml", "--db", url, "--format", "json", "-q", cwd=work, cache=cache)
        assert proc.returncode == 0, proc.stderr
        first = json.loads(proc.stdout)["results"][0]
        assert first["sources"][1]["name"] == url and first["sources"][1]["age_seconds"] <= 60
        proc = run(
            "scan",
            "full.yaml",
            "--db",
            url,
            "--offline",
            "--format",
            "json",
            "-q",
            cwd=work,
            cache=cache,
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["results"][0]["findings"] == first["findings"]
        assert srv.faults.hits["/tracker.json"] == 1
    finally:
        srv.close()
    proc = run("scan", "full.yaml", "--db", url, cwd=work, cache=cache)
    one_line_error(proc, "cannot be fetched")
    assert "--offline uses the copy cached" in proc.stderr
    proc = run("scan", "full.yaml", "--db", url, "--offline", "-q", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    proc = run("scan", "full.yaml", "--db", "http://127.0.0.1:9/none.json", cwd=work, cache=cache)
    one_line_error(proc, "cannot be fetched")
    assert "--offline" in proc.stderr


def test_bad_input_is_one_line(project: Any, tmp_path: Path) -> None:
    _, work, cache, data = project
    text = (data / "tracker.json").read_text()
    cases: list[tuple[str, bytes, str]] = [
        ("truncated.json", text[: len(text) // 2].encode(), "not valid JSON"),
        (
            "wrong.json",
            json.dumps({"foo": {"CVE-1": {"releases": {"trixie": []}}}}).encode(),
            "not a release record",
        ),
        (
            "status.json",
            json.dumps({"foo": {"CVE-1": {"releases": {"trixie": {"status": "weird"}}}}}).encode(),
            "unknown status",
        ),
        ("other.json", b'{"hello": "world"}', "neither a Debian Security Tracker export nor OSV records"),
        ("bad.zip", b"PK\x03\x04" + b"\0" * 64, "not a readable zip"),
        ("bad.gz", b"\x1f\x8b" + b"\0" * 16, "gzip"),
    ]
    for name, body, msg in cases:
        (tmp_path / name).write_bytes(body)
        one_line_error(run("scan", "full.yaml", "--db", str(tmp_path / name), cwd=work, cache=cache), msg)
    one_line_error(
        run("scan", "full.yaml", "--db", str(tmp_path / "nothing"), cwd=work, cache=cache),
        "no such file",
    )
    osv = tmp_path / "osvbad"
    osv.mkdir()
    (osv / "x.json").write_text('{"id": "X", "affected": [{"package": 3}]}')
    one_line_error(run("scan", "full.yaml", "--db", str(osv), cwd=work, cache=cache), "has no package")
    # a tracker without the target's release
    only_bookworm = {"foo": {"CVE-1": {"releases": {"bookworm": {"status": "open", "urgency": "low"}}}}}
    (tmp_path / "bookworm.json").write_text(json.dumps(only_bookworm))
    one_line_error(
        run("scan", "full.yaml", "--db", str(tmp_path / "bookworm.json"), cwd=work, cache=cache),
        "has no records for Debian trixie",
    )
    # SBOMs and other JSON of no known format
    (tmp_path / "sbom.json").write_text(json.dumps({"spdxVersion": "SPDX-3.0", "packages": []}))
    one_line_error(run("scan", str(tmp_path / "sbom.json"), cwd=work, cache=cache), "SPDX version")
    (tmp_path / "what.json").write_text(json.dumps({"some": "thing"}))
    one_line_error(
        run("scan", str(tmp_path / "what.json"), cwd=work, cache=cache), "neither a distill lock nor an SBOM"
    )
    one_line_error(
        run("outdated", str(tmp_path / "what.json"), cwd=work, cache=cache),
        "neither a distill lock nor an SBOM",
    )
    one_line_error(run("scan", "full.yaml", "--db", "ftp://x/y", cwd=work, cache=cache), "only http")


def test_sbom_from_syft_of_a_fixture_image_is_read(project: Any, tmp_path: Path) -> None:
    """Syft's SPDX and CycloneDX of the built image name the same Debian packages (and
    their source packages, through the upstream qualifier) as the image."""
    server, work, cache, data = project
    proc = run(
        "build", "release.yaml", "--locked", "-o", str(tmp_path / "img.tar"), "-q", cwd=work, cache=cache
    )
    assert proc.returncode == 0, proc.stderr
    mirror = ("--mirror", server.url, "--security-mirror", server.url, "--keyring", key_of(work))
    syft = Path(sys.executable).parent / "syft"
    env = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false", "HOME": str(tmp_path)}
    dbs = ("--db", str(data / "tracker.json"), "--db", str(data / "osv-debian"))
    for fmt in ("spdx-json", "cyclonedx-json"):
        out = tmp_path / f"sbom.{fmt}.json"
        s = subprocess.run([str(syft), "scan", f"oci-archive:{tmp_path / 'img.tar'}", "-q", "-o", f"{fmt}={out}"],
                           env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert s.returncode == 0, s.stderr
        proc = run("scan", str(out), "--distro", "debian13", *dbs, *mirror, "--format", "json", "-q",
                   cwd=work, cache=cache)  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert _findings(json.loads(proc.stdout)) == vf.EXPECTED, fmt


def _jar(entries: dict[str, bytes]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_application_packages_in_an_image_are_matched_with_osv(project: Any, tmp_path: Path) -> None:
    """PyPI (dist-info), npm (node_modules) and Maven (pom.properties in a jar, and in a jar
    inside it) packages put into an image by a spec's paths, matched with OSV records in
    each ecosystem's order; what Debian packaged is left to the Debian data."""
    server, work, cache, _ = project
    inner = _jar(
        {
            "META-INF/maven/org.example/inner/pom.properties": b"groupId=org.example\nartifactId=inner\nversion=2.0\n"
        }
    )
    (work / "demo.jar").write_bytes(
        _jar(
            {
                "META-INF/maven/org.example/demo/pom.properties": b"# built\ngroupId=org.example\nartifactId=demo\nversion=1.2.0\n",
                "BOOT-INF/lib/inner-2.0.jar": inner,
            }
        )
    )
    meta = "Metadata-Version: 2.1\nName: Flask\nVersion: 3.1.0\n\nLong description: Name: nope\n"
    debian_meta = "Metadata-Version: 2.1\nName: requests\nVersion: 2.0.0\n"
    (work / "apps.yaml").write_text(
        (work / "release.yaml").read_text()
        + "paths:\n"
        + "  - {path: /app/libs/demo.jar, type: file, source: demo.jar}\n"
        + '  - {path: /app/node_modules/left-pad/package.json, type: file, content: \'{"name": "left-pad", "version": "1.3.0"}\'}\n'
        + '  - {path: /app/node_modules/@scope/tool/package.json, type: file, content: \'{"name": "@scope/tool", "version": "0.1.0-beta.2"}\'}\n'
        + f"  - {{path: /usr/local/lib/python3.13/dist-packages/flask-3.1.0.dist-info/METADATA, type: file, content: {json.dumps(meta)}}}\n"
        + f"  - {{path: /usr/lib/python3/dist-packages/requests-2.0.0.dist-info/METADATA, type: file, content: {json.dumps(debian_meta)}}}\n"
    )
    assert run("lock", "apps.yaml", "-q", cwd=work, cache=cache).returncode == 0
    proc = run("build", "apps.yaml", "--locked", "-o", str(tmp_path / "apps"), "-q", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr

    def rec(
        vid: str, eco: str, name: str, events: list[dict[str, str]], kind: str = "ECOSYSTEM"
    ) -> dict[str, Any]:
        return {"id": vid, "modified": "2026-06-01T00:00:00Z", "database_specific": {"severity": "HIGH"},
                "affected": [{"package": {"ecosystem": eco, "name": name}, "ranges": [{"type": kind, "events": events}]}]}  # fmt: skip

    records = [
        rec("GHSA-demo", "Maven", "org.example:demo", [{"introduced": "0"}, {"fixed": "1.2.1"}]),
        rec("GHSA-demo-old", "Maven", "org.example:demo", [{"introduced": "0"}, {"fixed": "1.2.0"}]),
        rec("GHSA-inner", "Maven", "org.example:inner", [{"introduced": "1.0"}, {"last_affected": "2.0"}]),
        rec("GHSA-pad", "npm", "left-pad", [{"introduced": "0"}, {"fixed": "1.3.1"}], "SEMVER"),
        rec(
            "GHSA-tool",
            "npm",
            "@scope/tool",
            [{"introduced": "0.1.0-beta.1"}, {"fixed": "0.1.0-beta.10"}],
            "SEMVER",
        ),
        rec("PYSEC-flask", "PyPI", "flask", [{"introduced": "0"}, {"fixed": "3.1.1"}]),
        rec("PYSEC-requests", "PyPI", "requests", [{"introduced": "0"}, {"fixed": "9.0"}]),
    ]
    osv = vf.write_osv_dir(tmp_path / "osv-apps", records)
    mirror = ("--mirror", server.url, "--security-mirror", server.url, "--keyring", key_of(work))
    proc = run(
        "scan",
        str(tmp_path / "apps"),
        "--db",
        str(osv),
        *mirror,
        "--format",
        "json",
        "-q",
        cwd=work,
        cache=cache,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)["results"][0]
    apps = {
        (f["ecosystem"], f["package"], f["version"], f["id"], f["fix"])
        for f in doc["findings"]
        if f["ecosystem"] != "deb"
    }
    assert apps == {
        ("maven", "org.example:demo", "1.2.0", "GHSA-demo", "fixed by upgrading it"),
        ("maven", "org.example:inner", "2.0", "GHSA-inner", "no fix yet"),
        ("npm", "left-pad", "1.3.0", "GHSA-pad", "fixed by upgrading it"),
        ("npm", "@scope/tool", "0.1.0-beta.2", "GHSA-tool", "fixed by upgrading it"),  # beta.2 < beta.10
        ("pypi", "flask", "3.1.0", "PYSEC-flask", "fixed by upgrading it"),
    }
    by = {f["id"]: f for f in doc["findings"]}
    assert by["GHSA-demo"]["purl"] == "pkg:maven/org.example/demo@1.2.0"
    assert by["GHSA-tool"]["purl"] == "pkg:npm/%40scope/tool@0.1.0-beta.2"
    assert by["GHSA-inner"]["location"] == "/app/libs/demo.jar!/BOOT-INF/lib/inner-2.0.jar"
    assert by["PYSEC-flask"]["severity"] == "high" and by["PYSEC-flask"]["fixed_version"] == "3.1.1"


def test_trivy_shaped_sboms_give_the_lock_s_findings(project: Any, tmp_path: Path) -> None:
    """Trivy is not installed here: its documents are written as Trivy writes them (epoch as a
    purl qualifier; source name, version, release and epoch as CycloneDX properties; SPDX's
    sourceInfo), for the fixture's packages."""
    server, work, cache, data = project
    lock = json.loads((work / "full.lock.json").read_text())["archs"]["amd64"]["packages"]

    def split(v: str) -> tuple[str, str, str]:
        epoch, _, rest = v.rpartition(":")
        upstream, _, release = rest.rpartition("-")
        return epoch, upstream, release

    components, packages = [], []
    for p in lock:
        epoch, up, rel = split(p["version"])
        q = f"arch={p['architecture']}&distro=debian-13.1" + (f"&epoch={epoch}" if epoch else "")
        purl = f"pkg:deb/debian/{p['name']}@{up}-{rel}?{q}"
        s_epoch, s_up, s_rel = split(p["source_version"])
        props = [{"name": "aquasecurity:trivy:SrcName", "value": p["source"]},
                 {"name": "aquasecurity:trivy:SrcVersion", "value": s_up},
                 {"name": "aquasecurity:trivy:SrcRelease", "value": s_rel}]  # fmt: skip
        if s_epoch:
            props.append({"name": "aquasecurity:trivy:SrcEpoch", "value": s_epoch})
        components.append({"bom-ref": purl, "type": "library", "name": p["name"], "version": p["version"],
                           "purl": purl, "properties": props})  # fmt: skip
        packages.append({"name": p["name"], "SPDXID": f"SPDXRef-{p['name']}", "versionInfo": p["version"],
                         "sourceInfo": f"built package from: {p['source']} {p['source_version']}",
                         "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                                           "referenceLocator": purl}]})  # fmt: skip
    cdx = {"bomFormat": "CycloneDX", "specVersion": "1.5", "components": components}
    spdx = {"spdxVersion": "SPDX-2.3", "packages": packages}
    (tmp_path / "trivy.cdx.json").write_text(json.dumps(cdx))
    (tmp_path / "trivy.spdx.json").write_text(json.dumps(spdx))
    dbs = ("--db", str(data / "tracker.json"), "--db", str(data / "osv-debian"))
    mirror = ("--mirror", server.url, "--security-mirror", server.url, "--keyring", key_of(work))
    for name in ("trivy.cdx.json", "trivy.spdx.json"):
        proc = run(
            "scan", str(tmp_path / name), *dbs, *mirror, "--format", "json", "-q", cwd=work, cache=cache
        )
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(proc.stdout)
        assert doc["results"][0]["release"] == "trixie"  # from the distro qualifier
        assert _findings(doc) == vf.EXPECTED, name
        zed = next(f for f in doc["results"][0]["findings"] if f["package"] == "zed")
        assert zed["version"] == "1:3.0~rc1-1" and zed["source_version"] == "1:3.0~rc1-1"


def test_an_image_distill_did_not_build_is_read_from_its_dpkg_status(project: Any, tmp_path: Path) -> None:
    """A conventional layout (made by the tests' OCI tools): /var/lib/dpkg/status with
    installed and removed packages, os-release, and a later layer whose whiteout removes a
    Python package: outdated and scan read what is installed in the final filesystem."""
    from ocitools import F, layer_tar, write_layout

    server, work, cache, data = project
    lock = json.loads((work / "full.lock.json").read_text())["archs"]["amd64"]["packages"]
    paras = [
        f"Package: {p['name']}\nStatus: install ok installed\nArchitecture: {p['architecture']}\n"
        f"Version: {p['version']}\n" + (f"Source: {p['source']}\n" if p["source"] != p["name"] else "")
        for p in lock
    ]
    paras.append(
        "Package: gone\nStatus: deinstall ok config-files\nArchitecture: amd64\nVersion: 1.0\nSource: foo\n"
    )
    base = layer_tar([
        F("etc/os-release", b'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\nVERSION_ID="13"\nVERSION_CODENAME=trixie\n'),
        F("var/lib/dpkg/status", "\n".join(paras).encode()),
        F("usr/local/lib/python3.13/site-packages/flask-3.1.0.dist-info/METADATA", b"Name: Flask\nVersion: 3.1.0\n"),
        F("usr/local/lib/python3.13/site-packages/old-1.0.dist-info/METADATA", b"Name: old\nVersion: 1.0\n"),
    ])  # fmt: skip
    top = layer_tar([F("usr/local/lib/python3.13/site-packages/.wh.old-1.0.dist-info")])
    write_layout(tmp_path / "conv", [base, top])
    mirror = ("--mirror", server.url, "--security-mirror", server.url, "--keyring", key_of(work))
    proc = run("outdated", str(tmp_path / "conv"), *mirror, "--format", "json", "-q", cwd=work, cache=cache)
    assert proc.returncode == 1, proc.stderr
    r = json.loads(proc.stdout)["reports"][0]
    assert {u["package"] for u in r["security"]} == {"libfoo1", "libbar1", "bar-base", "zed"}
    assert r["checked"] == len(lock)  # "gone" is not installed
    osv = vf.write_osv_dir(tmp_path / "osv-py", [
        {"id": "PYSEC-old", "affected": [{"package": {"ecosystem": "PyPI", "name": "old"},
                                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}]}]},
        {"id": "PYSEC-flask", "affected": [{"package": {"ecosystem": "PyPI", "name": "flask"},
                                            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "3.1.1"}]}]}]},
    ])  # fmt: skip
    dbs = ("--db", str(data / "tracker.json"), "--db", str(data / "osv-debian"), "--db", str(osv))
    proc = run("scan", str(tmp_path / "conv"), *dbs, *mirror, "--format", "json", "-q", cwd=work, cache=cache)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    debs = {f for f in _findings(doc) if f[0] != "flask"}
    assert debs == vf.EXPECTED
    assert {f[:2] for f in _findings(doc) if f[0] == "flask"} == {
        ("flask", "PYSEC-flask")
    }  # "old" is whited out


def test_a_target_that_cannot_be_read_does_not_stop_the_others(project: Any, tmp_path: Path) -> None:
    _, work, cache, data = project
    (tmp_path / "broken").mkdir()
    proc = run("scan", str(tmp_path / "broken"), "full.yaml", "--db", str(data / "tracker.json"), "--format",
               "json", "-q", cwd=work, cache=cache)  # fmt: skip
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len([ln for ln in proc.stderr.splitlines() if ln.startswith("distill: error:")]) == 1
    doc = json.loads(proc.stdout)
    assert [r["target"] for r in doc["results"]] == ["full.yaml"] and len(doc["errors"]) == 1
    proc = run(
        "outdated", "full.yaml", str(tmp_path / "broken"), "-q", "--format", "json", cwd=work, cache=cache
    )
    assert proc.returncode == 2 and json.loads(proc.stdout)["reports"][0]["security"]


def test_the_scan_table_sends_no_control_characters_to_the_terminal() -> None:
    """A package name from an image or a summary from a feed is input: an escape sequence
    in it is shown as '?' in the terminal table (it went to the terminal as it was)."""
    import io

    from distill.vuln.inventory import Inventory
    from distill.vuln.model import Finding, Pkg
    from distill.vuln.report import scan_terminal
    from distill.vuln.scan import ScanResult

    pkg = Pkg("npm", "evil\x1b]0;owned\x07", "1.0\x1b[2J")
    finding = Finding("GHSA-x", pkg, "fixed", severity="high", fixed_version="1.1", summary="bad\rthing")
    out = io.StringIO()
    scan_terminal([ScanResult("image\x1b[31m", Inventory("i", "image", [pkg]), [finding])], out)
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text, repr(text)
    assert (
        "evil?]0;owned?" in text and "bad?thing" in text and text.startswith("image?[31m: 1 vulnerabilities")
    )
