"""The fleet report: per workload (its images' audits and its manifest's findings), per
namespace and for the fleet (migration progress, attack surface still removable and
removed so far, the worst offenders first), the change since a baseline report, and
its renderings: the terminal summary, JSON (what ``--baseline`` reads back) and
Markdown (for a pull request comment). The HTML page: :mod:`distill.fleet.html`."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from distill import __version__
from distill.audit.model import SEVERITIES, rank
from distill.errors import DistillError, FleetError
from distill.fleet.images import ImageEntry, Resolved
from distill.fleet.inventory import Inventory, Workload
from distill.limits import MAX_JSON, read_json

SCHEMA = "distill-fleet"
SCHEMA_VERSION = 1
GRADES = ("A", "B", "C", "D", "F")
MiB = 1048576
_PROBE_IDS = ("K8S-EXEC-PROBE", "K8S-EXEC-HOOK")


def _pinned(image: str) -> bool:
    return bool(re.search(r"@sha256:[0-9a-f]{64}$", image))


def _tag(image: str) -> str | None:
    ref = image.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.rpartition(":")[2] if ":" in last else None


def _debug_tag(image: str) -> bool:
    return bool(re.search(r"debug", _tag(image) or ""))


def _surface(entries: Iterable[ImageEntry]) -> dict[str, Any]:
    es = list(entries)
    return {
        "images": len(es),
        "packages": sum(e.packages for e in es),
        "shells": sum(len(e.shells) for e in es),
        "package_managers": sum(len(e.package_managers) for e in es),
        "setuid": sum(len(e.setuid) for e in es),
        "mib": round(sum(e.content_bytes for e in es) / MiB, 1),
    }


def _names(paths: Iterable[str]) -> list[str]:
    return sorted({p.rsplit("/", 1)[-1] for p in paths})


def workload_record(
    w: Workload,
    resolved: dict[str, Resolved | DistillError],
    audits: dict[str, ImageEntry | DistillError],
    vulns: dict[str, dict[str, int]] | None,
) -> dict[str, Any]:
    containers, errors = [], []
    entries: dict[str, ImageEntry] = {}
    for c in w.containers:
        row: dict[str, Any] = {"name": c.name, "role": c.role, "image": c.image}
        if c.running:
            row["running"] = c.running  # what a live Pod runs: audited rather than what the tag names now
        r = resolved.get(c.ref)
        if isinstance(r, Resolved):
            row["digest"] = r.digest
            a = audits.get(r.digest)
            if isinstance(a, ImageEntry):
                entries[r.digest] = a
                row.update(grade=a.grade, distroless=a.distroless, verdict=a.verdict, flavor=a.flavor)
            elif isinstance(a, DistillError):
                row["error"] = a.one_line()
        elif isinstance(r, DistillError):
            row["error"] = r.one_line()
        if "error" in row:
            errors.append(f"{c.name}: {row['error']}")
        containers.append(row)
    es = list(entries.values())
    grades = [e.grade for e in es]
    read_all = len(errors) == 0 and bool(w.containers)
    # not distroless as soon as one image is not; distroless when every image is and was read
    distroless = False if any(not e.distroless for e in es) else (True if es and read_all else None)
    mf = w.findings
    app = next((c for c in containers if c["role"] == "app" and "flavor" in c), None)
    findings = [{"id": f.id, "severity": f.severity, "title": f.title, "where": f.location} for f in mf] + [
        {"id": f.id, "severity": f.severity, "title": f.title, "where": digest}
        for digest, e in entries.items()
        for f in e.findings
    ]
    record: dict[str, Any] = {
        "key": w.key,
        "namespace": w.namespace,
        "kind": w.kind,
        "name": w.name,
        "source": w.source,
        "pods": w.pods,
        "containers": containers,
        "images": sorted(entries),
        "status": "ok" if read_all else ("error" if not es else "partial"),
        "grade": max(grades, key=GRADES.index) if grades else None,
        "distroless": distroless,
        "flavor": app["flavor"] if app and not app.get("distroless") else None,
        "shells": _names(p for e in es for p in e.shells),
        "package_managers": _names(p for e in es for p in e.package_managers),
        "setuid": sum(len(e.setuid) for e in es),
        "root": any(e.root for e in es) or any(f.id == "K8S-RUN-AS-ROOT" for f in mf),
        "debug": sorted(
            {c.image for c in w.containers if _debug_tag(c.image)}
            | {c["image"] for c in containers if c.get("digest") in entries and entries[c["digest"]].debug}
        ),
        "unpinned": sorted({c.image for c in w.containers if c.image and not _pinned(c.image)}),
        "exec_probes": [f.title for f in mf if f.id in _PROBE_IDS],
        "packages": sum(e.packages for e in es),
        "mib": round(sum(e.content_bytes for e in es) / MiB, 1),
        "worst": max((f["severity"] for f in findings), key=rank, default=None),
        "findings": findings,
        "errors": errors,
    }
    if vulns is not None:
        counts = [vulns[d] for d in entries if d in vulns]
        record["vulnerabilities"] = (
            {
                k: sum(c.get(k, 0) for c in counts)
                for k in ("critical", "high", "medium", "low", "total", "fixable")
            }
            if counts
            else None
        )
    return record


def _offender_key(w: dict[str, Any]) -> tuple[Any, ...]:
    g = GRADES.index(w["grade"]) if w["grade"] else -1
    return (-(w["distroless"] is False), -g, -len(w["shells"]), -w["packages"], w["key"])


class _BaseWorkload(BaseModel):
    model_config = ConfigDict(extra="ignore")
    key: str
    distroless: bool | None
    grade: str | None
    packages: int
    shells: list[str]
    package_managers: list[str]
    mib: float


class _Removed(BaseModel):
    model_config = ConfigDict(extra="ignore")
    packages: int = 0
    shells: int = 0
    mib: float = 0.0
    since: str | None = None


class _Baseline(BaseModel):
    model_config = ConfigDict(extra="ignore")
    schema_: str
    version: int
    generated: str
    workloads: list[_BaseWorkload]
    removed: _Removed | None = None


def read_baseline(path: Path) -> dict[str, Any]:
    """A previous report of ``distill fleet`` (its JSON), bounded and checked."""
    doc = read_json(path, MAX_JSON, error=FleetError, what="--baseline")
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise FleetError(f'--baseline {path}: not a distill fleet JSON report (no "schema": "{SCHEMA}")')
    if doc.get("version") != SCHEMA_VERSION:
        raise FleetError(
            f"--baseline {path}: a fleet report of version {str(doc.get('version'))[:20]}, not {SCHEMA_VERSION}"
        )
    try:
        b = _Baseline.model_validate({**doc, "schema_": doc["schema"]})
    except ValidationError as exc:
        first = exc.errors()[0]
        at = ".".join(str(x) for x in first["loc"])
        raise FleetError(f"--baseline {path}: {at}: {first['msg']}") from None
    return {"file": str(path), **b.model_dump()}


def _diff(now: list[dict[str, Any]], base: dict[str, Any], removed: dict[str, Any]) -> dict[str, Any]:
    before = {w["key"]: w for w in base["workloads"]}
    current = {w["key"]: w for w in now}
    out: dict[str, Any] = {
        "file": base["file"],
        "generated": base["generated"],
        "migrated": [],
        "regressed": [],
        "improved": [],
        "new": sorted(k for k in current if k not in before),
        "gone": sorted(k for k in before if k not in current),
    }
    for key in sorted(set(before) & set(current)):
        b, n = before[key], current[key]
        if b["distroless"] is False and n["distroless"] is True:
            out["migrated"].append(key)
            sign = 1
        elif b["distroless"] is True and n["distroless"] is False:
            out["regressed"].append(key)
            sign = 1
        elif b["grade"] and n["grade"] and GRADES.index(n["grade"]) > GRADES.index(b["grade"]):
            out["regressed"].append(key)
            continue
        elif b["grade"] and n["grade"] and GRADES.index(n["grade"]) < GRADES.index(b["grade"]):
            out["improved"].append(key)
            continue
        else:
            continue
        removed["packages"] += sign * (b["packages"] - n["packages"])
        removed["shells"] += sign * (len(b["shells"]) - len(n["shells"]))
        removed["mib"] = round(removed["mib"] + sign * (b["mib"] - n["mib"]), 1)
    return out


def _now() -> str:
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = (
        dt.datetime.fromtimestamp(int(epoch), dt.UTC)
        if epoch and epoch.isascii() and epoch.isdigit() and int(epoch) <= 253402300799  # as build's check
        else dt.datetime.now(dt.UTC).replace(microsecond=0)
    )
    return when.isoformat().replace("+00:00", "Z")


def build(
    inv: Inventory,
    resolved: dict[str, Resolved | DistillError],
    audits: dict[str, ImageEntry | DistillError],
    *,
    arch: str,
    vulns: dict[str, dict[str, int]] | None = None,
    vuln_note: str = "",
    baseline: dict[str, Any] | None = None,
    notes: list[str] | None = None,
) -> dict[str, Any]:
    """The fleet report as one JSON-ready document."""
    workloads = [workload_record(w, resolved, audits, vulns) for w in inv.workloads]
    good = {d: a for d, a in audits.items() if isinstance(a, ImageEntry)}
    namespaces = []
    for ns in sorted({w["namespace"] for w in workloads}):
        ws = [w for w in workloads if w["namespace"] == ns]
        todo = {d for w in ws for d in w["images"] if not good[d].distroless}
        s = _surface(good[d] for d in sorted(todo))
        on = sum(1 for w in ws if w["distroless"] is True)
        namespaces.append(
            {
                "namespace": ns,
                "workloads": len(ws),
                "distroless": on,
                "share": round(on / len(ws), 4),
                "removable": s,
            }
        )
    on = sum(1 for w in workloads if w["distroless"] is True)
    todo_all = sorted({d for w in workloads for d in w["images"] if not good[d].distroless})
    removed: dict[str, Any] = {"packages": 0, "shells": 0, "mib": 0.0, "since": None, "known": False}
    diff = None
    if baseline is not None:
        prev = baseline.get("removed") or {}
        removed.update(
            packages=prev.get("packages", 0),
            shells=prev.get("shells", 0),
            mib=prev.get("mib", 0.0),
            since=prev.get("since") or baseline["generated"],
            known=True,
        )
        diff = _diff(workloads, baseline, removed)
    errors = list(inv.errors)
    errors += [f"{w['key']}: {e}" for w in workloads for e in w["errors"]]
    return {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "generated": _now(),
        "tool": f"distill {__version__}",
        "inputs": inv.inputs,
        "arch": arch,
        "summary": {
            "workloads": len(workloads),
            "distroless": on,
            "share": round(on / len(workloads), 4) if workloads else 0.0,
            "namespaces": len(namespaces),
            "images": len(good),
            "images_distroless": sum(1 for a in good.values() if a.distroless),
            "images_failed": sum(1 for a in audits.values() if isinstance(a, DistillError))
            + sum(1 for r in resolved.values() if isinstance(r, DistillError)),
            "ignored_objects": inv.ignored,
            "grades": {g: sum(1 for w in workloads if w["grade"] == g) for g in GRADES},
        },
        "namespaces": namespaces,
        "removable": _surface(good[d] for d in todo_all),
        "removed": removed,
        "offenders": [w["key"] for w in sorted(workloads, key=_offender_key) if w["distroless"] is False][
            :20
        ],
        "vulnerabilities": {"available": vulns is not None, "note": vuln_note},
        "baseline": diff,
        "workloads": sorted(workloads, key=_offender_key),
        "images": {
            d: {k: v for k, v in a.model_dump().items() if k not in ("inventory", "format")}
            | ({"vulnerabilities": vulns.get(d)} if vulns is not None else {})
            for d, a in sorted(good.items())
        },
        "errors": errors,
        "notes": notes or [],
    }


def worst_severity(doc: dict[str, Any]) -> str | None:
    return max((w["worst"] for w in doc["workloads"] if w["worst"]), key=rank, default=None)


def fails(doc: dict[str, Any], fail_on: str) -> bool:
    worst = worst_severity(doc)
    return fail_on != "none" and worst is not None and rank(worst) >= rank(fail_on)


# -- renderings ------------------------------------------------------------------------


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


def headline(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    r = doc["removable"]
    return (
        f"{s['distroless']}/{s['workloads']} workloads on distroless ({s['share']:.0%}) in "
        f"{s['namespaces']} namespaces, {s['images']} images; still removable: {r['packages']} packages, "
        f"{r['shells']} shells, {r['mib']:.1f} MiB in {r['images']} images"
        + (f"; {len(doc['errors'])} errors" if doc["errors"] else "")
    )


def vulnerability_line(doc: dict[str, Any]) -> str:
    """The vulnerability counts over the fleet's images (each digest once), or why there are none."""
    v = doc["vulnerabilities"]
    if not v["available"]:
        return str(v["note"])
    counts = [i["vulnerabilities"] for i in doc["images"].values() if i.get("vulnerabilities")]
    total, fixable = sum(c["total"] for c in counts), sum(c["fixable"] for c in counts)
    return (
        f"{total} in {len(counts)} of {len(doc['images'])} images ({fixable} with a fix waiting; "
        f"the others' release is not in the data) {v['note']}"
    )


