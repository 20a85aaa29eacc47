"""CycloneDX 1.6 JSON for one platform of an image.

``metadata.component`` is the image (``type: container``, purl ``pkg:oci/…``, its
manifest digest as hash); ``components`` are its operating system and packages (each
with its purl, license expression, supplier, hashes and, for a distill build's Debian
packages, the ``.deb``'s URL as a ``distribution`` reference); ``dependencies`` the
edges between them. Debian specifics are properties in the ``distill:`` namespace
(``distill:debian:source``, ``…:source_version``, ``…:filename``, ``distill:path``).
"""

from __future__ import annotations

from typing import Any

from distill.sbom.catalog import BINARY, DEB, JAR, Catalog, Component
from distill.sbom.common import (
    TOOL,
    content_uuid,
    dumps,
    license_refs,
    os_component,
    root_id,
    split_name_email,
    timestamp,
)
from distill.sbom.licenses import NOASSERTION

_TYPES = {BINARY: "application", JAR: "library"}


def _component(c: Component, expression: str) -> dict[str, Any]:
    out: dict[str, Any] = {"type": _TYPES.get(c.kind, "library"), "bom-ref": c.id, "name": c.name}
    if c.version:
        out["version"] = c.version
    if c.purl:
        out["purl"] = c.purl
    if expression != NOASSERTION:
        out["licenses"] = [{"expression": expression}]
    if c.supplier:
        name, email = split_name_email(c.supplier)
        out["supplier"] = {"name": name or email, **({"contact": [{"email": email}]} if email else {})}
    if c.sha256:
        out["hashes"] = [{"alg": "SHA-256", "content": c.sha256}]
    if c.summary:
        out["description"] = c.summary
    refs = []
    if c.download:
        refs.append({"type": "distribution", "url": c.download})
    if c.homepage.startswith(("http://", "https://")):
        refs.append({"type": "website", "url": c.homepage})
    if refs:
        out["externalReferences"] = refs
    props = {"distill:path": "/" + c.path}
    if c.kind == DEB:
        props["distill:debian:source"] = c.source
        props["distill:debian:source_version"] = c.source_version
        if c.filename:
            props["distill:debian:filename"] = c.filename
    props.update({k if k.startswith("distill:") else f"distill:{k}": v for k, v in c.properties.items() if v})
    out["properties"] = [{"name": k, "value": v} for k, v in sorted(props.items())]
    return out


def document(cat: Catalog) -> bytes:
    """The CycloneDX 1.6 JSON document of a catalog (deterministic)."""
    image = cat.image
    expressions, _ = license_refs(cat.components)
    root: dict[str, Any] = {
        "type": "container",
        "bom-ref": root_id(cat),
        "name": image.name,
        "version": image.digest,
        "purl": image.purl,
        "hashes": [{"alg": "SHA-256", "content": image.digest.partition(":")[2]}],
        "properties": [
            {
                "name": "distill:platform",
                "value": f"linux/{image.arch}" + (f"/{image.variant}" if image.variant else ""),
            },
            {"name": "distill:config", "value": image.config_digest},
            *([{"name": "distill:index", "value": image.index_digest}] if image.index_digest else []),
        ],
    }
    components = []
    osc = os_component(cat)
    if osc is not None:
        components.append({"type": "operating-system", "bom-ref": osc[0], "name": osc[1], **({"version": osc[2]} if osc[2] else {}),
                           **({"description": cat.os_name} if cat.os_name else {})})  # fmt: skip
    components += [_component(c, expressions[c.id]) for c in cat.components]
    doc: dict[str, Any] = {
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {
            "timestamp": timestamp(image.created),
            "tools": {
                "components": [
                    {"type": "application", "name": "distill", "version": TOOL.removeprefix("distill-")}
                ]
            },
            "component": root,
        },
        "components": components,
        "dependencies": [
            {"ref": root_id(cat), "dependsOn": sorted(c.id for c in cat.components)},
            *({"ref": c.id, "dependsOn": c.depends} for c in cat.components),
        ],
    }
    doc["serialNumber"] = "urn:uuid:" + content_uuid(doc)
    return dumps(doc)


__all__ = ["document"]
