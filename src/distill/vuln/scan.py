"""``distill scan``: the findings of one target from every data source, matched as the
established scanners match them.

* Debian packages are matched by **source** package and source version (dpkg order,
  epochs, ``~``): Debian publishes advisories per source, and a binNMU or a binary with
  its own version still carries its source's fixes.
* The archive's changelogs (always): a CVE named between the installed version and a
  newer candidate in the suites is ``fixed``, and the candidate makes it "fixed by
  rebuilding".
* The Debian Security Tracker (``--db``): fixed / affected (no fix yet; no-dsa,
  postponed) / will-not-fix (ignored, end of life); not-affected records are left out.
* OSV records (``--db``): ECOSYSTEM and SEMVER ranges evaluated in each ecosystem's
  order (Debian, PyPI, npm, Maven).

Findings of one package and vulnerability from several sources are merged (a GHSA
record that aliases one CVE is shown under the CVE); the tracker's severity and state
come first, then OSV's, then the changelog's upload urgency.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.debian.packages import Package
from distill.debian.version import version_key
from distill.errors import VulnError
from distill.vuln.db import Database, urgency_severity
from distill.vuln.inventory import Inventory
from distill.vuln.model import Finding, rank
from distill.vuln.outdated import Update
from distill.vuln.versions import in_ranges

_PRIORITY = {"tracker": 0, "osv": 1, "archive": 2}


@dataclass
class Waiver:
    id: str
    reason: str
    package: str | None = None
    expires: dt.date | None = None
    state: str | None = None  # a CycloneDX analysis state, for the VEX output
    justification: str | None = None

    def matches(self, f: Finding) -> bool:
        if self.id != f.id and self.id not in f.aliases:
            return False
        p = f.package
        return self.package is None or self.package in (p.name, p.source, p.purl())

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and self.expires < today


@dataclass
class ScanResult:
    target: str
    inventory: Inventory
    findings: list[Finding]
    waived: list[Finding] = field(default_factory=list)
    sources: list[dict[str, Any]] = field(default_factory=list)  # data sources used, with their age
    notes: list[str] = field(default_factory=list)

    def at_least(self, severity: str) -> list[Finding]:
        return [f for f in self.findings if rank(f.severity) >= rank(severity)]


def _from_updates(updates: list[Update]) -> list[Finding]:
    out = []
    for u in updates:
        for cve in u.cves:
            e = u.fixed_in(cve)
            assert e is not None
            out.append(
                Finding(
                    cve,
                    u.package,
                    "fixed",
                    urgency_severity(e.urgency),
                    fixed_version=e.version,
                    available=u.candidate.version,
                    urgency=e.urgency,
                    summary=e.notes.get(cve, ""),
                    origins=["archive"],
                )
            )
    return out


def _available(best: Package | None, fixed: str | None) -> str | None:
    if best is None or fixed is None:
        return None
    return best.version if version_key(best.source_version) >= version_key(fixed) else None


def match(
    inv: Inventory,
    dbs: list[Database],
    updates: list[Update],
    best: dict[str, Package],
    suites_read: bool = True,
) -> list[Finding]:
    """Every finding for ``inv``; ``best`` maps package names to their newest candidate
    (``suites_read`` False: the suites could not be looked at)."""
    findings: list[Finding] = _from_updates(updates)
    eco_deb = f"debian:{inv.codename}" if inv.codename else None
    for db in dbs:
        for p in inv.packages:
            eco = eco_deb if p.ecosystem == "deb" else p.ecosystem
            if eco is None:
                continue
            for a in db.advisories(eco, p.match_name):
                if a.origin == "tracker":
                    if a.state == "fixed":
                        assert a.fixed is not None
                        if version_key(p.match_version) >= version_key(a.fixed):
                            continue
                        f = Finding(
                            a.id, p, "fixed", a.severity, a.fixed, _available(best.get(p.name), a.fixed)
                        )
                    else:
                        f = Finding(a.id, p, a.state, a.severity)
                else:
                    hit, fixed = in_ranges(
                        "deb" if p.ecosystem == "deb" else eco, p.match_version, a.ranges, a.versions
                    )
                    if not hit:
                        continue
                    available = _available(best.get(p.name), fixed) if p.ecosystem == "deb" else None
                    f = Finding(a.id, p, "fixed" if fixed else "affected", a.severity, fixed, available)
                f.urgency, f.detail, f.summary = a.urgency, a.detail, a.summary
                f.suites_read = suites_read
                f.aliases = list(a.aliases)
                f.origins = [a.origin]
                findings.append(f)
    return merge(findings)


def merge(findings: list[Finding]) -> list[Finding]:
    """One finding per package and vulnerability (ids and aliases), the most trusted
    source's fields first."""
    groups: dict[tuple[str, str, str, str], list[Finding]] = {}
    alias_of: dict[tuple[str, str, str, str], tuple[str, str, str, str]] = {}
    for f in sorted(findings, key=lambda f: _PRIORITY.get(f.origins[0], 9)):
        eco, name, version = f.package.ecosystem, f.package.name, f.package.version
        key = (eco, name, version, f.id)
        target = alias_of.get(key) or next(
            (alias_of[(eco, name, version, a)] for a in f.aliases if (eco, name, version, a) in alias_of), key
        )
        groups.setdefault(target, []).append(f)
        for vid in (f.id, *f.aliases):
            alias_of.setdefault((eco, name, version, vid), target)
    out = []
    for group in groups.values():
        first = group[0]
        for other in group[1:]:
            for o in other.origins:
                if o not in first.origins:
                    first.origins.append(o)
            for a in (other.id, *other.aliases):
                if a != first.id and a not in first.aliases:
                    first.aliases.append(a)
            first.available = first.available or other.available
            if first.fixed_version is None and first.state == "fixed":
                first.fixed_version = other.fixed_version
            if first.severity == "unknown":
                first.severity = other.severity
            first.summary = first.summary or other.summary
        out.append(first)
    return sorted(out, key=lambda f: (f.package.name, -rank(f.severity), f.id))