def _yes(v: bool | None) -> str:
    return "yes" if v is True else "no" if v is False else "?"


def _issues(w: dict[str, Any]) -> list[str]:
    out = []
    if w["shells"]:
        out.append("shell " + ",".join(w["shells"][:3]))
    if w["package_managers"]:
        out.append("pkg " + ",".join(w["package_managers"][:3]))
    if w["setuid"]:
        out.append(f"{w['setuid']} setuid")
    if w["root"]:
        out.append("root")
    if w["debug"]:
        out.append("debug image")
    if w["unpinned"]:
        out.append(f"{len(w['unpinned'])} unpinned")
    if w["exec_probes"]:
        out.append(f"{len(w['exec_probes'])} exec probe")
    if w["errors"]:
        out.append("unreadable image")
    return out


def terminal(doc: dict[str, Any], stream: IO[str], quiet: bool = False, limit: int = 15) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(file=stream, highlight=False, soft_wrap=False, width=None if stream.isatty() else 120)
    if not quiet:
        t = Table(title="migration by namespace", title_justify="left", pad_edge=False)
        for col in ("namespace", "workloads", "distroless", "progress", "removable pkgs", "shells", "MiB"):
            t.add_column(col, justify="left" if col == "namespace" else "right")
        for ns in doc["namespaces"]:
            bar = "█" * round(ns["share"] * 10) + "░" * (10 - round(ns["share"] * 10))
            r = ns["removable"]
            t.add_row(
                escape(ns["namespace"]), str(ns["workloads"]), str(ns["distroless"]),
                f"{bar} {ns['share']:.0%}", str(r["packages"]), str(r["shells"]), f"{r['mib']:.1f}",
            )  # fmt: skip
        console.print(t)
        flagged = [w for w in doc["workloads"] if w["distroless"] is not True or _issues(w)]
        worst = flagged[:limit]
        if worst:
            t = Table(title="worst first", title_justify="left", pad_edge=False)
            for col in ("workload", "grade", "distroless", "flavor", "packages", "issues"):
                t.add_column(col, overflow="fold")
            for w in worst:
                t.add_row(
                    escape(w["key"]), w["grade"] or "-", _yes(w["distroless"]), escape(w["flavor"] or "-"),
                    str(w["packages"]), escape("; ".join(_issues(w))),
                )  # fmt: skip
            console.print(t)
            hidden = len(flagged) - len(worst)
            if hidden > 0:
                console.print(f"  [dim]… and {hidden} more (-o report.html lists every workload)[/]")
        rm = doc["removed"]
        if rm["known"]:
            console.print(
                f"removed so far (since {escape(str(rm['since']))}): {rm['packages']} packages, "
                f"{rm['shells']} shells, {rm['mib']:.1f} MiB"
            )
        else:
            console.print("removed so far: not known yet (run again with --baseline THIS-REPORT.json)")
        b = doc["baseline"]
        if b is not None:
            console.print(
                f"since {escape(b['generated'])}: {len(b['migrated'])} migrated, {len(b['regressed'])} regressed, "
                f"{len(b['improved'])} improved, {len(b['new'])} new, {len(b['gone'])} gone"
            )
            for what in ("migrated", "regressed", "new", "gone"):
                for key in b[what][:10]:
                    console.print(f"  {what}: {escape(key)}")
        v = doc["vulnerabilities"]
        line = vulnerability_line(doc)
        console.print(
            f"vulnerabilities: {escape(line)}"
            if v["available"]
            else f"[dim]vulnerabilities: {escape(line)}[/]"
        )
        for n in doc["notes"]:
            console.print(f"[dim]note: {escape(n)}[/]")
    console.print(f"distill fleet: {escape(headline(doc))}")


