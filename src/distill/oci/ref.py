"""Image references: ``HOST[:PORT]/REPO[:TAG][@sha256:…]``, as the distribution spec
and docker's reference grammar write them.

distill never assumes a registry: a reference always names its host (a first path
component with a ``.`` or ``:``, or ``localhost``), so nothing is sent to a registry
the user did not name. ``docker://`` in front is accepted (skopeo's transport name).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from distill.errors import ImageError

COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
REPOSITORY = rf"{COMPONENT}(?:/{COMPONENT})*"
TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_HOST = r"(?:localhost|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*)(?::[0-9]{1,5})?"
_REFERENCE = re.compile(
    rf"(?P<host>{_HOST})/(?P<repo>{REPOSITORY})(?::(?P<tag>{TAG}))?(?:@(?P<digest>sha256:[0-9a-f]{{64}}))?",
    re.ASCII,
)
_HINT = "HOST[:PORT]/REPO[:TAG] or HOST/REPO@sha256:…; the registry host is always named"


@dataclass(frozen=True)
class Reference:
    """A parsed image reference. ``tag`` is None only when a digest pins the image."""

    registry: str  # host[:port]
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``HOST/REPO``, without tag or digest."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What names the manifest in the API: the digest when there is one, else the tag."""
        return self.digest or self.tag or "latest"

    def with_tag(self, tag: str) -> Reference:
        return replace(self, tag=tag, digest=None)

    def with_digest(self, digest: str) -> Reference:
        return replace(self, tag=None, digest=digest)

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_reference(text: str, *, what: str = "an image reference") -> Reference:
    """``text`` as a :class:`Reference` (``docker://`` optional); one-line error otherwise.

    With neither tag nor digest the tag is ``latest``, as every client does."""
    body = text.removeprefix("docker://")
    m = _REFERENCE.fullmatch(body) if len(body) <= 512 else None
    if m is not None and not _looks_like_host(m.group("host")):
        m = None  # "team/app": no registry named (distill assumes none)
    if m is None or len(m.group("host")) + 1 + len(m.group("repo")) > 255:
        first = body.split("/", 1)[0]
        if m is None and "/" in body and not re.fullmatch(_HOST, first, re.ASCII):
            hint = f"{_HINT}"
        elif "/" not in body or not _looks_like_host(first):
            hint = "name the registry host first (e.g. 127.0.0.1:5000/team/app:1); distill assumes none"
        else:
            hint = _HINT
        raise ImageError(f"{text[:120]!r} is not {what}", hint=hint)
    tag = m.group("tag")
    digest = m.group("digest")
    return Reference(m.group("host"), m.group("repo"), tag or (None if digest else "latest"), digest)


def _looks_like_host(first: str) -> bool:
    return "." in first or ":" in first or first == "localhost" or first.startswith("[")


def is_loopback(host: str) -> bool:
    """Whether ``host[:port]`` names this machine (plain HTTP is allowed there, as docker does)."""
    if host.startswith("["):
        name = host[1:].split("]")[0]
    else:
        name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
