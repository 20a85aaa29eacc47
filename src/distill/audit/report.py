"""Rendering audit reports: a terminal report (rich tables, colour on a TTY),
JSON, SARIF 2.1.0 (for code-scanning UIs) and Markdown; and the compare table."""

from __future__ import annotations

import json
from typing import IO, Any

from rich.console import Console
from rich.markup import escape as esc
from rich.table import Table

from distill import __version__
from distill.audit.model import SEVERITIES, Report, rank

_COLOUR = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan", "info": "dim"}
_GRADE_COLOUR = {"A": "bold green", "B": "green", "C": "yellow", "D": "red", "F": "bold red"}
_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note", "info": "note"}


def _mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 1048576:.1f} MiB"


def _sorted(report: Report) -> list[Any]:
    return sorted(report.findings, key=lambda f: (-rank(f.severity), f.line or 0, f.id))


def terminal(reports: list[Report], errors: list[str], stream: IO[str]) -> None:
    console = Console(file=stream, highlight=False, soft_wrap=False, width=None if stream.isatty() else 120)
    for r in reports:
        if r.kind == "image":
            fx = r.facts
            console.print(
                f"[bold]{esc(r.target)}[/]  grade [{_GRADE_COLOUR[r.grade]}]{r.grade}[/] ({r.score}/100) — "
                f"{esc(str(fx['verdict']))}"
            )
            t = Table(show_header=False, box=None, pad_edge=False)
            t.add_column(style="dim")
            t.add_column()
            dbs = (
                ", ".join(f"{k} {v if v is not None else '?'}" for k, v in fx["package_databases"].items())
                or "none"
            )
            rows = [
                ("os", fx["os"] or "unknown"),
                ("libc", fx["libc"] or "none"),
                ("arch", fx["architecture"]),
                ("packages", f"{fx['packages']} ({dbs})"),
                ("files", str(fx["files"])),
                (
                    "size",
                    f"{_mib(fx['uncompressed_bytes'])} uncompressed, {_mib(fx['compressed_bytes'])} compressed, "
                    f"{fx['layers']} layers",
                ),
                ("wasted", f"{_mib(fx['wasted_bytes'])} (efficiency {fx['efficiency']:.1%})"),
                ("user", fx["user"]),
                ("entrypoint", json.dumps((fx["entrypoint"] or []) + (fx["cmd"] or []))),
            ]
            for k, v in rows:
                t.add_row(k, esc(str(v)))
            console.print(t)
        else:
            extra = f" ({r.facts['workloads']} workloads)" if "workloads" in r.facts else ""
            console.print(f"[bold]{esc(r.target)}[/]  {r.kind}{extra}: {len(r.findings)} findings")
        if r.findings:
            t = Table(show_lines=False, pad_edge=False)
            for col in ("severity", "id", "location", "finding"):
                t.add_column(col, overflow="fold")
            for f in _sorted(r):
                t.add_row(f"[{_COLOUR[f.severity]}]{f.severity}[/]", esc(f.id), esc(f.location), esc(f.title))
            console.print(t)
            for f in _sorted(r):
                if rank(f.severity) >= rank("medium"):
                    console.print(
                        f"  [{_COLOUR[f.severity]}]{esc(f.id)}[/] {esc(f.explanation)}\n    [dim]fix:[/] {esc(f.fix)}"
                    )
        else:
            console.print("  [green]no findings[/]")
        rec = r.recommendation
        if rec and rec.get("flavor"):
            console.print(
                f"  [bold]recommended:[/] distill {esc(str(rec['flavor']))} ({esc(str(rec['variant']))}) — "
                f"{esc(str(rec['reason']))}"
            )
            for n in rec.get("notes", []):
                console.print(f"    [dim]note:[/] {esc(str(n))}")
            if rec.get("rewrite"):
                console.print("  [bold]suggested rewrite:[/]")
                for line in rec["rewrite"].splitlines():
                    console.print(f"    {line}", markup=False)
        elif rec and rec.get("reason"):
            console.print(f"  [dim]no recommendation: {esc(str(rec['reason']))}[/]")
        console.print()
    for e in errors:
        console.print(f"[bold red]error:[/] {esc(e)}", markup=True)


def to_json(reports: list[Report], errors: list[str]) -> str:
    return (
        json.dumps(
            {
                "tool": "distill",
                "version": __version__,
                "reports": [r.to_json() for r in reports],
                "errors": errors,
            },
            indent=2,
        )
        + "\n"
    )


def sarif(reports: list[Report], errors: list[str]) -> str:
    rules: dict[str, dict[str, Any]] = {}
    results = []
    for r in reports:
        for f in r.findings:
            rules.setdefault(
                f.id,
                {
                    "id": f.id,
                    "shortDescription": {
                        "text": f.title.split(": ", 1)[-1] if r.kind != "image" else f.title
                    },
                    "fullDescription": {"text": f.explanation},
                    "help": {"text": f.fix},
                    "defaultConfiguration": {"level": _LEVEL[f.severity]},
                    "properties": {
                        "security-severity": {
                            "critical": "9.5",
                            "high": "8.0",
                            "medium": "5.5",
                            "low": "3.0",
                            "info": "0.0",
                        }[f.severity]
                    },
                },
            )
            if r.kind == "image":
                loc: dict[str, Any] = {
                    "physicalLocation": {
                        "artifactLocation": {
                            "uri": (f.paths[0] if f.paths else f.location).lstrip("/")
                            if f.location.startswith("/")
                            else r.target
                        }
                    },
                    "logicalLocations": [{"name": r.target, "kind": "image"}],
                }
            else:
                loc = {
                    "physicalLocation": {
                        "artifactLocation": {"uri": r.target},
                        "region": {"startLine": f.line or 1},
                    }
                }
            results.append(
                {
                    "ruleId": f.id,
                    "level": _LEVEL[f.severity],
                    "message": {"text": f"{f.title}. {f.explanation} Fix: {f.fix}"},
                    "locations": [loc],
                    "properties": {"severity": f.severity, "target": r.target},
                }
            )
    return sarif_log(rules, results, errors, "docs/audit.md")


