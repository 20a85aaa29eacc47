"""Generated vulnerability data for the tests: a fixture repository whose packages carry
real changelog.Debian.gz files, and a Debian Security Tracker export and OSV records made
for it (every state the scanners tell apart: fixed, unfixed, not-affected, no-dsa,
ignored, postponed, undetermined, epochs and ``~`` versions, a binary whose source name
differs from its own, a doc directory that is a link to a sibling package)."""

from __future__ import annotations

import gzip
import json
import zipfile
from pathlib import Path
from typing import Any

from debrepo import Entry, Key, Pkg, write_suite


def changelog(source: str, entries: list[tuple[str, str, str, list[str]]]) -> bytes:
    """changelog.Debian.gz: (version, distribution, urgency, change lines), newest first."""
    parts = []
    for version, dist, urgency, lines in entries:
        body = "\n".join(f"  * {line}" for line in lines)
        parts.append(
            f"{source} ({version}) {dist}; urgency={urgency}\n\n{body}\n\n"
            f" -- Test Maintainer <test@example.invalid>  Mon, 01 Jun 2026 12:00:00 +0000\n"
        )
    return gzip.compress("\n".join(parts).encode(), mtime=0)


FOO_OLD = [("1.0-1", "unstable", "medium", ["Initial release."])]
FOO_SEC = [
    (
        "1.0-1+deb13u1",
        "trixie-security",
        "high",
        ["CVE-2026-1001: heap overflow in the parser", "Also fixes CVE-2026-1002 (a leak)"],
    ),
    *FOO_OLD,
]
BAR_OLD = [("2.0-1", "unstable", "medium", ["Initial release; closes CVE-2025-0999 upstream."])]
BAR_SEC = [("2.0-1+deb13u1", "trixie-security", "medium", ["CVE-2026-2001: use after free"]), *BAR_OLD]
ZED_OLD = [("1:3.0~rc1-1", "unstable", "low", ["New upstream release candidate."])]
ZED_SEC = [
    ("1:3.0-1+deb13u1", "trixie-security", "medium", ["CVE-2026-3001: integer overflow"]),
    ("1:3.0-1", "unstable", "low", ["New upstream release."]),
    *ZED_OLD,
]
TOOL_OLD = [("5.0-1", "unstable", "low", ["Initial release."])]
TOOL_UPD = [("5.0-2", "trixie", "low", ["Fix a typo in the manual page."]), *TOOL_OLD]


def _pkg(name: str, version: str, source: str, log: bytes | None = None, link: str = "", **kw: Any) -> Pkg:
    if link:
        return Pkg(
            name,
            version,
            source=source,
            entries=[Entry(f"./usr/share/doc/{name}", "symlink", link=link)],
            **kw,
        )
    files = {f"./usr/share/doc/{name}/copyright": b"Public domain.\n"}
    if log is not None:
        files[f"./usr/share/doc/{name}/changelog.Debian.gz"] = log
    return Pkg(name, version, source=source, files=files, **kw)


def release_packages() -> list[Pkg]:
    return [
        _pkg("libfoo1", "1.0-1", "foo", changelog("foo", FOO_OLD), multi_arch="same"),
        _pkg("libbar1", "2.0-1", "bar", link="bar-base", depends="bar-base (= 2.0-1)"),
        _pkg("bar-base", "2.0-1", "bar", changelog("bar", BAR_OLD)),
        _pkg("zed", "1:3.0~rc1-1", "zed", changelog("zed", ZED_OLD)),
        _pkg("tool", "5.0-1", "tool", changelog("tool", TOOL_OLD)),
        Pkg("app", "1.0", depends="libfoo1, libbar1, zed, tool"),
    ]


def security_packages() -> list[Pkg]:
    return [
        _pkg("libfoo1", "1.0-1+deb13u1", "foo", changelog("foo", FOO_SEC), multi_arch="same"),
        _pkg("libbar1", "2.0-1+deb13u1", "bar", link="bar-base", depends="bar-base (= 2.0-1+deb13u1)"),
        _pkg("bar-base", "2.0-1+deb13u1", "bar", changelog("bar", BAR_SEC)),
        _pkg("zed", "1:3.0-1+deb13u1", "zed", changelog("zed", ZED_SEC)),
    ]


def updates_packages() -> list[Pkg]:
    return [_pkg("tool", "5.0-2", "tool", changelog("tool", TOOL_UPD))]


def write_repository(root: Path, key: Key) -> None:
    write_suite(root, "trixie", release_packages(), key, archs=("amd64",))
    write_suite(root, "trixie-security", security_packages(), key, archs=("amd64",))
    write_suite(root, "trixie-updates", updates_packages(), key, archs=("amd64",))


def _rel(status: str, urgency: str = "medium", fixed: str | None = None, **extra: str) -> dict[str, Any]:
    r: dict[str, Any] = {"status": status, "urgency": urgency, "repositories": {"trixie": "x"}}
    if fixed is not None:
        r["fixed_version"] = fixed
    r.update(extra)
    return r


