"""What the SPDX and CycloneDX writers share: stable identifiers, times, names and the
document's own identity (derived from its content: same input, same bytes)."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from distill import __version__
from distill.sbom.catalog import Catalog, Component

TOOL = f"distill-{__version__}"
_REF = re.compile(r"LicenseRef-[A-Za-z0-9.-]+")


def timestamp(epoch: int) -> str:
    return datetime.fromtimestamp(max(0, epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_uuid(doc: Any) -> str:
    """A UUID (version 5 layout) from the document's canonical JSON: a document's
    identity follows what it says, and nothing else (no clock, no random number)."""
    data = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return str(uuid.UUID(bytes=hashlib.sha256(data).digest()[:16], version=5))


def root_id(cat: Catalog) -> str:
    safe = re.sub(r"[^A-Za-z0-9.-]+", "-", cat.image.name).strip("-") or "image"
    return f"image-{safe[:64]}-{cat.image.digest.partition(':')[2][:16]}"


def split_name_email(text: str) -> tuple[str, str]:
    """``Name <email>`` -> (name, email); either may be empty."""
    m = re.fullmatch(r"\s*(.*?)\s*<([^<>\s]+)>\s*", text)
    if m:
        return m.group(1), m.group(2)
    return text.strip(), ""


def license_refs(components: list[Component]) -> tuple[dict[str, str], dict[str, str]]:
    """Document-wide LicenseRef ids: each component's id -> its expression with refs
    renamed where two packages give one name different texts (``LicenseRef-X`` becomes
    ``LicenseRef-X-<hash of the text>`` for all of them), and the ids' texts."""
    texts: dict[str, set[str]] = {}
    for c in components:
        for ref, text in c.license.refs.items():
            texts.setdefault(ref, set()).add(text)
    clashing = {ref for ref, found in texts.items() if len(found) > 1}
    expressions: dict[str, str] = {}
    out: dict[str, str] = {}
    for c in components:
        names: dict[str, str] = {}
        for ref, text in c.license.refs.items():
            final = f"{ref}-{hashlib.sha256(text.encode()).hexdigest()[:8]}" if ref in clashing else ref
            names[ref] = final
            out[final] = text
        expressions[c.id] = _rename(c.license.expression, names)
    return expressions, dict(sorted(out.items()))


def _rename(expression: str, names: dict[str, str]) -> str:
    return _REF.sub(lambda m: names.get(m.group(0), m.group(0)), expression)


def os_component(cat: Catalog) -> tuple[str, str, str] | None:
    """(id, name, version) of the image's operating system, when os-release names one."""
    if not cat.os_id:
        return None
    return (
        f"os-{re.sub(r'[^A-Za-z0-9.-]+', '-', cat.os_id)}-{cat.os_version or 'unknown'}",
        cat.os_id,
        cat.os_version,
    )


def dumps(doc: Any) -> bytes:
    """The serialisation both formats use: sorted keys, two-space indent, UTF-8, final newline."""
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()
