"""SBOMs: DEP-5 licenses, the catalog streamed from an image distill did not build, and
``distill build`` / ``distill sbom`` on a generated, signed repository served on
127.0.0.1 (the lock's .deb hashes, archive paths and URLs, source packages, epochs,
dependencies, multi-arch, determinism, bad input). Every document goes through
spdx-tools' validator and cyclonedx-python-lib's 1.6 schema validator."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from debrepo import Entry, Key, Pkg, Server
from distill.archive.cache import unseal
from distill.sbom import documents
from distill.sbom.licenses import NOASSERTION, declared, metadata_expression
from ocitools import F, layer_tar, write_layout
from sbomcheck import purl_of, spdx_packages, valid_cyclonedx, valid_spdx
from test_assemble import MERGED
from test_cli import MakeRepo, assert_one_line_error, run

DEP5 = b"""\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: foo

Files: *
Copyright: 2020 Someone
License: GPL-2+ or Artistic-2.0, and BSD-3-clause

Files: lib/*
Copyright: 2021 Else
License: Expat

Files: data/*
Copyright: none
License: public-domain

Files: extra/*
Copyright: 2022 Third
License: GPL-3+ with Autoconf-exception-3.0 exception

License: public-domain
 The files are in the public domain.
 .
 Do what you like.
"""
FREE_TEXT = b"This package was debianized by someone.\n\nLicense: GPL version 2 or later, see /usr/share/common-licenses\n"


# -- licenses ------------------------------------------------------------------------


def test_dep5_license_lines_become_one_spdx_expression() -> None:
    d = declared(DEP5)
    assert d.expression == (
        "BSD-3-Clause AND (GPL-2.0-or-later OR Artistic-2.0) AND GPL-3.0-or-later WITH Autoconf-exception-3.0"
        " AND LicenseRef-public-domain AND MIT"
    )
    assert d.refs == {"LicenseRef-public-domain": "The files are in the public domain.\n\nDo what you like."}


def test_free_text_and_missing_copyrights_assert_nothing() -> None:
    assert declared(FREE_TEXT).expression == NOASSERTION  # 'License:' words in free text are not read
    assert declared(None).expression == NOASSERTION
    assert declared(b"").expression == NOASSERTION


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("GPL-2", "GPL-2.0-only"),
        ("LGPL-2.1+", "LGPL-2.1-or-later"),
        ("GPL", "LicenseRef-GPL"),  # no version: the file's own name, not a guess at one
        ("Artistic", "LicenseRef-Artistic"),
        ("Perl", "Artistic-1.0-Perl OR GPL-1.0-or-later"),  # DEP-5's definition of Perl
        ("BSD-3-clause-Berkeley", "LicenseRef-BSD-3-clause-Berkeley"),
        ("zlib", "Zlib"),
        ("MPL-1.1+", "MPL-1.1+"),
        ("Zope-2.1", "ZPL-2.1"),
        ("GFDL-NIV-1.3+", "GFDL-1.3-no-invariants-or-later"),
        ("A or B and C", "LicenseRef-A OR LicenseRef-B AND LicenseRef-C"),  # and binds tighter, as in SPDX
        ("MIT or Apache-2.0, and ISC, or BSD-2-clause", "((MIT OR Apache-2.0) AND ISC) OR BSD-2-Clause"),
        ("GPL-2+ with OpenSSL exception", "LicenseRef-GPL-2-plus-with-OpenSSL-exception"),
    ],
)
def test_dep5_names(line: str, expected: str) -> None:
    text = DEP5.split(b"\n\n")[0] + f"\n\nFiles: *\nCopyright: x\nLicense: {line}\n".encode()
    assert declared(text).expression == expected


@pytest.mark.parametrize("line", ["GPL-2+,", "and MIT", "MIT or", "GPL-2, MIT", "MIT with"])
def test_a_dep5_line_that_does_not_parse_asserts_nothing(line: str) -> None:
    text = DEP5.split(b"\n\n")[0] + f"\n\nFiles: *\nCopyright: x\nLicense: {line}\n".encode()
    assert declared(text).expression == NOASSERTION


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MIT", "MIT"),
        ("mit", "MIT"),  # identifiers are case-insensitive in SPDX
        ("MIT OR Apache-2.0", "MIT OR Apache-2.0"),
        ("MIT AND (Apache-2.0 OR BSD-2-Clause)", "MIT AND (Apache-2.0 OR BSD-2-Clause)"),
        ("GPL-2.0+", "GPL-2.0-or-later"),  # SPDX's deprecated spelling, as SPDX defines it
        ("GPL-2.0-or-later WITH Classpath-exception-2.0", "GPL-2.0-or-later WITH Classpath-exception-2.0"),
        ("Apache-2.0+", "Apache-2.0+"),
        ("BSD", None),  # which BSD: not a guess
        ("Apache 2.0", None),
        ("GPL", None),
        ("mit or isc", None),  # operators are upper case
        ("LicenseRef-Proprietary", None),
        ("(MIT", None),
        ("MIT OR", None),
        ("MIT WITH MIT", None),
        ("(" * 20 + "MIT" + ")" * 20, None),  # nesting is bounded
    ],
)
def test_package_metadata_licenses_are_kept_only_when_they_are_spdx(text: str, expected: str | None) -> None:
    assert metadata_expression(text) == expected


# -- an image distill did not build -----------------------------------------------------


def jar(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


STATUS = b"""\
Package: foo
Status: install ok installed
Version: 1:2.0-1
Architecture: amd64
Maintainer: Foo Team <foo@example.invalid>
Depends: libfoo1 (>= 1:2.0), missing | libbar
Description: the foo tool

Package: libfoo1
Status: install ok installed
Source: foo (1:2.0-1)
Version: 1:2.0-1+b1
Architecture: amd64
Maintainer: Ann Other <ann@example.invalid>
Provides: libbar
Description: foo's library

Package: python3-six
Status: install ok installed
Source: six
Version: 1.16.0-4
Architecture: all
Maintainer: Debian Python Team <team+python@tracker.debian.org>

Package: gone
Status: deinstall ok config-files
Version: 3
Architecture: amd64
"""
APP_JAR = jar(
    {
        "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\r\nMain-Class: a.Main\r\n",
        "META-INF/maven/org.example/app/pom.properties": b"groupId=org.example\nartifactId=app\nversion=1.2.3\n",
        "META-INF/maven/com.shaded/lib/pom.properties": b"groupId=com.shaded\nartifactId=lib\nversion=9\n",
    }
)
PLAIN_JAR = jar({"META-INF/MANIFEST.MF": b"Implementation-Title: plain\nImplementation-Version: 0.1\n"})
SERVER = b"\x7fELF" + b"\0" * 100


def foreign_layout(root: Path) -> Path:
    """An image as another tool would make it: a dpkg status database, copyrights (one doc
    directory a link to another), Python, npm and Java packages, an application binary; the
    second layer deletes one Python distribution and one node package."""
    site = "usr/lib/python3/dist-packages"
    base = layer_tar(
        [
            F("etc/os-release", b'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'),
            F("var/lib/dpkg/status", STATUS),
            F("var/lib/dpkg/info/foo.md5sums", b"0" * 32 + b"  usr/bin/foo\n"),
            F("var/lib/dpkg/info/python3-six.md5sums", b"0" * 32 + f"  {site}/six-1.16.0.dist-info/METADATA\n".encode()),
            F("usr/share/doc/foo/copyright", DEP5),
            F("usr/share/doc/libfoo1", kind="symlink", target="foo"),
            F(f"{site}/six-1.16.0.dist-info/METADATA", b"Metadata-Version: 2.1\nName: six\nVersion: 1.16.0\nLicense: MIT\n\nlong text\n"),
            F(f"{site}/Flask-3.0.0.dist-info/METADATA",
              b"Metadata-Version: 2.1\nName: Flask\nVersion: 3.0.0\nLicense-Expression: BSD-3-Clause\n"
              b"Requires-Dist: six\nRequires-Dist: pytest ; extra == 'test'\n"),
            F(f"{site}/old-1.0.dist-info/METADATA", b"Name: old\nVersion: 1.0\n"),
            F("srv/package.json", json.dumps({"name": "web", "version": "1.0.0", "dependencies": {"express": "^5"}}).encode()),
            F("srv/node_modules/express/package.json",
              json.dumps({"name": "express", "version": "5.1.0", "license": "MIT", "dependencies": {"@types/x": "1"}}).encode()),
            F("srv/node_modules/@types/x/package.json", json.dumps({"name": "@types/x", "version": "1.0.0"}).encode()),
            F("srv/node_modules/left-pad/package.json", json.dumps({"name": "left-pad", "version": "1.3.0"}).encode()),
            F("srv/node_modules/express/lib/package.json", json.dumps({"type": "module"}).encode()),
            F("srv/libs/app.jar", APP_JAR),
            F("srv/libs/plain.jar", PLAIN_JAR),
            F("usr/local/bin/server", SERVER, 0o755),
        ]
    )  # fmt: skip
    top = layer_tar([F(f"{site}/.wh.old-1.0.dist-info"), F("srv/node_modules/.wh.left-pad")])
    config = {"Entrypoint": ["/usr/local/bin/server"], "User": "65532"}
    write_layout(root, [base, top], {**config, "Env": ["PATH=/usr/local/bin:/usr/bin"]})
    return root


def test_an_image_distill_did_not_build_is_catalogued_by_streaming(tmp_path: Path) -> None:
    layout = foreign_layout(tmp_path / "img")
    [sbom] = documents(str(layout), source_date_epoch=1700000000)
    doc = valid_spdx(sbom.spdx)
    cdx = valid_cyclonedx(sbom.cyclonedx)
    debs = spdx_packages(doc, "deb")
    assert set(debs) == {"foo", "libfoo1", "python3-six"}  # 'gone' is not installed
    assert purl_of(debs["foo"]) == "pkg:deb/debian/foo@1:2.0-1?arch=amd64&distro=debian-12"
    assert (
        purl_of(debs["libfoo1"])
        == "pkg:deb/debian/libfoo1@1:2.0-1%2Bb1?arch=amd64&distro=debian-12&upstream=foo%401:2.0-1"
    )
    assert debs["foo"]["versionInfo"] == "1:2.0-1"  # the epoch is kept
    assert debs["libfoo1"]["sourceInfo"] == "built from the Debian source package foo 1:2.0-1"
    assert debs["foo"]["supplier"] == "Organization: Foo Team (foo@example.invalid)"
    assert debs["libfoo1"]["supplier"] == "Person: Ann Other (ann@example.invalid)"
    # libfoo1's doc directory is a link to foo's: the same copyright
    assert debs["libfoo1"]["licenseDeclared"] == debs["foo"]["licenseDeclared"]
    assert "LicenseRef-public-domain" in debs["foo"]["licenseDeclared"]
    refs = {r["licenseId"]: r["extractedText"] for r in doc["hasExtractedLicensingInfos"]}
    assert refs["LicenseRef-public-domain"].startswith("The files are in the public domain.")
    assert set(spdx_packages(doc, "pypi")) == {"six", "Flask"}  # 'old' was whited out
    assert spdx_packages(doc, "pypi")["Flask"]["licenseDeclared"] == "BSD-3-Clause"
    assert set(spdx_packages(doc, "npm")) == {"web", "express", "@types/x"}  # left-pad whited out
    assert purl_of(spdx_packages(doc, "npm")["@types/x"]) == "pkg:npm/%40types/x@1.0.0"
    maven = spdx_packages(doc, "maven")
    assert set(maven) == {"org.example:app", "com.shaded:lib"}
    assert maven["org.example:app"]["checksums"][0]["checksumValue"] == hashlib.sha256(APP_JAR).hexdigest()
    by_name = {p["name"]: p for p in doc["packages"]}
    assert by_name["plain"]["checksums"][0]["checksumValue"] == hashlib.sha256(PLAIN_JAR).hexdigest()
    assert by_name["server"]["checksums"][0]["checksumValue"] == hashlib.sha256(SERVER).hexdigest()
    assert by_name["server"]["primaryPackagePurpose"] == "APPLICATION"
    # Relationships: the image DESCRIBES/CONTAINS, dependencies resolved in the image.
    ids = {p["SPDXID"]: p["name"] for p in doc["packages"]}
    rels = {(ids.get(r["spdxElementId"], r["spdxElementId"]), r["relationshipType"], ids[r["relatedSpdxElement"]])
            for r in doc["relationships"]}  # fmt: skip
    root = doc["packages"][0]
    assert root["primaryPackagePurpose"] == "CONTAINER" and root["versionInfo"] == sbom.manifest_digest
    assert purl_of(root) == f"pkg:oci/img@{sbom.manifest_digest}?arch=amd64"  # packageurl-python's form
    assert ("SPDXRef-DOCUMENT", "DESCRIBES", "img") in rels
    assert {name for _, rel, name in rels if rel == "CONTAINS"} >= {
        "foo",
        "libfoo1",
        "six",
        "express",
        "server",
    }
    assert ("foo", "DEPENDS_ON", "libfoo1") in rels  # libfoo1 by name, and the 'libbar' it provides
    assert ("Flask", "DEPENDS_ON", "six") in rels
    assert ("python3-six", "CONTAINS", "six") in rels  # the Debian package that ships the module
    assert ("web", "DEPENDS_ON", "express") in rels and ("express", "DEPENDS_ON", "@types/x") in rels
    assert doc["creationInfo"]["created"] == "2023-11-14T22:13:20Z"
    # CycloneDX says the same.
    comps = {c["name"]: c for c in cdx["components"]}
    assert comps["libfoo1"]["purl"] == purl_of(debs["libfoo1"])
    assert comps["foo"]["licenses"] == [{"expression": debs["foo"]["licenseDeclared"]}]
    assert cdx["metadata"]["component"]["version"] == sbom.manifest_digest
    assert comps["debian"]["type"] == "operating-system" and comps["debian"]["version"] == "12"
    deps = {d["ref"]: set(d["dependsOn"]) for d in cdx["dependencies"]}
    assert comps["libfoo1"]["bom-ref"] in deps[comps["foo"]["bom-ref"]]


APK_DB = b"""\
C:Q1abc=
P:musl
V:1.2.5-r0
A:x86_64
L:MIT
o:musl
m:Someone <someone@example.invalid>
T:the musl c library
p:so:libc.musl-x86_64.so.1=1

C:Q1def=
P:busybox
V:1.36.1-r29
A:x86_64
L:GPL-2.0-only
o:busybox
D:so:libc.musl-x86_64.so.1
p:cmd:sh

C:Q1ghi=
P:libfoo
V:2-r0
A:x86_64
L:custom license text
o:foo
"""


def test_an_alpine_image_is_catalogued_from_its_apk_database(tmp_path: Path) -> None:
    layer = layer_tar(
        [
            F("etc/os-release", b"ID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME='Alpine Linux v3.20'\n"),
            F("lib/apk/db/installed", APK_DB),
        ]
    )
    write_layout(tmp_path / "alpine", [layer])
    [sbom] = documents(str(tmp_path / "alpine"))
    doc = valid_spdx(sbom.spdx)
    valid_cyclonedx(sbom.cyclonedx)
    apks = spdx_packages(doc, "apk")
    assert purl_of(apks["musl"]) == "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3"
    assert (
        purl_of(apks["libfoo"]) == "pkg:apk/alpine/libfoo@2-r0?arch=x86_64&distro=alpine-3.20.3&upstream=foo"
    )
    assert apks["busybox"]["licenseDeclared"] == "GPL-2.0-only"
    assert apks["libfoo"]["licenseDeclared"] == NOASSERTION  # not an SPDX expression
    ids = {p["SPDXID"]: p["name"] for p in doc["packages"]}
    deps = {(ids[r["spdxElementId"]], ids[r["relatedSpdxElement"]]) for r in doc["relationships"] if r["relationshipType"] == "DEPENDS_ON"}  # fmt: skip
    assert deps == {("busybox", "musl")}  # through what musl provides


def test_same_image_same_bytes_and_the_time_comes_from_the_image(tmp_path: Path) -> None:
    layout = foreign_layout(tmp_path / "img")
    a = documents(str(layout))[0]
    b = documents(str(foreign_layout(tmp_path / "again")), name="img")[0]
    assert a.spdx == b.spdx and a.cyclonedx == b.cyclonedx
    assert (
        json.loads(a.spdx)["creationInfo"]["created"] == "1970-01-01T00:00:00Z"
    )  # the config has no 'created'
    c = documents(str(layout), source_date_epoch=1)[0]
    assert (
        c.spdx != a.spdx
        and json.loads(c.spdx)["documentNamespace"] != json.loads(a.spdx)["documentNamespace"]
    )


# -- distill build / distill sbom on a generated repository -----------------------------

FOO_DEB = [
    Entry("./usr/share/doc/foo/copyright", data=DEP5),
    Entry("./usr/bin/foo", data=b"#!/bin/true\n", mode=0o755),
]
LIBFOO_DEB = [Entry("./usr/share/doc/libfoo1", "symlink", link="foo")]
PACKAGES = [
    Pkg("base-files", "13.8", arch="all", entries=MERGED.entries),
    *(
        Pkg(name, version, arch=arch, depends=depends, source=source, entries=entries)
        for arch in ("amd64", "arm64")
        for name, version, depends, source, entries in (
            ("foo", "1:2.0-1", "libfoo1 (>= 1:2.0)", "", FOO_DEB),
            ("libfoo1", "1:2.0-1+b1", "", "foo (1:2.0-1)", LIBFOO_DEB),
            ("tool", "3.0-1", "", "", [Entry("./usr/share/doc/tool/copyright", data=FREE_TEXT)]),
        )
    ),
]


def distill(
    *args: str, cwd: Path, cache: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    e = {**os.environ, "XDG_CACHE_HOME": str(cache), **(env or {})}
    e.pop("DISTILL_MIRROR", None)
    if "SOURCE_DATE_EPOCH" not in (env or {}):
        e.pop("SOURCE_DATE_EPOCH", None)
    return subprocess.run([sys.executable, "-m", "distill", *args, "-q"], cwd=cwd, env=e, capture_output=True,
                          text=True, timeout=300)  # fmt: skip


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def work(make_repo: MakeRepo, key: Key, tmp_path: Path) -> tuple[Path, Server]:
    server: Server
    server, _ = make_repo({"stable": PACKAGES})
    work = tmp_path / "work"
    work.mkdir()
    (work / "app.yaml").write_text(
        f"name: app\ndistro: debian13\narchs: [amd64]\nsources:\n  - url: {server.url}\n    suites: [stable]\n"
        f"keyring: [{key.keyring}]\npackages: [base-files, foo, tool]\n"
    )
    return work, server


def test_build_writes_both_sboms_with_what_the_lock_knows(work: tuple[Path, Server], tmp_path: Path) -> None:
    w, server = work
    cache = tmp_path / "cache"
    ok(distill("lock", "app.yaml", cwd=w, cache=cache))
    out = ok(distill("build", "app.yaml", "-o", "out.oci", cwd=w, cache=cache))
    digest = out.strip().splitlines()[-1]
    assert out.strip() == digest  # -q: the digest alone; the SBOMs are written all the same
    doc = valid_spdx((w / "out.spdx.json").read_bytes())
    cdx = valid_cyclonedx((w / "out.cdx.json").read_bytes())
    lock = {p["name"]: p for p in json.loads((w / "app.lock.json").read_text())["archs"]["amd64"]["packages"]}
    debs = spdx_packages(doc, "deb")
    assert set(debs) == set(lock) == {"base-files", "foo", "libfoo1", "tool"}
    for name, p in debs.items():
        assert p["checksums"] == [{"algorithm": "SHA256", "checksumValue": lock[name]["sha256"]}]
        assert p["packageFileName"] == lock[name]["filename"]
        # SPDX's grammar takes no IP address as a download location: the URL is in the comment
        assert p["downloadLocation"] == NOASSERTION
        assert p["comment"].endswith(f"; downloaded from {server.url}/{lock[name]['filename']}")
    assert debs["libfoo1"]["versionInfo"] == "1:2.0-1+b1"
    assert (
        purl_of(debs["libfoo1"])
        == "pkg:deb/debian/libfoo1@1:2.0-1%2Bb1?arch=amd64&distro=debian-13&upstream=foo%401:2.0-1"
    )
    assert debs["foo"]["licenseDeclared"].startswith(
        "BSD-3-Clause AND (GPL-2.0-or-later OR Artistic-2.0) AND"
    )
    assert debs["libfoo1"]["licenseDeclared"] == debs["foo"]["licenseDeclared"]  # through the doc-dir link
    assert debs["tool"]["licenseDeclared"] == NOASSERTION  # free text
    ids = {p["SPDXID"]: p["name"] for p in doc["packages"]}
    rels = {
        (ids.get(r["spdxElementId"]), r["relationshipType"], ids[r["relatedSpdxElement"]])
        for r in doc["relationships"]
    }
    assert ("foo", "DEPENDS_ON", "libfoo1") in rels and ("app", "CONTAINS", "tool") in rels
    assert doc["packages"][0]["versionInfo"] == digest
    assert cdx["metadata"]["component"]["version"] == digest
    props = {
        c["name"]: {p["name"]: p["value"] for p in c["properties"]}
        for c in cdx["components"]
        if "properties" in c
    }
    assert props["libfoo1"]["distill:debian:source"] == "foo"
    assert props["libfoo1"]["distill:debian:source_version"] == "1:2.0-1"
    assert props["libfoo1"]["distill:required_by"] == "foo"
    urls = {
        c["name"]: c["externalReferences"][0]["url"] for c in cdx["components"] if "externalReferences" in c
    }
    assert urls["libfoo1"] == f"{server.url}/{lock['libfoo1']['filename']}"
    # distill sbom: the spec (its lock's build), the lock, the output: the same documents.
    assert ok(distill("sbom", "app.yaml", "--name", "out", cwd=w, cache=cache)) != ""
    spdx_of_spec = distill("sbom", "app.yaml", cwd=w, cache=cache).stdout.encode()
    assert spdx_of_spec == (w / "out.spdx.json").read_bytes()
    assert (
        distill("sbom", "app.lock.json", "--format", "cyclonedx", cwd=w, cache=cache).stdout.encode()
        == (w / "out.cdx.json").read_bytes()
    )
    streamed = valid_spdx(ok(distill("sbom", "out.oci", cwd=w, cache=cache)).encode())
    assert {(p["name"], p.get("versionInfo")) for p in spdx_packages(streamed, "deb").values()} == {
        (n, p["version"]) for n, p in lock.items()
    }
    assert "checksums" not in spdx_packages(streamed, "deb")["foo"]  # without the lock: no .deb hash


def test_sboms_are_deterministic_and_follow_source_date_epoch(
    work: tuple[Path, Server], tmp_path: Path
) -> None:
    w, _ = work
    cache = tmp_path / "cache"
    ok(distill("build", "app.yaml", "-o", "a.tar", cwd=w, cache=cache))
    ok(distill("build", "app.yaml", "-o", "b.oci", cwd=w, cache=tmp_path / "cache2"))
    assert (w / "a.spdx.json").read_bytes() == (w / "b.spdx.json").read_bytes()
    assert (w / "a.cdx.json").read_bytes() == (w / "b.cdx.json").read_bytes()
    created = json.loads((w / "a.spdx.json").read_text())["creationInfo"]["created"]
    assert created == "2023-11-14T22:13:20Z"  # the packages' newest mtime: the image's creation time
    ok(
        distill(
            "build", "app.yaml", "-o", "c.oci", cwd=w, cache=cache, env={"SOURCE_DATE_EPOCH": "1600000000"}
        )
    )
    assert json.loads((w / "c.spdx.json").read_text())["creationInfo"]["created"] == "2020-09-13T12:26:40Z"
    assert json.loads((w / "c.cdx.json").read_text())["metadata"]["timestamp"] == "2020-09-13T12:26:40Z"
    ok(distill("build", "app.yaml", "-o", "d.oci", "--no-sbom", cwd=w, cache=cache))
    assert not (w / "d.spdx.json").exists() and not (w / "d.cdx.json").exists()


def test_a_multi_arch_build_has_one_sbom_per_platform(work: tuple[Path, Server], tmp_path: Path) -> None:
    w, _ = work
    cache = tmp_path / "cache"
    out = ok(
        distill(
            "build", "app.yaml", "--arch", "amd64", "--arch", "arm64", "-o", "multi.oci", cwd=w, cache=cache
        )
    )
    assert all((w / f"multi-{a}.{k}.json").is_file() for a in ("amd64", "arm64") for k in ("spdx", "cdx")), (
        out
    )
    manifests = json.loads(ok(distill("sbom", "multi.oci", "--arch", "arm64", cwd=w, cache=cache)))
    for arch in ("amd64", "arm64"):
        doc = valid_spdx((w / f"multi-{arch}.spdx.json").read_bytes())
        valid_cyclonedx((w / f"multi-{arch}.cdx.json").read_bytes())
        assert all(
            f"arch={arch}" in purl_of(p)
            for p in spdx_packages(doc, "deb").values()
            if p["name"] != "base-files"
        )
        assert purl_of(doc["packages"][0]).endswith(f"?arch={arch}")
    assert purl_of(manifests["packages"][0]).endswith("?arch=arm64")
    # Several platforms and no -o: one SBOM each cannot go to stdout.
    assert_one_line_error(distill("sbom", "multi.oci", cwd=w, cache=cache), "has 2 platforms")
    ok(distill("sbom", "multi.oci", "-o", "s.spdx.json", cwd=w, cache=cache))
    assert (w / "s-amd64.spdx.json").is_file() and (w / "s-arm64.spdx.json").is_file()


def test_an_unreadable_image_is_one_error_line(tmp_path: Path) -> None:
    (tmp_path / "junk.tar").write_bytes(b"not a tar" * 100)
    assert_one_line_error(
        distill("sbom", "junk.tar", cwd=tmp_path, cache=tmp_path / "c"), "not a readable tar"
    )
    assert_one_line_error(distill("sbom", "nowhere.oci", cwd=tmp_path, cache=tmp_path / "c"), "no such image")
    layout = foreign_layout(tmp_path / "img")
    manifest = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"].partition(":")[2]
    layer = json.loads((layout / "blobs" / "sha256" / manifest).read_text())["layers"][0]["digest"].partition(
        ":"
    )[2]
    blob = layout / "blobs" / "sha256" / layer
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    assert_one_line_error(distill("sbom", str(layout), cwd=tmp_path, cache=tmp_path / "c"), "img")
    assert_one_line_error(
        distill("sbom", str(layout), "--format", "xml", cwd=tmp_path, cache=tmp_path / "c"), "xml"
    )
    assert not list(tmp_path.glob("*.json"))  # nothing half-written


def test_a_rebuild_reads_the_sboms_from_the_cache_and_a_damaged_entry_is_made_again(
    work: tuple[Path, Server], tmp_path: Path
) -> None:
    w, _ = work
    cache = tmp_path / "cache"
    ok(distill("build", "app.yaml", "-o", "out.oci", cwd=w, cache=cache))
    first = (w / "out.spdx.json").read_bytes()
    [record] = list((cache / "distill" / "sbom").iterdir())
    blob = json.loads(unseal(record.read_bytes()) or b"")["digest"]
    bundle = cache / "distill" / "blobs" / "sha256" / blob.partition(":")[2]
    assert json.loads(bundle.read_bytes())["documents"][0]["spdx"].encode() == first
    (w / "out.spdx.json").unlink()
    ok(distill("build", "app.yaml", "-o", "out.oci", cwd=w, cache=cache))  # up to date: SBOMs from the cache
    assert (w / "out.spdx.json").read_bytes() == first
    bundle.write_bytes(bundle.read_bytes().replace(b"foo", b"bar"))  # damaged: not used, made again
    ok(distill("build", "app.yaml", "-o", "out.oci", cwd=w, cache=cache))
    assert (w / "out.spdx.json").read_bytes() == first
    record.write_bytes(record.read_bytes()[:-3])  # a damaged record: made again too
    ok(distill("build", "app.yaml", "-o", "out.oci", cwd=w, cache=cache))
    assert (w / "out.spdx.json").read_bytes() == first
    # The cache's own verify knows the SBOM records.
    verify = run("cache", "verify", cwd=w, cache=cache)
    assert verify.returncode == 0 and "SBOM record" not in verify.stdout + verify.stderr, verify.stderr
    bundle.unlink()  # a record whose blob is gone is a bad entry
    verify = run("cache", "verify", cwd=w, cache=cache)
    assert verify.returncode == 1 and "SBOM record its blob is gone" in verify.stdout + verify.stderr


def test_an_image_in_a_registry(work: tuple[Path, Server], tmp_path: Path) -> None:
    """Debian's docker-registry on 127.0.0.1: the pushed image's SBOM, read from the
    registry, describes the same manifest and packages as the one the build wrote."""
    from registries import Registry

    w, _ = work
    cache = tmp_path / "cache"
    reg = Registry(tmp_path / "registry")
    try:
        ok(
            distill(
                "build", "app.yaml", "--arch", "amd64", "--arch", "arm64", "-o", "app.oci", cwd=w, cache=cache
            )
        )
        ok(distill("push", "app.oci", f"{reg.host}/team/app:1", cwd=w, cache=cache))
        remote = valid_spdx(
            ok(
                distill("sbom", f"docker://{reg.host}/team/app:1", "--arch", "arm64", cwd=w, cache=cache)
            ).encode()
        )
    finally:
        reg.stop()
    local = json.loads((w / "app-arm64.spdx.json").read_text())
    assert remote["packages"][0]["versionInfo"] == local["packages"][0]["versionInfo"]  # the arm64 manifest
    assert purl_of(remote["packages"][0]) == (
        f"pkg:oci/app@{local['packages'][0]['versionInfo']}?arch=arm64&repository_url={reg.host}/team/app&tag=1"
    )
    names = {(p["name"], p.get("versionInfo")) for p in spdx_packages(remote, "deb").values()}
    assert names == {(p["name"], p.get("versionInfo")) for p in spdx_packages(local, "deb").values()}


def test_a_jar_whose_central_directory_is_too_large_is_hashed_only(tmp_path: Path) -> None:
    """zipfile keeps an object per central-directory entry: a jar declaring a directory
    beyond the limit is not opened (its pom.properties are not read), only hashed."""
    data = bytearray(APP_JAR)
    end = data.rfind(b"PK\x05\x06")
    data[end + 12 : end + 16] = (64 << 20).to_bytes(4, "little")  # a 64 MiB central directory
    bomb = bytes(data)
    write_layout(tmp_path / "img", [layer_tar([F("srv/app.jar", bomb), F("srv/ok.jar", APP_JAR)])])
    [sbom] = documents(str(tmp_path / "img"))
    doc = valid_spdx(sbom.spdx)
    by_path = {p["comment"]: p for p in doc["packages"] if "comment" in p}
    bomb_pkg = by_path["found at /srv/app.jar"]
    assert bomb_pkg["name"] == "app.jar" and "externalRefs" not in bomb_pkg
    assert bomb_pkg["checksums"][0]["checksumValue"] == hashlib.sha256(bomb).hexdigest()
    assert purl_of(by_path["found at /srv/ok.jar!/META-INF/maven/org.example/app/pom.properties"]).startswith(
        "pkg:maven/org.example/app@1.2.3"
    )


def test_o_dev_null_writes_to_the_device_and_leaves_it_one(tmp_path: Path) -> None:
    """An atomic write replaces its target: -o /dev/null must not turn the device into a
    file. A FIFO stands in for it here (the test does not touch the host's /dev)."""
    import stat
    import threading

    layout = foreign_layout(tmp_path / "img")
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    ok(distill("sbom", str(layout), "-o", str(fifo), cwd=tmp_path, cache=tmp_path / "c"))
    reader.join(timeout=60)
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still the FIFO, not a file in its place
    assert valid_spdx(got[0])["spdxVersion"] == "SPDX-2.3"