def tracker() -> dict[str, Any]:
    """The tracker export for the fixture repository (release trixie, plus bookworm)."""

    def issue(desc: str, trixie: dict[str, Any]) -> dict[str, Any]:
        return {
            "description": desc,
            "scope": "remote",
            "releases": {"trixie": trixie, "bookworm": _rel("resolved", fixed="0")},
        }

    doc: dict[str, Any] = {
        "foo": {
            "CVE-2026-1001": issue("foo: heap overflow", _rel("resolved", "high", "1.0-1+deb13u1")),
            "CVE-2026-1003": issue(
                "foo: minor leak", _rel("open", "low", nodsa="Minor issue", nodsa_reason="")
            ),
            "CVE-2026-1004": issue("foo: not in this release", _rel("resolved", "high", "0")),
            "CVE-2026-1005": issue("foo: fixed long ago", _rel("resolved", "high", "0.9-1")),
            "CVE-2026-1006": issue(
                "foo: resolved, version unknown", _rel("resolved", "high", "undetermined")
            ),
        },
        "bar": {
            "CVE-2026-2001": issue("bar: use after free", _rel("resolved", "medium", "2.0-1+deb13u1")),
            "CVE-2026-2002": issue(
                "bar: will not be fixed", _rel("open", "low", nodsa="", nodsa_reason="ignored")
            ),
            "CVE-2026-2003": issue(
                "bar: postponed", _rel("open", "medium", nodsa="", nodsa_reason="postponed")
            ),
        },
        "zed": {
            "CVE-2026-3001": issue("zed: integer overflow", _rel("resolved", "medium**", "1:3.0-1+deb13u1")),
            "CVE-2026-3002": issue("zed: fixed before the epoch", _rel("resolved", "high", "3.1-1")),
            "CVE-2026-3003": issue("zed: fixed in rc2", _rel("resolved", "high", "1:3.0~rc2-1")),
            "CVE-2026-3004": issue("zed: fixed in rc1", _rel("resolved", "high", "1:3.0~rc1-1")),
        },
        "tool": {
            "CVE-2026-4001": issue("tool: under investigation", _rel("undetermined", "unimportant")),
        },
    }
    doc["foo"]["CVE-2026-1001"]["releases"][""] = {"status": "open"}  # the export has such a key
    return doc


def osv_debian() -> list[dict[str, Any]]:
    """OSV records of the Debian ecosystem (Debian:13 = trixie) for the fixture's sources."""
    return [
        {
            "id": "DSA-9001-1",
            "modified": "2026-06-01T00:00:00Z",
            "aliases": ["CVE-2026-1001"],
            "summary": "foo security update",
            "affected": [
                {
                    "package": {"ecosystem": "Debian:13", "name": "foo"},
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-1+deb13u1"}]}
                    ],
                }
            ],
        },
        {
            "id": "DEBIAN-CVE-2026-5001",
            "modified": "2026-06-01T00:00:00Z",
            "upstream": ["CVE-2026-5001"],
            "summary": "foo: fixed after the security update",
            "affected": [
                {
                    "package": {"ecosystem": "Debian:13", "name": "foo"},
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0-1+deb13u2"}]}
                    ],
                    "ecosystem_specific": {"urgency": "high"},
                }
            ],
        },
        {
            "id": "OSV-2026-5003",
            "modified": "2026-06-01T00:00:00Z",
            "aliases": ["CVE-2026-5003"],
            "summary": "zed: rated by its CVSS vector alone",
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
            "affected": [
                {
                    "package": {"ecosystem": "Debian:13", "name": "zed"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:3.0-1"}]}],
                }
            ],
        },
        {
            "id": "DEBIAN-CVE-2026-5002",
            "modified": "2026-06-01T00:00:00Z",
            "upstream": ["CVE-2026-5002"],
            "affected": [
                {
                    "package": {"ecosystem": "Debian:13", "name": "zed"},
                    # fixed in a version without an epoch: below every 1: version, not affected
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "9.0-1"}]}],
                }
            ],
        },
    ]


def write_osv_dir(root: Path, records: list[dict[str, Any]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for r in records:
        (root / f"{r['id']}.json").write_text(json.dumps(r))
    return root


def write_osv_zip(path: Path, records: list[dict[str, Any]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for r in records:
            zf.writestr(f"{r['id']}.json", json.dumps(r))
    return path


# What a scan of the fixture's lock finds with the tracker and the Debian OSV records:
# (package, id, state, fix, origins).
EXPECTED = {
    ("libfoo1", "CVE-2026-1001", "fixed", "fixed by rebuilding", ("tracker", "osv", "archive")),
    ("libfoo1", "CVE-2026-1002", "fixed", "fixed by rebuilding", ("archive",)),
    ("libfoo1", "CVE-2026-1003", "affected", "no fix yet", ("tracker",)),
    ("libfoo1", "CVE-2026-5001", "fixed", "fixed, not in the suites yet", ("osv",)),
    ("libbar1", "CVE-2026-2001", "fixed", "fixed by rebuilding", ("tracker", "archive")),
    ("libbar1", "CVE-2026-2002", "will-not-fix", "will not be fixed", ("tracker",)),
    ("libbar1", "CVE-2026-2003", "affected", "no fix yet", ("tracker",)),
    ("bar-base", "CVE-2026-2001", "fixed", "fixed by rebuilding", ("tracker", "archive")),
    ("bar-base", "CVE-2026-2002", "will-not-fix", "will not be fixed", ("tracker",)),
    ("bar-base", "CVE-2026-2003", "affected", "no fix yet", ("tracker",)),
    ("zed", "CVE-2026-3001", "fixed", "fixed by rebuilding", ("tracker", "archive")),
    ("zed", "CVE-2026-3003", "fixed", "fixed by rebuilding", ("tracker",)),
    ("zed", "CVE-2026-5003", "fixed", "fixed by rebuilding", ("osv",)),
    ("tool", "CVE-2026-4001", "affected", "no fix yet", ("tracker",)),
}