def _md(text: Any) -> str:
    """A value for a Markdown table cell: markup characters and HTML escaped."""
    s = str(text)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(r"([\\`*_{}\[\]()#+!|~])", r"\\\1", s).replace("\n", " ")


def markdown(doc: dict[str, Any]) -> str:
    s = doc["summary"]
    out = [
        "## distill fleet",
        "",
        f"**{s['distroless']}/{s['workloads']} workloads on distroless ({s['share']:.0%})**, "
        f"{s['images']} images audited ({s['images_distroless']} distroless). {_md(headline(doc))}.",
        "",
        "| namespace | workloads | distroless | share | removable packages | shells | MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for ns in doc["namespaces"]:
        r = ns["removable"]
        out.append(
            f"| {_md(ns['namespace'])} | {ns['workloads']} | {ns['distroless']} | {ns['share']:.0%} | "
            f"{r['packages']} | {r['shells']} | {r['mib']:.1f} |"
        )
    b = doc["baseline"]
    if b is not None:
        out += ["", f"### Since {_md(b['generated'])}", ""]
        for what in ("migrated", "regressed", "improved", "new", "gone"):
            if b[what]:
                out.append(f"- **{what}** ({len(b[what])}): " + ", ".join(_md(k) for k in b[what][:30]))
    out += [
        "",
        "### Workloads, worst first",
        "",
        "| workload | grade | distroless | flavor | packages | issues |",
        "|---|---|---|---|---:|---|",
    ]
    for w in doc["workloads"]:
        out.append(
            f"| {_md(w['key'])} | {w['grade'] or '-'} | {_yes(w['distroless'])} | {_md(w['flavor'] or '-')} | "
            f"{w['packages']} | {_md('; '.join(_issues(w)) or '-')} |"
        )
    if doc["errors"]:
        out += ["", "### Errors", ""] + [f"- {_md(e)}" for e in doc["errors"]]
    out += ["", f"_Vulnerabilities: {_md(vulnerability_line(doc))}_"]
    return "\n".join(out) + "\n"


__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "SEVERITIES",
    "build",
    "fails",
    "markdown",
    "read_baseline",
    "terminal",
    "to_json",
]
