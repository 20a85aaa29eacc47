"""The Debian releases distill knows by name, and what each implies."""

from __future__ import annotations

import platform
from dataclasses import dataclass

from distill.errors import SpecError


@dataclass(frozen=True)
class Distro:
    name: str  # distill's name, e.g. "debian13"
    version: str  # "13"
    codename: str  # "trixie"
    merged_usr: bool

    @property
    def suites(self) -> tuple[str, ...]:
        """Suites on the main mirror, in precedence order for equal versions."""
        return (self.codename, f"{self.codename}-updates")

    @property
    def security_suite(self) -> str:
        return f"{self.codename}-security"


DISTROS: dict[str, Distro] = {
    "debian13": Distro("debian13", "13", "trixie", merged_usr=True),
    "debian12": Distro("debian12", "12", "bookworm", merged_usr=True),
}
DEFAULT_DISTRO = "debian13"

# Debian's architecture names that distill can build for (the archive's ports).
ARCHS = ("amd64", "arm64", "armhf", "armel", "i386", "ppc64el", "riscv64", "s390x")

# Every Debian codename and alias that can appear in an apt source (to recognise
# which host sources point at a Debian mirror).
DEBIAN_SUITE_NAMES = frozenset(
    {
        "buster",
        "bullseye",
        "bookworm",
        "trixie",
        "forky",
        "duke",
        "sid",
        "stable",
        "oldstable",
        "oldoldstable",
        "testing",
        "unstable",
        "experimental",
    }
)


_MACHINE_TO_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "armhf",
    "i686": "i386",
    "ppc64le": "ppc64el",
    "riscv64": "riscv64",
    "s390x": "s390x",
}


def host_arch() -> str:
    """The Debian architecture of this machine (amd64 when it is none Debian names)."""
    return _MACHINE_TO_ARCH.get(platform.machine(), "amd64")


def get_distro(name: str) -> Distro:
    try:
        return DISTROS[name]
    except KeyError:
        known = ", ".join(sorted(DISTROS))
        raise SpecError(f"unknown distro {name!r}", hint=f"known distros: {known}") from None
