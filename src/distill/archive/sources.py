"""Where the Debian archive is: the host's apt sources, the environment, or the user.

The mirror is never built in. By default it is read from the host's apt sources
(``/etc/apt/sources.list.d/*.sources`` in deb822 form and ``/etc/apt/sources.list``
plus ``*.list`` in one-line form); ``--mirror`` / ``DISTILL_MIRROR`` and
``--security-mirror`` / ``DISTILL_SECURITY_MIRROR`` override it, and a spec may list
its own ``sources``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from distill.debian.deb822 import iter_paragraphs
from distill.distros import DEBIAN_SUITE_NAMES, Distro
from distill.errors import ArchiveError, KeyringError

DEFAULT_KEYRINGS = (
    Path("/usr/share/keyrings/debian-archive-keyring.gpg"),
    Path("/usr/share/keyrings/debian-archive-keyring.pgp"),
)


@dataclass(frozen=True)
class Source:
    """One suite of one repository: where to fetch it and which keys sign it."""

    url: str
    suite: str
    components: tuple[str, ...] = ("main",)
    keyrings: tuple[Path, ...] = field(default=())

    @property
    def base(self) -> str:
        return self.url.rstrip("/")


@dataclass(frozen=True)
class HostSource:
    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: tuple[Path, ...]


def _parse_sources_file(text: str) -> list[HostSource]:
    out: list[HostSource] = []
    for para in iter_paragraphs(text):
        if "deb" not in para.get("Types", "").split():
            continue
        if para.get("Enabled", "yes").strip().lower() == "no":
            continue
        signed = para.get("Signed-By", "").strip()
        # Signed-By may embed a key block instead of naming files; only files are usable.
        keyrings = tuple(Path(p) for p in signed.split() if p.startswith("/")) if signed else ()
        for uri in para.get("URIs", "").split():
            out.append(
                HostSource(
                    uri,
                    tuple(para.get("Suites", "").split()),
                    tuple(para.get("Components", "").split()),
                    keyrings,
                )
            )
    return out


def _parse_list_file(text: str) -> list[HostSource]:
    out: list[HostSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        rest = line[4:].strip()
        keyrings: tuple[Path, ...] = ()
        if rest.startswith("["):
            opts, _, rest = rest[1:].partition("]")
            for opt in opts.split():
                key, _, value = opt.partition("=")
                if key == "signed-by":
                    keyrings = tuple(Path(p) for p in value.split(","))
        parts = rest.split()
        if len(parts) >= 2:
            out.append(HostSource(parts[0], (parts[1],), tuple(parts[2:]), keyrings))
    return out


def read_host_sources(root: Path = Path("/")) -> list[HostSource]:
    """Every enabled ``deb`` source in the host's apt configuration, in apt's order."""
    apt = root / "etc/apt"
    found: list[HostSource] = []
    main_list = apt / "sources.list"
    files: list[Path] = [main_list] if main_list.is_file() else []
    parts = apt / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        found += _parse_sources_file(text) if path.suffix == ".sources" else _parse_list_file(text)
    return found


def _is_debian(src: HostSource) -> bool:
    for suite in src.suites:
        base = suite.split("/")[0].split("-")[0]
        if base in DEBIAN_SUITE_NAMES:
            return True
    return False


def _is_security(src: HostSource) -> bool:
    return any(s.endswith("-security") or s.endswith("/updates") for s in src.suites)


@dataclass(frozen=True)
class Mirrors:
    main: str
    security: str | None
    keyrings: tuple[Path, ...]


def host_mirrors(root: Path = Path("/")) -> Mirrors | None:
    """The Debian mirror (and security mirror) named by the host's apt sources."""
    debian = [s for s in read_host_sources(root) if _is_debian(s)]
    main = next((s for s in debian if not _is_security(s)), None)
    if main is None:
        return None
    security = next((s for s in debian if _is_security(s)), None)
    return Mirrors(main.uri, security.uri if security else None, main.signed_by)


def default_keyrings() -> tuple[Path, ...]:
    for path in DEFAULT_KEYRINGS:
        if path.is_file():
            return (path,)
    raise KeyringError(
        "no Debian archive keyring found at " + " or ".join(map(str, DEFAULT_KEYRINGS)),
        hint="install debian-archive-keyring, or name a keyring in the spec (keyring:)",
    )


def host_keyrings(root: Path = Path("/")) -> tuple[Path, ...]:
    """The keyrings the host's Debian source is signed with, else the default one."""
    host = host_mirrors(root)
    return host.keyrings if host and host.keyrings else default_keyrings()


def check_keyrings(keyrings: tuple[Path, ...]) -> tuple[Path, ...]:
    for k in keyrings:
        if not k.is_file():
            raise KeyringError(f"keyring {k} does not exist", hint="name an existing keyring file")
    return keyrings


def _derived_security(main: str) -> str:
    # Debian's own layout serves the security suites beside the archive, at
    # <archive>-security; a mirror that does not should be named explicitly.
    return main.rstrip("/") + "-security"


def distro_sources(
    distro: Distro,
    *,
    mirror: str | None = None,
    security_mirror: str | None = None,
    keyrings: tuple[Path, ...] | None = None,
    components: tuple[str, ...] = ("main",),
    env: dict[str, str] | None = None,
    root: Path = Path("/"),
) -> list[Source]:
    """The sources a distro implies: release, -updates and -security suites.

    Precedence for the mirror: the ``mirror`` argument (``--mirror``), then
    ``DISTILL_MIRROR``, then the host's apt sources.
    """
    env = dict(os.environ) if env is None else env
    host = host_mirrors(root)
    main = mirror or env.get("DISTILL_MIRROR") or (host.main if host else None)
    if not main:
        raise ArchiveError(
            "no Debian mirror is configured: the host's apt sources name none",
            hint="pass --mirror URL or set DISTILL_MIRROR",
        )
    security = security_mirror or env.get("DISTILL_SECURITY_MIRROR")
    if not security:
        explicit_main = bool(mirror or env.get("DISTILL_MIRROR"))
        security = host.security if host and host.security and not explicit_main else _derived_security(main)
    keyrings = check_keyrings(keyrings if keyrings is not None else host_keyrings(root))
    srcs = [Source(main, suite, components, keyrings) for suite in distro.suites]
    srcs.append(Source(security, distro.security_suite, components, keyrings))
    return srcs
