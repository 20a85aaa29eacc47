"""Keeping images current: ``distill outdated`` (updates waiting in the suites and the
CVEs their changelogs name) and ``distill scan`` (vulnerabilities from the archive's
changelogs, the Debian Security Tracker and OSV records).

Modules: :mod:`~distill.vuln.changelog` (deb-changelog parsing), :mod:`~.archive`
(candidate .debs' changelogs, cached), :mod:`~.outdated`, :mod:`~.db` (tracker and OSV
data: formats, URLs, the indexed cache), :mod:`~.versions` (each ecosystem's order, OSV
ranges), :mod:`~.inventory` (a lock's or an image's packages), :mod:`~.sbom` (SPDX and
CycloneDX readers), :mod:`~.targets`, :mod:`~.scan` (matching, waivers) and
:mod:`~.report` (terminal, JSON, Markdown, SARIF, CycloneDX).
"""

from __future__ import annotations

from typing import Any

from distill.archive.cache import Cache
from distill.archive.repo import Archive
from distill.options import Options
from distill.vuln.outdated import Outdated, candidates, find_updates
from distill.vuln.scan import ScanResult, Waiver, apply_waivers, check_coverage, match, read_waivers
from distill.vuln.targets import Target, open_target


def _archive(target: Target, options: Options) -> Archive | None:
    if not target.sources or not target.installed:
        return None
    return Archive(
        target.sources,
        cache=Cache(options.cache_dir),
        offline=options.offline,
        reporter=options.reporter,
        jobs=options.jobs,
    )


def outdated(target: Target, options: Options) -> Outdated:
    """The updates waiting for every locked or installed Debian package of ``target``."""
    archive = _archive(target, options)
    name = target.inventory.name
    checked = sum(len(v) for v in target.installed.values())
    if archive is None:
        note = (
            "no Debian packages"
            if not target.installed
            else f"Debian {target.inventory.codename} is not a release distill has suites for"
        )
        return Outdated(name, [], checked, [], [note], target.inventory.kind)
    try:
        updates = find_updates(archive, target.installed, reporter=options.reporter, jobs=options.jobs)
        suites = [s.suite for s in archive.sources]
    finally:
        archive.close()
    return Outdated(name, suites, checked, updates, kind=target.inventory.kind)


def scan(
    target: Target,
    options: Options,
    dbs: list[Any],
    waivers: list[Waiver] | None = None,
    only_fixed: bool = False,
) -> ScanResult:
    """The findings of ``target`` from the archive and the given data sources."""
    inv = target.inventory
    check_coverage(inv, dbs)
    archive = _archive(target, options)
    notes = list(inv.notes)
    updates = []
    best = {}
    # the architecture whose suites are read: the inventory's, else the one the target was filed under
    arch = inv.arch if inv.arch in target.installed else next(iter(target.installed), None)
    if archive is not None and arch is not None:
        try:
            mine = {arch: inv.debs}
            cands = candidates(archive, mine)
            best = {name: pkg for (_, name), pkg in cands.items()}
            updates = find_updates(archive, mine, reporter=options.reporter, jobs=options.jobs, best=cands)
        finally:
            archive.close()
    elif inv.debs:
        notes.append(
            f"the archive's changelogs were not read: distill has no suites for Debian {inv.codename}"
        )
    findings = match(inv, dbs, updates, best, suites_read=archive is not None)
    if only_fixed:
        findings = [f for f in findings if f.state == "fixed"]
    sources: list[dict[str, Any]] = []
    if archive is not None:
        sources.append(
            {"name": "archive changelogs", "kind": "archive", "suites": [s.suite for s in archive.sources]}
        )
    for db in dbs:
        sources.append(
            {
                "name": db.label,
                "kind": db.kind,
                "sha256": db.sha256,
                "records": db.records,
                "age_seconds": None if db.age() is None else round(db.age() or 0.0),
            }
        )
    result = ScanResult(inv.name, inv, findings, [], sources, notes)
    if waivers:
        apply_waivers(result, waivers)
    return result


__all__ = ["Outdated", "ScanResult", "Target", "Waiver", "open_target", "outdated", "read_waivers", "scan"]