def sarif_log(
    rules: dict[str, dict[str, Any]], results: list[dict[str, Any]], errors: list[str], information_uri: str
) -> str:
    """A SARIF 2.1.0 log of one run of distill (its rules, results and any errors)."""
    doc = {
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "distill",
                        "version": __version__,
                        "informationUri": information_uri,
                        "rules": list(rules.values()),
                    }
                },
                "results": results,
                "invocations": [
                    {
                        "executionSuccessful": not errors,
                        "toolExecutionNotifications": [
                            {"level": "error", "message": {"text": e}} for e in errors
                        ],
                    }
                ],
            }
        ],
    }
    return json.dumps(doc, indent=2) + "\n"


def markdown(reports: list[Report], errors: list[str]) -> str:
    out = ["# distill audit", ""]
    for r in reports:
        out.append(f"## {r.target}")
        out.append("")
        if r.kind == "image":
            fx = r.facts
            out += [
                f"**Grade {r.grade}** ({r.score}/100): {fx['verdict']}",
                "",
                "| fact | value |",
                "|---|---|",
                f"| OS | {fx['os'] or 'unknown'} |",
                f"| libc | {fx['libc'] or 'none'} |",
                f"| packages | {fx['packages']} |",
                f"| files | {fx['files']} |",
                f"| size | {_mib(fx['uncompressed_bytes'])} ({_mib(fx['compressed_bytes'])} compressed) |",
                f"| wasted | {_mib(fx['wasted_bytes'])} |",
                f"| user | {fx['user']} |",
                "",
            ]
        if r.findings:
            out += ["| severity | id | location | finding | fix |", "|---|---|---|---|---|"]
            for f in _sorted(r):
                cells = [f.severity, f"`{f.id}`", f"`{f.location}`", f.title, f.fix]
                out.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        else:
            out.append("No findings.")
        rec = r.recommendation
        if rec and rec.get("flavor"):
            out += ["", f"**Recommended:** distill `{rec['flavor']}` ({rec['variant']}): {rec['reason']}."]
            out += [f"- {n}" for n in rec.get("notes", [])]
            if rec.get("rewrite"):
                out += ["", "```dockerfile", rec["rewrite"], "```"]
        out.append("")
    if errors:
        out += ["## Errors", ""] + [f"- {e}" for e in errors] + [""]
    return "\n".join(out)


def compare_rows(reports: list[Report]) -> list[dict[str, Any]]:
    rows = []
    for r in reports:
        fx = r.facts
        counts = {s: sum(1 for f in r.findings if f.severity == s) for s in SEVERITIES}
        rows.append(
            {
                "image": r.target,
                "size_bytes": fx["uncompressed_bytes"],
                "compressed_bytes": fx["compressed_bytes"],
                "packages": fx["packages"],
                "shell": bool(fx["shells"]),
                "package_manager": bool(fx["package_managers"]),
                "setuid": len(fx["setuid"]),
                "user": fx["user"],
                "findings": len(r.findings),
                "by_severity": {k: v for k, v in counts.items() if v},
                "grade": r.grade,
            }
        )
    return rows


def compare_table(reports: list[Report], stream: IO[str], fmt: str) -> None:
    rows = compare_rows(reports)
    if fmt == "json":
        stream.write(json.dumps({"images": rows}, indent=2) + "\n")
        return
    heads = [
        "Image",
        "Size",
        "Compressed",
        "Packages",
        "Shell",
        "Package manager",
        "Setuid",
        "User",
        "Findings",
        "Grade",
    ]

    def cells(row: dict[str, Any]) -> list[str]:
        sev = ", ".join(
            f"{v} {k}" for k, v in sorted(row["by_severity"].items(), key=lambda kv: -rank(kv[0]))
        )
        return [
            row["image"],
            _mib(row["size_bytes"]),
            _mib(row["compressed_bytes"]),
            str(row["packages"]),
            "yes" if row["shell"] else "no",
            "yes" if row["package_manager"] else "no",
            str(row["setuid"]),
            row["user"],
            f"{row['findings']}" + (f" ({sev})" if sev else ""),
            row["grade"],
        ]

    if fmt == "markdown":
        stream.write("| " + " | ".join(heads) + " |\n|" + "---|" * len(heads) + "\n")
        for row in rows:
            stream.write("| " + " | ".join(c.replace("|", "\\|") for c in cells(row)) + " |\n")
        return
    console = Console(file=stream, highlight=False, width=None if stream.isatty() else 160)
    t = Table()
    for h in heads:
        t.add_column(h, overflow="fold")
    for row in rows:
        t.add_row(*(esc(c) for c in cells(row)))
    console.print(t)
