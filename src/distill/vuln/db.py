"""Vulnerability data given with ``--db`` (or ``DISTILL_VULN_DB``): a Debian Security
Tracker JSON export, OSV records (one JSON file, a directory of them, or an ecosystem's
``all.zip``), as a file, a directory or a URL. Nothing is fetched from a host of
distill's choosing.

The format is recognised from the content, not the name. Each data file is read once
into an index, a sealed cache entry named by the data's SHA256 (``vuln/<sha256>.index``):
ecosystem -> package -> its advisories, each package's list marshalled apart so a scan
unpacks only the packages it has. A URL's answer is kept as ``vuln/<sha256>.data`` with
its validators and time (``vuln/<sha256 of the URL>.url``): the next run asks with
``If-None-Match``/``If-Modified-Since``, ``--offline`` uses the copy as it is, and its age
is shown.

Mapping (as Trivy, Grype and debsecan do): the tracker's ``resolved`` with a version is
``fixed`` in that version, with version ``0`` ``not-affected`` (left out); ``open`` and
``undetermined`` are ``affected`` (no fix yet; ``no-dsa`` and ``postponed`` kept as the
detail), ``open`` with ``nodsa_reason: ignored`` and releases at their end of life are
``will-not-fix``. Urgency is the severity: ``unimportant`` negligible, ``low``/``medium``/
``high`` as named, ``not yet assigned`` unknown. OSV severity comes from
``database_specific.severity``, else the CVSS vector (``cvss``), else the Debian
urgency in ``ecosystem_specific``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import marshal
import os
import re
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.archive.cache import Cache, CorruptEntryError, atomic_write, read_entry, read_sealed, seal
from distill.errors import DistillError, VulnError
from distill.fswalk import walk
from distill.limits import MiB, env_limit, open_regular
from distill.vuln.model import CODENAMES, Advisory

MAX_DB = 1024 * MiB  # one data file (the tracker's export is ~80 MiB; OSV's all.zip of PyPI ~50 MiB)
MAX_RECORD = 4 * MiB  # one OSV record
MAX_RECORDS = 2_000_000  # records in a directory or zip
MAX_SUMMARY = 240
_INDEX_FORMAT = 1
# What reading a damaged zip (an OSV all.zip, a jar) raises: zipfile's errors, the
# decompressors', and NotImplementedError/RuntimeError for unsupported or encrypted entries.
ZIP_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    OSError,
    EOFError,
    zlib.error,
    NotImplementedError,
    RuntimeError,
    ValueError,
)
_CVE = re.compile(r"CVE-\d{4}-\d{4,}")
_DEB_VERSION = re.compile(r"(\d+:)?\d")  # a Debian version starts with a digit (after its epoch)

_SEVERITY_WORDS = {
    "critical": "critical",
    "emergency": "critical",  # a changelog's highest upload urgency
    "high": "high",
    "important": "high",
    "moderate": "medium",
    "medium": "medium",
    "low": "low",
    "negligible": "negligible",
    "unimportant": "negligible",
    "not yet assigned": "unknown",
}


def urgency_severity(urgency: str) -> str:
    """The tracker's urgency (``low``, ``medium**``, ``unimportant``, ...) as a severity."""
    return _SEVERITY_WORDS.get(urgency.strip().rstrip("*").strip().lower(), "unknown")


