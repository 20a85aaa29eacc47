"""``distill fleet``: where every workload of a fleet stands on the way to distroless.

:mod:`~distill.fleet.inventory` reads the workloads (manifests, a live cluster's
``kubectl get … -o json``, lists of images), :mod:`~distill.fleet.images` resolves each
image to a digest and audits every digest once (cached by digest),
:mod:`~distill.fleet.report` puts the report together (and renders the terminal
summary, JSON and Markdown), :mod:`~distill.fleet.html` the self-contained HTML page.
See docs/fleet.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distill.archive.cache import Cache
from distill.errors import DistillError
from distill.fleet.images import ImageEntry, Images, Resolved
from distill.fleet.inventory import Inventory, read_inventory
from distill.fleet.report import build, read_baseline
from distill.oci.registry import RegistrySettings


@dataclass
class FleetOptions:
    settings: RegistrySettings = field(default_factory=RegistrySettings)
    cache_dir: Path | None = None
    arch: str | None = None
    default_registry: str | None = None
    jobs: int = 4
    baseline: Path | None = None
    dbs: list[str] = field(default_factory=list)
    fetch_vuln_data: bool = False


def vulnerability_counts(
    audits: dict[str, ImageEntry | DistillError], specs: list[str], cache: Cache, fetch: bool
) -> tuple[dict[str, dict[str, int]] | None, str]:
    """Per digest: vulnerabilities by severity and those with a fix (a security update
    waiting), from the scan's data sources as the cache holds them (``fetch``: a URL may be
    downloaded); None and why not when there is no data at hand."""
    if not specs:
        return None, (
            "no vulnerability data named (--db FILE|URL or DISTILL_VULN_DB, as for distill scan); "
            "counts are left out"
        )
    from distill.vuln import db as vdb
    from distill.vuln.inventory import Inventory as PkgInventory
    from distill.vuln.model import Pkg
    from distill.vuln.scan import check_coverage, match

    dbs = []
    for spec in specs:
        try:
            dbs.append(vdb.load(spec, cache, offline=not fetch))
        except DistillError as exc:
            return (
                None,
                f"vulnerability data not at hand offline ({exc.one_line()}); --fetch-vuln-data fetches it",
            )
    out: dict[str, dict[str, int]] = {}
    for digest, a in audits.items():
        if not isinstance(a, ImageEntry):
            continue
        inv = PkgInventory(digest, "image", [Pkg(*row) for row in a.inventory if len(row) == 7], a.codename)
        try:
            check_coverage(inv, dbs)
        except DistillError:
            continue  # the data does not cover this image's release: no count rather than a false 0
        counts = {"critical": 0, "high": 0, "medium": 0, "low": 0, "total": 0, "fixable": 0}
        for f in match(inv, dbs, [], {}, suites_read=False):
            counts["total"] += 1
            if f.severity in counts:
                counts[f.severity] += 1
            if f.state == "fixed":
                counts["fixable"] += 1
        out[digest] = counts
    label = ", ".join(db.label for db in dbs)
    return out, f"from {label} (fixable: a fixed version exists, a security update waiting)"


def run(
    targets: list[str],
    options: FleetOptions,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[dict[str, Any], Inventory, Images]:
    """Read the inventory, resolve and audit its images, and build the report."""
    from distill.distros import host_arch

    baseline = read_baseline(options.baseline) if options.baseline else None  # a bad one fails first
    inv = read_inventory(targets)
    arch = options.arch or host_arch()
    cache = Cache(options.cache_dir)
    images = Images(options.settings, cache, arch, options.default_registry, options.jobs)
    try:
        refs = sorted({c.ref for w in inv.workloads for c in w.containers})
        progress = progress if refs else None  # nothing to read: no "0 images" lines before the error
        if progress:
            progress("resolving", 0, len(refs))
        resolved = images.resolve_all(refs)
        if progress:
            progress("resolving", len(refs), len(refs))
        good = [r for r in resolved.values() if isinstance(r, Resolved)]
        total = len({r.digest for r in good})
        done = [0]
        if progress:
            progress("auditing", 0, total)

        def step(r: Resolved) -> None:
            done[0] += 1
            if progress:
                progress("auditing", done[0], total)

        audits = images.audit_all(good, step)
    finally:
        images.close()
    vulns, note = vulnerability_counts(audits, options.dbs, cache, options.fetch_vuln_data)
    doc = build(
        inv,
        resolved,
        audits,
        arch=arch,
        vulns=vulns,
        vuln_note=note,
        baseline=baseline,
        notes=images.notes,
    )
    return doc, inv, images


__all__ = ["FleetOptions", "run", "vulnerability_counts"]