# -- waivers --------------------------------------------------------------------------------


def read_waivers(path: Path) -> list[Waiver]:
    """A waiver file: YAML (or JSON) ``waivers:`` (or a top-level list) of
    ``{id, reason, package?, expires?, state?, justification?}``."""
    from distill.limits import read_text
    from distill.yamlsafe import load_yaml

    text = read_text(path, error=VulnError, what="waiver file")
    doc = load_yaml(text, label=f"waiver file {path}", error=VulnError)
    items = doc.get("waivers") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise VulnError(f"waiver file {path}: expected a list of waivers (or 'waivers:' with one)")
    out = []
    for i, w in enumerate(items):
        where = f"waiver file {path}: waivers[{i}]"
        if not isinstance(w, dict):
            raise VulnError(f"{where}: not a mapping")
        unknown = sorted(set(map(str, w)) - {"id", "reason", "package", "expires", "state", "justification"})
        if unknown:
            raise VulnError(f"{where}: unknown field {unknown[0][:40]!r}")
        vid, reason = w.get("id"), w.get("reason")
        if not isinstance(vid, str) or not vid.strip():
            raise VulnError(f"{where}: id: a vulnerability id is required (CVE-..., GHSA-...)")
        if not isinstance(reason, str) or not reason.strip():
            raise VulnError(f"{where}: reason: say why it is waived")
        expires = w.get("expires")
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError:
                raise VulnError(f"{where}: expires: not a date (YYYY-MM-DD)") from None
        if isinstance(expires, dt.datetime):
            expires = expires.date()
        if expires is not None and not isinstance(expires, dt.date):
            raise VulnError(f"{where}: expires: not a date (YYYY-MM-DD)")
        package = w.get("package")
        if package is not None and not isinstance(package, str):
            raise VulnError(f"{where}: package: a package name")
        state = w.get("state")
        if state is not None and state not in (
            "resolved",
            "exploitable",
            "in_triage",
            "false_positive",
            "not_affected",
        ):
            raise VulnError(
                f"{where}: state: one of resolved, exploitable, in_triage, false_positive, not_affected"
            )
        just = w.get("justification")
        if just is not None and not isinstance(just, str):
            raise VulnError(f"{where}: justification: a CycloneDX justification")
        out.append(Waiver(vid.strip(), reason.strip(), package, expires, state, just))
    return out


def apply_waivers(result: ScanResult, waivers: list[Waiver], today: dt.date | None = None) -> None:
    today = today or dt.date.today()
    kept, waived = [], []
    for f in result.findings:
        w = next((w for w in waivers if w.matches(f)), None)
        if w is not None and w.expired(today):
            result.notes.append(
                f"the waiver of {w.id} expired on {w.expires}: it no longer hides its finding"
            )
            w = None
        if w is None:
            kept.append(f)
            continue
        f.waiver = {"reason": w.reason, "expires": str(w.expires or "")}
        if w.state:
            f.waiver["state"] = w.state
        if w.justification:
            f.waiver["justification"] = w.justification
        waived.append(f)
    result.findings, result.waived = kept, waived


def check_coverage(inv: Inventory, dbs: list[Database]) -> None:
    """A tracker export that has nothing for the target's release cannot scan it."""
    if not inv.debs:
        return
    trackers = [d for d in dbs if d.kind == "tracker"]
    eco = f"debian:{inv.codename}"
    if trackers and not any(d.covers(eco) for d in trackers):
        have = sorted({e.partition(":")[2] for d in trackers for e in d.ecosystems})
        raise VulnError(
            f"the tracker data ({trackers[0].label}) has no records for Debian {inv.codename}, the release of {inv.name}",
            hint=f"it covers {', '.join(have[:8]) or 'no release'}",
        )