def db_limit() -> int:
    return env_limit("MAX_VULN_DB_MIB", MAX_DB // MiB) * MiB


@dataclass
class Database:
    """One data source, indexed."""

    label: str  # what the user named
    kind: str  # tracker | osv
    sha256: str
    fetched: float | None  # when (epoch seconds) the data was fetched or last changed
    records: int
    ecosystems: list[str]
    packages: dict[str, dict[str, bytes]] = field(repr=False, default_factory=dict)
    _unpacked: dict[tuple[str, str], list[Advisory]] = field(repr=False, default_factory=dict)

    def covers(self, ecosystem: str) -> bool:
        return ecosystem in self.packages

    def advisories(self, ecosystem: str, package: str) -> list[Advisory]:
        key = (ecosystem, package)
        got = self._unpacked.get(key)
        if got is None:
            blob = self.packages.get(ecosystem, {}).get(package)
            got = (
                []
                if blob is None
                else [_advisory(ecosystem, package, t, self.kind) for t in marshal.loads(blob)]
            )
            self._unpacked[key] = got
        return got

    def age(self, now: float | None = None) -> float | None:
        return None if self.fetched is None else max(0.0, (now or time.time()) - self.fetched)


def _advisory(eco: str, pkg: str, t: tuple[Any, ...], origin: str) -> Advisory:
    vid, state, fixed, severity, urgency, detail, summary, aliases, ranges, versions = t
    return Advisory(
        vid, eco, pkg, state, fixed, severity, urgency, detail, summary, aliases, ranges, versions, origin
    )


def _record(a: Advisory) -> tuple[Any, ...]:
    return (
        a.id,
        a.state,
        a.fixed,
        a.severity,
        a.urgency,
        a.detail,
        a.summary,
        a.aliases,
        a.ranges,
        a.versions,
    )


# -- reading what the user named ---------------------------------------------------------


def _read_file(path: Path, label: str) -> bytes:
    limit = db_limit()
    with open_regular(path, error=VulnError, what="vulnerability data") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise VulnError(
            f"vulnerability data {label}: larger than {limit >> 20} MiB",
            hint="DISTILL_MAX_VULN_DB_MIB raises the limit",
        )
    return data


def _dir_records(root: Path, label: str) -> tuple[str, list[tuple[str, bytes]]]:
    """Every ``*.json`` under a directory (sorted), and a digest of names and contents."""
    files: list[str] = []
    for top, dirs, names in walk(root):
        dirs.sort()
        for n in names:
            if n.endswith(".json"):
                files.append(os.path.join(top, n))
                if len(files) > MAX_RECORDS:
                    raise VulnError(f"vulnerability data {label}: more than {MAX_RECORDS} records")
    files.sort()
    h = hashlib.sha256(b"distill-osv-dir-1\n")
    out: list[tuple[str, bytes]] = []
    total = 0
    for f in files:
        rel = os.path.relpath(f, root)
        with open_regular(Path(f), error=VulnError, what="OSV record") as fh:
            data = fh.read(MAX_RECORD + 1)
        if len(data) > MAX_RECORD:
            raise VulnError(f"OSV record {f}: larger than {MAX_RECORD >> 20} MiB")
        total += len(data)
        if total > db_limit():
            raise VulnError(f"vulnerability data {label}: larger than {db_limit() >> 20} MiB")
        h.update(rel.encode() + b"\0" + hashlib.sha256(data).digest())
        out.append((rel, data))
    return h.hexdigest(), out


def _zip_records(data: bytes, label: str) -> Iterator[tuple[str, bytes]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = [i for i in zf.infolist() if i.filename.endswith(".json") and not i.is_dir()]
        if len(infos) > MAX_RECORDS:
            raise VulnError(f"vulnerability data {label}: more than {MAX_RECORDS} records")
        total = 0
        for i in infos:
            if i.file_size > MAX_RECORD:
                raise VulnError(
                    f"vulnerability data {label}: {i.filename[:100]} is larger than {MAX_RECORD >> 20} MiB"
                )
            total += i.file_size
            if total > db_limit():
                raise VulnError(f"vulnerability data {label}: expands beyond {db_limit() >> 20} MiB")
            with zf.open(i) as f:
                body = f.read(MAX_RECORD + 1)
            if len(body) > MAX_RECORD:
                raise VulnError(f"vulnerability data {label}: {i.filename[:100]} is larger than declared")
            yield i.filename, body
    except ZIP_ERRORS as exc:
        raise VulnError(f"vulnerability data {label}: not a readable zip archive ({exc})") from None


def _json(data: bytes, label: str) -> Any:
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise VulnError(
            f"vulnerability data {label}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            hint="a truncated or damaged file; fetch it again",
        ) from None
    except RecursionError:
        raise VulnError(f"vulnerability data {label}: JSON nested too deeply") from None
    except (UnicodeDecodeError, ValueError):
        raise VulnError(f"vulnerability data {label}: not valid JSON") from None


def _is_tracker(doc: Any) -> bool:
    if not isinstance(doc, dict) or not doc or "id" in doc:
        return False
    for issues in list(doc.values())[:8]:
        if not isinstance(issues, dict):
            return False
        for issue in list(issues.values())[:4]:
            if not (isinstance(issue, dict) and "releases" in issue):
                return False
    return True


def _is_osv(doc: Any) -> bool:
    return (
        isinstance(doc, dict) and isinstance(doc.get("id"), str) and ("affected" in doc or "modified" in doc)
    )


# -- the tracker -------------------------------------------------------------------------


def _tracker(doc: dict[str, Any], label: str) -> tuple[dict[str, dict[str, list[tuple[Any, ...]]]], int]:
    out: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    count = 0
    for source, issues in doc.items():
        if not isinstance(issues, dict):
            raise VulnError(f"tracker data {label}: {str(source)[:60]!r}: not an object")
        for vid, issue in issues.items():
            where = f"{str(source)[:60]}/{str(vid)[:40]}"
            if not isinstance(issue, dict) or not isinstance(issue.get("releases", {}), dict):
                raise VulnError(f"tracker data {label}: {where}: not a tracker record")
            summary = issue.get("description") or ""
            summary = " ".join(summary.split())[:MAX_SUMMARY] if isinstance(summary, str) else ""
            for release, r in (issue.get("releases") or {}).items():
                if not isinstance(r, dict) or not isinstance(r.get("status", ""), str):
                    raise VulnError(
                        f"tracker data {label}: {where}/releases/{str(release)[:20]}: not a release record"
                    )
                status = r.get("status", "")
                fixed = r.get("fixed_version")
                fixed = fixed if isinstance(fixed, str) and fixed else None
                urgency = str(r["urgency"]) if isinstance(r.get("urgency"), str) else ""
                nodsa = str(r["nodsa_reason"]) if isinstance(r.get("nodsa_reason"), str) else ""
                if not release or not isinstance(release, str):
                    continue  # the export's "" release: not a release
                if status == "resolved":
                    if fixed is None or fixed == "0":
                        continue  # never affected
                    if not _DEB_VERSION.match(fixed):
                        continue  # "undetermined" and the like: no version to compare with
                    state, detail = "fixed", ""
                elif urgency == "end-of-life":
                    state, detail, fixed = "will-not-fix", "end-of-life", None
                elif status in ("open", "undetermined"):
                    fixed = None
                    if nodsa == "ignored":
                        state, detail = "will-not-fix", "ignored"
                    elif nodsa == "postponed":
                        state, detail = "affected", "postponed"
                    elif "nodsa" in r:
                        state, detail = "affected", "no-dsa"
                    else:
                        state, detail = "affected", "undetermined" if status == "undetermined" else ""
                else:
                    raise VulnError(
                        f"tracker data {label}: {where}/releases/{str(release)[:20]}: unknown status {status[:20]!r}"
                    )
                severity = "negligible" if urgency == "unimportant" else urgency_severity(urgency)
                rec = (str(vid), state, fixed, severity, urgency, detail, summary, (), (), ())
                out.setdefault(f"debian:{release}", {}).setdefault(str(source), []).append(rec)
                count += 1
    return out, count


# -- OSV -----------------------------------------------------------------------------------


def _osv_ecosystem(name: str) -> str | None:
    base, _, release = name.partition(":")
    low = base.lower()
    if low == "debian":
        code = CODENAMES.get(release.split(".")[0], release.lower() if release else "")
        return f"debian:{code}" if code else None
    if low in ("pypi", "npm", "maven"):
        return low
    return None


def _osv_name(eco: str, name: str) -> str:
    if eco == "pypi":
        from packaging.utils import canonicalize_name

        return str(canonicalize_name(name))
    return name


def _cvss_severity(vector: str) -> str | None:
    try:
        if vector.startswith("CVSS:4"):
            from cvss import CVSS4

            return urgency_severity(str(CVSS4(vector).severity))
        if vector.startswith("CVSS:3"):
            from cvss import CVSS3

            return urgency_severity(str(CVSS3(vector).severities()[0]))
    except Exception:  # the cvss library raises its own error classes for a malformed vector
        return None
    return None


def _osv_severity(doc: dict[str, Any], affected: dict[str, Any]) -> tuple[str, str]:
    for spec in (affected.get("database_specific"), doc.get("database_specific")):
        if isinstance(spec, dict) and isinstance(spec.get("severity"), str):
            return urgency_severity(spec["severity"]), ""
    sev = [s for s in (affected.get("severity") or doc.get("severity") or []) if isinstance(s, dict)]
    for s in sorted(sev, key=lambda s: str(s.get("type")), reverse=True):  # V4 before V3
        got = _cvss_severity(str(s.get("score", "")))
        if got:
            return got, ""
    eco = affected.get("ecosystem_specific")
    if isinstance(eco, dict):
        for key in ("urgency", "severity"):
            if isinstance(eco.get(key), str):
                return urgency_severity(eco[key]), eco[key]
    return "unknown", ""


def _osv(doc: Any, where: str, out: dict[str, dict[str, list[tuple[Any, ...]]]]) -> int:
    if not _is_osv(doc):
        raise VulnError(f"OSV record {where}: not an OSV record (no id and affected)")
    if doc.get("withdrawn"):
        return 0
    vid = doc["id"]
    aliases = [a for a in (doc.get("aliases") or []) + (doc.get("upstream") or []) if isinstance(a, str)]
    cves = sorted({a for a in aliases if _CVE.fullmatch(a)})
    shown = vid if _CVE.fullmatch(vid) or len(cves) != 1 else cves[0]
    others = tuple(sorted({vid, *aliases} - {shown}))
    summary = doc.get("summary") or doc.get("details") or ""
    summary = " ".join(summary.split())[:MAX_SUMMARY] if isinstance(summary, str) else ""
    count = 0
    affected_list = doc.get("affected") or []
    if not isinstance(affected_list, list):
        raise VulnError(f"OSV record {where}: affected is not a list")
    for affected in affected_list:
        if not isinstance(affected, dict) or not isinstance(affected.get("package"), dict):
            raise VulnError(f"OSV record {where}: an affected entry has no package")
        pkg = affected["package"]
        eco = _osv_ecosystem(str(pkg.get("ecosystem", "")))
        name = pkg.get("name")
        if eco is None or not isinstance(name, str):
            continue
        ranges: list[tuple[tuple[str, str], ...]] = []
        fixed_any = False
        for r in affected.get("ranges") or []:
            if not isinstance(r, dict) or r.get("type") not in ("ECOSYSTEM", "SEMVER"):
                continue
            events: list[tuple[str, str]] = []
            for e in r.get("events") or []:
                if not isinstance(e, dict):
                    raise VulnError(f"OSV record {where}: a range event is not an object")
                for kind in ("introduced", "fixed", "last_affected", "limit"):
                    if isinstance(e.get(kind), str):
                        events.append((kind, e[kind]))
                        fixed_any |= kind == "fixed"
            ranges.append(tuple(events))
        versions = tuple(v for v in affected.get("versions") or [] if isinstance(v, str))
        if not ranges and not versions:
            continue
        severity, urgency = _osv_severity(doc, affected)
        rec = (
            shown,
            "fixed" if fixed_any else "affected",
            None,
            severity,
            urgency,
            "",
            summary,
            others,
            tuple(ranges),
            versions,
        )
        out.setdefault(eco, {}).setdefault(_osv_name(eco, name), []).append(rec)
        count += 1
    return count


# -- the index -------------------------------------------------------------------------------


def _pack(table: dict[str, dict[str, list[tuple[Any, ...]]]]) -> dict[str, dict[str, bytes]]:
    return {eco: {pkg: marshal.dumps(recs) for pkg, recs in pkgs.items()} for eco, pkgs in table.items()}


def _index(kind: str, table: dict[str, dict[str, list[tuple[Any, ...]]]], count: int) -> bytes:
    return marshal.dumps((_INDEX_FORMAT, kind, count, _pack(table)))


def _load_index(cache: Cache, sha: str, label: str, fetched: float | None) -> Database | None:
    try:
        payload = read_sealed(cache.vuln_path(sha, "index"), "vulnerability index")
    except CorruptEntryError:
        return None  # made again from the data
    if payload is None:
        return None
    try:
        fmt, kind, count, packages = marshal.loads(payload)
    except (ValueError, EOFError, TypeError):
        return None
    if fmt != _INDEX_FORMAT or kind not in ("tracker", "osv") or not isinstance(packages, dict):
        return None
    return Database(label, kind, sha, fetched, count, sorted(packages), packages)


def _build(
    cache: Cache,
    sha: str,
    label: str,
    data: bytes | None,
    records: list[tuple[str, bytes]] | None,
    fetched: float | None,
) -> Database:
    table: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    count = 0
    if records is not None:
        kind = "osv"
        for name, body in records:
            count += _osv(_json(body, f"{label}/{name}"), f"{label}/{name}", table)
    else:
        assert data is not None
        if data[:4] == b"PK\x03\x04":
            kind = "osv"
            for name, body in _zip_records(data, label):
                count += _osv(_json(body, f"{label}:{name}"), f"{label}:{name[:100]}", table)
        else:
            if data[:2] == b"\x1f\x8b":
                try:
                    with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
                        data = f.read(db_limit() + 1)
                except (OSError, EOFError, zlib.error) as exc:
                    raise VulnError(f"vulnerability data {label}: not a readable gzip file ({exc})") from None
                if len(data) > db_limit():
                    raise VulnError(f"vulnerability data {label}: expands beyond {db_limit() >> 20} MiB")
            doc = _json(data, label)
            if _is_tracker(doc):
                kind = "tracker"
                table, count = _tracker(doc, label)
            elif _is_osv(doc) or (isinstance(doc, list) and all(_is_osv(d) for d in doc)):
                kind = "osv"
                for i, d in enumerate(doc if isinstance(doc, list) else [doc]):
                    count += _osv(d, f"{label}[{i}]", table)
            else:
                raise VulnError(
                    f"vulnerability data {label}: neither a Debian Security Tracker export nor OSV records",
                    hint="--db takes the tracker's JSON export, an OSV record, a directory of them or an all.zip",
                )
    db = Database(label, kind, sha, fetched, count, sorted(table), _pack(table))
    atomic_write(cache.vuln_path(sha, "index"), seal(_index(kind, table, count)))
    return db


# -- URLs ----------------------------------------------------------------------------------------


def _fetch_url(url: str, cache: Cache, offline: bool) -> tuple[bytes, str, float]:
    from distill.archive.transport import Transport
    from distill.errors import NetworkError

    key = hashlib.sha256(url.encode()).hexdigest()
    record_path = cache.vuln_path(key, "url")
    record: dict[str, Any] | None = None
    try:
        payload = read_sealed(record_path, "data URL record")
        record = json.loads(payload) if payload else None
    except (CorruptEntryError, ValueError):
        record = None
    cached: bytes | None = None
    if isinstance(record, dict) and isinstance(record.get("sha256"), str):
        from distill.archive.cache import is_digest

        if is_digest(record["sha256"]):
            path = cache.vuln_path(record["sha256"], "data")
            try:
                body = read_entry(path)
                if hashlib.sha256(body).hexdigest() == record["sha256"]:
                    cached = body
            except OSError:
                cached = None
    when = record.get("fetched") if isinstance(record, dict) else None
    fetched = float(when) if cached is not None and isinstance(when, (int, float)) else 0.0
    old_etag = (
        record.get("etag") if isinstance(record, dict) and isinstance(record.get("etag"), str) else None
    )
    old_modified = (
        record.get("last_modified")
        if isinstance(record, dict) and isinstance(record.get("last_modified"), str)
        else None
    )
    if offline:
        if cached is None:
            raise VulnError(
                f"--offline, and the cache has no copy of {url}",
                hint="run once without --offline to fetch it",
            )
        return cached, record["sha256"] if record else "", fetched
    transport = Transport(retries=2)
    try:
        got = transport.get(
            url,
            etag=old_etag if cached is not None else None,
            last_modified=old_modified if cached is not None else None,
            max_size=db_limit(),
        )
    except NetworkError as exc:
        hint = (
            f"--offline uses the copy cached {describe_age(time.time() - fetched)} ago"
            if cached is not None
            else "check the URL and the network; --offline works from the cache"
        )
        raise VulnError(f"vulnerability data {url}: cannot be fetched ({exc.message})", hint=hint) from None
    except DistillError as exc:
        raise VulnError(
            f"vulnerability data {url}: {exc.message}", hint="check the URL; --offline works from the cache"
        ) from None
    finally:
        transport.close()
    now = time.time()
    data = cached if got.status == 304 and cached is not None else got.content
    sha = hashlib.sha256(data).hexdigest()
    if got.status != 304 or cached is None:
        atomic_write(cache.vuln_path(sha, "data"), data)
    unchanged = got.status == 304
    doc = {
        "url": url,
        "sha256": sha,
        "etag": got.etag or (old_etag if unchanged else None),
        "last_modified": got.last_modified or (old_modified if unchanged else None),
        "fetched": now,
    }
    atomic_write(record_path, seal(json.dumps(doc).encode()))
    return data, sha, now


def describe_age(seconds: float) -> str:
    if seconds < 120:
        return f"{int(seconds)} s"
    if seconds < 7200:
        return f"{int(seconds // 60)} min"
    if seconds < 172800:
        return f"{int(seconds // 3600)} h"
    return f"{int(seconds // 86400)} days"


def load(spec: str, cache: Cache, *, offline: bool = False) -> Database:
    """The data source ``spec`` names (a path or an http(s) URL), indexed."""
    if re.match(r"^https?://", spec):
        data, sha, fetched = _fetch_url(spec, cache, offline)
        return _load_index(cache, sha, spec, fetched) or _build(cache, sha, spec, data, None, fetched)
    if "://" in spec:
        raise VulnError(
            f"vulnerability data {spec[:100]}: only http:// and https:// URLs (or a path) are read"
        )
    path = Path(spec).expanduser()
    if path.is_dir():
        sha, records = _dir_records(path, spec)
        newest = max((path / r).stat().st_mtime for r, _ in records) if records else None
        return _load_index(cache, sha, spec, newest) or _build(cache, sha, spec, None, records, newest)
    if not path.exists():
        raise VulnError(f"vulnerability data {spec}: no such file or directory")
    data = _read_file(path, spec)
    sha = hashlib.sha256(data).hexdigest()
    fetched = path.stat().st_mtime
    return _load_index(cache, sha, spec, fetched) or _build(cache, sha, spec, data, None, fetched)


def from_environment(flags: list[str] | None) -> list[str]:
    """``--db`` values, else ``DISTILL_VULN_DB`` (separated by white space)."""
    if flags:
        return flags
    return os.environ.get("DISTILL_VULN_DB", "").split()
