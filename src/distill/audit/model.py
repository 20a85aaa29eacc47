"""What an audit says: findings (id, severity, location, explanation, fix) and, per
target, a report with facts, a grade and a verdict."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SEVERITIES = ("info", "low", "medium", "high", "critical")
# Points a finding of each severity takes off 100 (see grade()).
_PENALTY = {"info": 0, "low": 3, "medium": 8, "high": 20, "critical": 40}


def rank(severity: str) -> int:
    return SEVERITIES.index(severity)


@dataclass
class Finding:
    id: str
    severity: str
    title: str
    location: str  # file:line, or an image path / image config field
    explanation: str
    fix: str
    line: int | None = None  # for file targets (SARIF regions)
    paths: list[str] = field(default_factory=list)  # every image path concerned

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if not self.paths:
            d.pop("paths")
        if self.line is None:
            d.pop("line")
        return d


@dataclass
class Report:
    target: str
    kind: str  # image | dockerfile | kubernetes
    findings: list[Finding] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    recommendation: dict[str, Any] | None = None
    # Files the migrated spec needs beside it (requirements.txt, package-lock.json); not in the JSON
    files: dict[str, bytes] = field(default_factory=dict)

    @property
    def score(self) -> int:
        return max(0, 100 - sum(_PENALTY[f.severity] for f in self.findings))

    @property
    def grade(self) -> str:
        if any(f.severity == "critical" for f in self.findings):
            return "F"
        s = self.score
        return "A" if s >= 90 else "B" if s >= 75 else "C" if s >= 55 else "D" if s >= 35 else "F"

    def worst(self) -> str | None:
        return max((f.severity for f in self.findings), key=rank, default=None)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target, "kind": self.kind}
        if self.kind == "image":
            out.update(
                grade=self.grade, score=self.score, verdict=self.facts.get("verdict"), facts=self.facts
            )
        out["findings"] = [f.to_json() for f in self.findings]
        if self.recommendation is not None:
            out["recommendation"] = self.recommendation
        return out
