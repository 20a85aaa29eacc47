"""The values the vulnerability commands pass around: installed packages, advisories
and findings."""

from __future__ import annotations

from dataclasses import dataclass, field

from packageurl import PackageURL

SEVERITIES = ("unknown", "negligible", "low", "medium", "high", "critical")
STATES = ("fixed", "affected", "will-not-fix", "not-affected")
ECOSYSTEMS = ("deb", "pypi", "npm", "maven")

# Debian release numbers and codenames (the tracker names releases, OSV numbers them).
CODENAMES = {
    "10": "buster",
    "11": "bullseye",
    "12": "bookworm",
    "13": "trixie",
    "14": "forky",
    "15": "duke",
}


def rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else 0


@dataclass(frozen=True)
class Pkg:
    """One installed (or locked) package. For Debian, ``source``/``source_version`` are
    what advisories are matched against (Debian publishes them per source package)."""

    ecosystem: str  # deb | pypi | npm | maven
    name: str  # maven: group:artifact
    version: str
    source: str = ""
    source_version: str = ""
    arch: str = ""
    location: str = ""  # where it was found (a path in the image, the lock)

    @property
    def match_name(self) -> str:
        return (self.source or self.name) if self.ecosystem == "deb" else self.name

    @property
    def match_version(self) -> str:
        return (self.source_version or self.version) if self.ecosystem == "deb" else self.version

    def purl(self, distro: str = "") -> str:
        if self.ecosystem == "deb":
            q = {"arch": self.arch} if self.arch else {}
            if distro:
                q["distro"] = distro
            if self.source and self.source != self.name:
                q["upstream"] = self.source
            return PackageURL("deb", "debian", self.name, self.version, q or None).to_string()
        if self.ecosystem == "maven":
            group, _, artifact = self.name.partition(":")
            return PackageURL("maven", group, artifact, self.version).to_string()
        if self.ecosystem == "npm" and self.name.startswith("@"):
            scope, _, name = self.name.partition("/")
            return PackageURL("npm", scope, name, self.version).to_string()
        return PackageURL(self.ecosystem, None, self.name, self.version).to_string()


@dataclass(frozen=True, slots=True)
class Advisory:
    """One advisory about one package of one ecosystem, normalised from its source.

    ``ecosystem`` is ``debian:<codename>``, ``pypi``, ``npm`` or ``maven``; ``package`` the
    Debian source package, the canonical PyPI name, the npm name or ``group:artifact``.
    For the Debian tracker ``fixed`` is the version that fixes it (state ``fixed``) or
    None; OSV records give ``ranges`` (events) and ``versions`` instead."""

    id: str
    ecosystem: str
    package: str
    state: str  # fixed | affected | will-not-fix | not-affected
    fixed: str | None = None
    severity: str = "unknown"
    urgency: str = ""
    detail: str = ""  # no-dsa, postponed, ignored, end-of-life, undetermined ...
    summary: str = ""
    aliases: tuple[str, ...] = ()
    ranges: tuple[tuple[tuple[str, str], ...], ...] = ()  # per range: (event kind, version) ...
    versions: tuple[str, ...] = ()
    origin: str = ""  # tracker | osv


@dataclass
class Finding:
    """A vulnerability of one installed package."""

    id: str
    package: Pkg
    state: str  # fixed (a fix exists) | affected (no fix yet) | will-not-fix
    severity: str = "unknown"
    fixed_version: str | None = None
    available: str | None = None  # a version in the suites that carries the fix
    urgency: str = ""
    detail: str = ""
    summary: str = ""
    aliases: list[str] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)  # archive | tracker | osv
    waiver: dict[str, str] | None = None
    suites_read: bool = True  # whether the archive's suites were looked at for a fix

    @property
    def fix(self) -> str:
        """What a user can do: rebuild, wait, or nothing (Debian will not fix it)."""
        if self.state == "will-not-fix":
            return "will not be fixed"
        if self.state == "affected":
            return "no fix yet"
        if self.available:
            return "fixed by rebuilding"
        if self.package.ecosystem != "deb":
            return "fixed by upgrading it"
        return "fixed, not in the suites yet" if self.suites_read else "fixed"
