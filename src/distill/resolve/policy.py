"""The pruning policy: dependency edges a distroless image does not follow.

Debian's ``Depends`` serve two masters: the program at run time, and the
maintainer scripts and interactive tools around installation. A distroless image
never runs maintainer scripts (distill reproduces their effects natively), has no
shell and no package manager, so edges to the packages below are cut. Explicitly
requested packages are always installed; ``exclude`` adds names; ``keep`` takes
names out of the default list.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_SCRIPTS = "only maintainer scripts use it"
_SHELL = "a shell: distroless images have none"

DEFAULT_PRUNE: Mapping[str, str] = {
    # Package management and configuration prompts.
    "dpkg": "the package manager: only maintainer scripts and triggers need it",
    "apt": "the package manager",
    "debconf": "configuration prompts for maintainer scripts",
    "debconf-2.0": "configuration prompts for maintainer scripts",
    "cdebconf": "configuration prompts for maintainer scripts",
    "ucf": _SCRIPTS,
    "install-info": _SCRIPTS,
    "init-system-helpers": _SCRIPTS,
    "lsb-base": _SCRIPTS,
    "sysvinit-utils": _SCRIPTS,
    "sensible-utils": "interactive helpers (editor, pager, browser)",
    "adduser": _SCRIPTS + " (distill writes passwd/group itself)",
    "passwd": _SCRIPTS + " (distill writes passwd/group itself)",
    "login": "interactive login",
    # Interpreters and utilities that only scripts call.
    "perl-base": _SCRIPTS,
    "perl": _SCRIPTS,
    "awk": _SCRIPTS,
    "mawk": _SCRIPTS,
    "gawk": _SCRIPTS,
    "original-awk": _SCRIPTS,
    "util-linux": "maintainer scripts and interactive tools",
    "coreutils": "command-line utilities: nothing runs them without a shell",
    "debianutils": _SCRIPTS,
    "bash": _SHELL,
    "dash": _SHELL,
    "sh": _SHELL,
    "busybox": _SHELL + " (debug variants add a static busybox themselves)",
    # Tools whose effects distill reproduces natively.
    "openssl": "the openssl command-line tool; libraries come from libssl",
    "ca-certificates-java": "distill builds the Java keystore natively",
    "java-common": "update-alternatives glue; distill makes the links natively",
    "openssl-provider-legacy": "legacy algorithms (MD4, RC4, ...) OpenSSL does not load by default",
}


@dataclass(frozen=True)
class PrunePolicy:
    prune: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_PRUNE))
    exclude: frozenset[str] = frozenset()

    @classmethod
    def make(
        cls, *, defaults: bool = True, keep: Iterable[str] = (), exclude: Iterable[str] = ()
    ) -> PrunePolicy:
        prune = dict(DEFAULT_PRUNE) if defaults else {}
        for name in keep:
            prune.pop(name, None)
        excluded = frozenset(exclude)
        for name in excluded:
            prune[name] = "excluded by the spec"
        return cls(prune, excluded)

    def reason(self, name: str) -> str | None:
        """Why edges to ``name`` are cut, or None when they are followed."""
        return self.prune.get(name)
