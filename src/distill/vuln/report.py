"""Rendering ``outdated`` (terminal, JSON, Markdown) and ``scan`` (terminal, JSON,
SARIF 2.1.0, CycloneDX 1.6 vulnerabilities / VEX)."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import IO, Any

from distill import __version__
from distill.audit.report import sarif_log
from distill.vuln.db import describe_age
from distill.vuln.model import SEVERITIES, Finding, rank
from distill.vuln.outdated import Outdated, Update
from distill.vuln.scan import ScanResult

_COLOUR = {
    "critical": "bold red",
    "high": "red",
    "medium": "yellow",
    "low": "cyan",
    "negligible": "dim",
    "unknown": "dim",
}
_LEVEL = {
    "critical": "error",
    "high": "error",
    "medium": "warning",
    "low": "note",
    "negligible": "note",
    "unknown": "note",
}
_SCORE = {
    "critical": "9.5",
    "high": "8.0",
    "medium": "5.5",
    "low": "3.0",
    "negligible": "0.5",
    "unknown": "0.0",
}


def _console(stream: IO[str]) -> Any:
    from rich.console import Console  # only the outdated table uses rich

    return Console(file=stream, highlight=False, soft_wrap=False, width=None if stream.isatty() else 140)


# -- outdated ----------------------------------------------------------------------------------


def _cve_text(u: Update, limit: int = 6) -> str:
    cves = u.cves
    if not cves:
        return "-"
    shown = ", ".join(cves[:limit])
    return f"{len(cves)}: {shown}{', …' if len(cves) > limit else ''}"


def update_json(u: Update) -> dict[str, Any]:
    return {
        "package": u.package.name,
        "archs": u.archs,
        "installed": u.package.version,
        "candidate": u.candidate.version,
        "suite": u.candidate.suite,
        "source": u.candidate.source,
        "source_versions": [u.package.match_version, u.candidate.source_version],
        "security": u.security,
        "urgency": u.urgency,
        "cves": u.cves,
        "entries": [
            {
                "version": e.version,
                "distributions": list(e.distributions),
                "urgency": e.urgency,
                "cves": list(e.cves),
            }
            for e in u.entries
        ],
        "changelog": u.changelog,
    }


def outdated_json(reports: list[Outdated], errors: list[str] | None = None) -> str:
    doc = {
        "tool": "distill",
        "version": __version__,
        "reports": [
            {
                "target": r.target,
                "suites": r.suites,
                "checked": r.checked,
                "security": [update_json(u) for u in r.security],
                "ordinary": [update_json(u) for u in r.ordinary],
                "notes": r.notes,
            }
            for r in reports
        ],
        "errors": errors or [],
    }
    return json.dumps(doc, indent=2) + "\n"


def outdated_terminal(reports: list[Outdated], stream: IO[str]) -> None:
    from rich.markup import escape as esc

    console = _console(stream)
    for r in reports:
        sec, other = r.security, r.ordinary
        head = f"[bold]{esc(r.target)}[/]: "
        if not r.updates:
            head += "[green]up to date[/]"
        else:
            head += f"{len(sec)} security update{'s' if len(sec) != 1 else ''}, {len(other)} other"
        where = f" ({r.checked} packages against {esc(', '.join(r.suites))})" if r.suites else ""
        console.print(head + where)
        for title, rows in (("security updates", sec), ("other updates", other)):
            if not rows:
                continue
            from rich.table import Table

            t = Table(title=title, title_justify="left", pad_edge=False)
            for col in ("package", "installed", "candidate", "suite", "urgency", "CVEs"):
                t.add_column(col, overflow="fold")
            for u in rows:
                name = u.package.name + (f" ({', '.join(u.archs)})" if len(u.archs) > 1 else "")
                cells = (
                    name,
                    u.package.version,
                    u.candidate.version,
                    u.candidate.suite,
                    u.urgency,
                    _cve_text(u),
                )
                t.add_row(*(esc(c) for c in cells))
            console.print(t)
        for n in r.notes:
            console.print(f"  [dim]note:[/] {esc(n)}")
        if sec:
            how = (
                f"distill lock {r.target} --update, then rebuild"
                if r.kind == "spec"
                else "distill lock SPEC --update, then rebuild"
                if r.kind == "lock"
                else "rebuild the image from an updated lock (distill lock SPEC --update)"
            )
            console.print(f"  [bold]to take them:[/] {esc(how)}")
        console.print()


def outdated_markdown(reports: list[Outdated]) -> str:
    out = ["# distill outdated", ""]
    for r in reports:
        out += [f"## {r.target}", ""]
        if not r.updates:
            out += [
                "Up to date."
                + (f" ({r.checked} packages against {', '.join(r.suites)})" if r.suites else ""),
                "",
            ]
        for title, rows in (("Security updates", r.security), ("Other updates", r.ordinary)):
            if not rows:
                continue
            out += [
                f"### {title}",
                "",
                "| package | installed | candidate | suite | urgency | CVEs |",
                "|---|---|---|---|---|---|",
            ]
            for u in rows:
                out.append(
                    f"| {u.package.name} | {u.package.version} | {u.candidate.version} | {u.candidate.suite} | "
                    f"{u.urgency} | {', '.join(u.cves) or '-'} |"
                )
            out.append("")
        for n in r.notes:
            out += [f"> {n}", ""]
    return "\n".join(out)


# -- scan ------------------------------------------------------------------------------------------


def finding_json(f: Finding) -> dict[str, Any]:
    p = f.package
    return {
        "id": f.id,
        "aliases": f.aliases,
        "package": p.name,
        "ecosystem": p.ecosystem,
        "version": p.version,
        "source": p.source or None,
        "source_version": p.source_version or None,
        "purl": p.purl(),
        "location": p.location,
        "severity": f.severity,
        "state": f.state,
        "fix": f.fix,
        "fixed_version": f.fixed_version,
        "available": f.available,
        "urgency": f.urgency or None,
        "detail": f.detail or None,
        "summary": f.summary,
        "origins": f.origins,
        **({"waiver": f.waiver} if f.waiver else {}),
    }


def _counts(findings: list[Finding]) -> dict[str, int]:
    c = Counter(f.severity for f in findings)
    return {s: c[s] for s in reversed(SEVERITIES) if c[s]}


def scan_json(results: list[ScanResult], errors: list[str]) -> str:
    doc = {
        "tool": "distill",
        "version": __version__,
        "results": [
            {
                "target": r.target,
                "kind": r.inventory.kind,
                "release": r.inventory.codename,
                "arch": r.inventory.arch,
                "packages": len(r.inventory.packages),
                "sources": r.sources,
                "counts": _counts(r.findings),
                "findings": [finding_json(f) for f in r.findings],
                "waived": [finding_json(f) for f in r.waived],
                "notes": r.notes,
            }
            for r in results
        ],
        "errors": errors,
    }
    return json.dumps(doc, indent=2) + "\n"


def _source_text(s: dict[str, Any]) -> str:
    if s["kind"] == "archive":
        return f"archive changelogs ({', '.join(s['suites'])})"
    age = s.get("age_seconds")
    return f"{s['name']} ({s['kind']}, {s['records']} records" + (
        f", {describe_age(age)} old)" if age is not None else ")"
    )


def _printable(text: str) -> str:
    """Text for a terminal: a control character (an escape sequence in a package name or
    a summary from a vulnerability feed) shown as '?', not sent to the terminal."""
    return text if text.isprintable() else "".join(c if c.isprintable() else "?" for c in text)


_ANSI = {"critical": "\x1b[1;31m", "high": "\x1b[31m", "medium": "\x1b[33m", "low": "\x1b[36m"}


def _plain_table(headers: list[str], rows: list[list[str]], stream: IO[str], colour: dict[int, str]) -> None:
    """Columns padded to their widest cell (a scan of a large image lists thousands of
    findings: a rich table of them took seconds to lay out). ``colour`` maps row indexes
    to an ANSI colour for the severity column (only on a terminal)."""
    rows = [[_printable(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    widths[-1] = len(headers[-1])  # the last column (the summary) is not padded
    stream.write("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() + "\n")
    for n, r in enumerate(rows):
        cells = [c.ljust(w) for c, w in zip(r, widths, strict=True)]
        if n in colour:
            cells[2] = colour[n] + cells[2] + "\x1b[0m"
        stream.write("  " + "  ".join(cells).rstrip() + "\n")


def scan_terminal(results: list[ScanResult], stream: IO[str]) -> None:
    tty = stream.isatty()
    for r in results:
        counts = ", ".join(f"{n} {s}" for s, n in _counts(r.findings).items()) or "none"
        stream.write(
            f"{_printable(r.target)}: {len(r.findings)} vulnerabilities ({counts})"
            + (f", {len(r.waived)} waived" if r.waived else "")
            + f" in {len(r.inventory.packages)} packages\n"
        )
        stream.write("  data: " + _printable("; ".join(_source_text(s) for s in r.sources) or "none") + "\n")
        if r.findings:
            rows: list[list[str]] = []
            colour: dict[int, str] = {}
            last = None
            for f in sorted(r.findings, key=lambda f: (f.package.name, -rank(f.severity), f.id)):
                p = f.package
                key = (p.ecosystem, p.name, p.version)
                name = (
                    ""
                    if key == last
                    else p.name + (f" ({p.source})" if p.source and p.source != p.name else "")
                )
                version = "" if key == last else p.version
                last = key
                if tty and f.severity in _ANSI:
                    colour[len(rows)] = _ANSI[f.severity]
                fix = f.fix + (f" ({f.detail})" if f.detail else "")
                rows.append(
                    [
                        name,
                        version,
                        f.severity,
                        f.id,
                        fix,
                        f.available or f.fixed_version or "-",
                        f.summary[:70],
                    ]
                )
            headers = ["package", "installed", "severity", "id", "fix", "fixed in", "summary"]
            _plain_table(headers, rows, stream, colour)
        for n in r.notes:
            stream.write(f"  note: {_printable(n)}\n")
        stream.write("\n")


def sarif(results: list[ScanResult], errors: list[str]) -> str:
    rules: dict[str, dict[str, Any]] = {}
    out: list[dict[str, Any]] = []
    for r in results:
        for f in [*r.findings, *r.waived]:
            p = f.package
            rules.setdefault(
                f.id,
                {
                    "id": f.id,
                    "shortDescription": {"text": f"{f.id} in {p.match_name}"},
                    "fullDescription": {"text": f.summary or f.id},
                    "help": {
                        "text": f"{f.fix}"
                        + (f": {f.available or f.fixed_version}" if f.fixed_version else "")
                    },
                    "defaultConfiguration": {"level": _LEVEL[f.severity]},
                    "properties": {
                        "security-severity": _SCORE[f.severity],
                        "tags": ["security", "vulnerability"],
                    },
                },
            )
            uri = (p.location.lstrip("/") if p.location.startswith("/") else p.location) or r.target
            result: dict[str, Any] = {
                "ruleId": f.id,
                "level": _LEVEL[f.severity],
                "message": {
                    "text": f"{p.name} {p.version}: {f.id} ({f.severity}), {f.fix}"
                    + (f" ({f.available or f.fixed_version})" if f.fixed_version else "")
                },
                "locations": [
                    {
                        "physicalLocation": {"artifactLocation": {"uri": uri}},
                        "logicalLocations": [
                            {"name": r.target, "kind": "image" if r.inventory.kind == "image" else "module"}
                        ],
                    }
                ],
                "partialFingerprints": {"package/vulnerability": f"{p.purl()}#{f.id}"},
                "properties": {
                    "severity": f.severity,
                    "purl": p.purl(),
                    "installed": p.version,
                    "state": f.state,
                    "fixed_version": f.fixed_version,
                    "target": r.target,
                },
            }
            if f.waiver:
                result["suppressions"] = [{"kind": "external", "justification": f.waiver["reason"]}]
            out.append(result)
    return sarif_log(rules, out, errors, "docs/vuln.md")


_ORIGIN = {"tracker": "Debian Security Tracker", "osv": "OSV", "archive": "Debian changelog"}


def cyclonedx(results: list[ScanResult], timestamp: str) -> str:
    """A CycloneDX 1.6 BOM of the affected components and their vulnerabilities (VEX):
    one per target; several targets give one BOM with every component."""
    components: dict[str, dict[str, Any]] = {}
    vulns: dict[tuple[str, str], dict[str, Any]] = {}
    for r in results:
        distro = f"debian-{_release_number(r.inventory.codename)}" if r.inventory.codename else ""
        for f in [*r.findings, *r.waived]:
            p = f.package
            purl = p.purl(distro if p.ecosystem == "deb" else "")
            components.setdefault(
                purl,
                {"bom-ref": purl, "type": "library", "name": p.name, "version": p.version, "purl": purl},
            )
            key = (f.id, purl)
            if key in vulns:
                continue
            v: dict[str, Any] = {
                "bom-ref": f"{f.id}#{purl}",
                "id": f.id,
                "source": {"name": _ORIGIN.get(f.origins[0], f.origins[0])},
                "ratings": [
                    {"severity": "info" if f.severity == "negligible" else f.severity, "method": "other"}
                ],
                "description": f.summary or f.id,
                "affects": [{"ref": purl, "versions": [{"version": p.version, "status": "affected"}]}],
            }
            if f.aliases:
                v["references"] = [
                    {"id": a, "source": {"name": _ORIGIN.get(f.origins[0], f.origins[0])}} for a in f.aliases
                ]
            if f.fixed_version:
                v["recommendation"] = f"{f.fix}: {f.available or f.fixed_version}"
            if f.waiver:
                analysis: dict[str, Any] = {
                    "state": f.waiver.get("state") or "exploitable",
                    "detail": f.waiver["reason"],
                }
                if not f.waiver.get("state"):
                    analysis["response"] = ["will_not_fix"]
                if f.waiver.get("justification"):
                    analysis["justification"] = f.waiver["justification"]
                v["analysis"] = analysis
            elif f.state == "will-not-fix":
                v["analysis"] = {
                    "state": "exploitable",
                    "response": ["will_not_fix"],
                    "detail": f.detail or "the distribution will not fix it",
                }
            elif f.state == "fixed" and f.available:
                v["analysis"] = {
                    "state": "exploitable",
                    "response": ["update"],
                    "detail": f"fixed in {f.available} in the suites",
                }
            else:
                v["analysis"] = {"state": "exploitable", "detail": f.fix}
            vulns[key] = v
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "tools": {"components": [{"type": "application", "name": "distill", "version": __version__}]},
            "component": {
                "type": "container" if all(r.inventory.kind == "image" for r in results) else "application",
                "name": ", ".join(r.target for r in results)[:200] or "scan",
                "bom-ref": "target",
            },
        },
        "components": list(components.values()),
        "vulnerabilities": list(vulns.values()),
    }
    return json.dumps(doc, indent=2) + "\n"


def _release_number(codename: str | None) -> str:
    from distill.vuln.model import CODENAMES

    return next((n for n, c in CODENAMES.items() if c == codename), codename or "")
