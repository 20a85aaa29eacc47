"""SPDX 2.3 JSON for one platform of an image.

The image is the document's root package (``primaryPackagePurpose: CONTAINER``, its
manifest digest as checksum and version, purl ``pkg:oci/NAME@sha256:…?arch=…``):
``DOCUMENT DESCRIBES`` it, it ``CONTAINS`` every package, and each package
``DEPENDS_ON`` the packages its dependencies resolve to in the image. A Debian package
of a distill build carries its ``.deb``'s SHA256, its archive path
(``packageFileName``) and URL (``downloadLocation``); every one its source package
(``sourceInfo`` and the purl's ``upstream``), its Maintainer as supplier and the license
its ``debian/copyright`` declares (:mod:`distill.sbom.licenses`).
"""

from __future__ import annotations

import re
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

# SPDX 2.3's download location grammar names hosts by domain name (a dotted name whose
# last label is letters): a mirror at an IP address or 'localhost' is not one it allows.
_HOST = re.compile(
    r"^(https?|ftp|sftp)://(?:[^/@]+@)?((?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,})(?::\d{1,5})?(?:/|$)",
    re.I,
)
_TEAM = re.compile(r"\b(team|maintainers|group|developers|project|packagers)\b", re.I)
_PURPOSE = {BINARY: "APPLICATION", JAR: "LIBRARY"}


def spdx_id(ident: str) -> str:
    return "SPDXRef-Package-" + ident


def supplier(text: str) -> str:
    """SPDX's ``Person: NAME (EMAIL)`` / ``Organization: …`` (a team's name is an organization)."""
    name, email = split_name_email(text)
    if not name and not email:
        return NOASSERTION
    kind = "Organization" if _TEAM.search(name) else "Person"
    name = name.replace("(", "[").replace(")", "]") or email
    return f"{kind}: {name} ({email})" if email else f"{kind}: {name}"


def download_location(url: str) -> str:
    """The URL when SPDX's grammar takes it, else NOASSERTION."""
    return url if url and _HOST.match(url) and not any(ch.isspace() for ch in url) else NOASSERTION


def _package(c: Component, expression: str) -> dict[str, Any]:
    location = download_location(c.download)
    pkg: dict[str, Any] = {
        "SPDXID": spdx_id(c.id),
        "name": c.name,
        "downloadLocation": location,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": expression,
        "copyrightText": NOASSERTION,
        "supplier": supplier(c.supplier) if c.supplier else NOASSERTION,
        "comment": f"found at /{c.path}"
        + (f"; downloaded from {c.download}" if c.download and location != c.download else ""),
    }
    if c.version:
        pkg["versionInfo"] = c.version
    if c.purl:
        pkg["externalRefs"] = [
            {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": c.purl}
        ]
    if c.sha256:
        pkg["checksums"] = [{"algorithm": "SHA256", "checksumValue": c.sha256}]
    if c.filename:
        pkg["packageFileName"] = c.filename
    if c.kind == DEB and c.source:
        pkg["sourceInfo"] = f"built from the Debian source package {c.source} {c.source_version}".rstrip()
    if c.summary:
        pkg["summary"] = c.summary
    if c.homepage.startswith(("http://", "https://")):
        pkg["homepage"] = c.homepage
    if c.kind in _PURPOSE:
        pkg["primaryPackagePurpose"] = _PURPOSE[c.kind]
    return pkg


def document(cat: Catalog) -> bytes:
    """The SPDX 2.3 JSON document of a catalog (deterministic: the same catalog, the same bytes)."""
    image = cat.image
    root = spdx_id(root_id(cat))
    expressions, refs = license_refs(cat.components)
    root_pkg: dict[str, Any] = {
        "SPDXID": root,
        "name": image.name,
        "versionInfo": image.digest,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "supplier": NOASSERTION,
        "primaryPackagePurpose": "CONTAINER",
        "checksums": [{"algorithm": "SHA256", "checksumValue": image.digest.partition(":")[2]}],
        "externalRefs": [
            {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": image.purl}
        ],
        "builtDate": timestamp(image.created),
        "comment": f"linux/{image.arch}{'/' + image.variant if image.variant else ''} image, config {image.config_digest}"
        + (f", in the index {image.index_digest}" if image.index_digest else ""),
    }
    packages = [root_pkg]
    relationships = [
        {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": root}
    ]
    osc = os_component(cat)
    if osc is not None:
        packages.append({
            "SPDXID": spdx_id(osc[0]),
            "name": osc[1],
            **({"versionInfo": osc[2]} if osc[2] else {}),
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": False,
            "licenseConcluded": NOASSERTION,
            "licenseDeclared": NOASSERTION,
            "copyrightText": NOASSERTION,
            "primaryPackagePurpose": "OPERATING-SYSTEM",
            **({"description": cat.os_name} if cat.os_name else {}),
        })  # fmt: skip
        relationships.append(
            {"spdxElementId": root, "relationshipType": "CONTAINS", "relatedSpdxElement": spdx_id(osc[0])}
        )
    for c in cat.components:
        packages.append(_package(c, expressions[c.id]))
        relationships.append(
            {"spdxElementId": root, "relationshipType": "CONTAINS", "relatedSpdxElement": spdx_id(c.id)}
        )
    for c in cat.components:
        if c.owner:  # a module a Debian package ships: in the image, and in that package
            relationships.append(
                {
                    "spdxElementId": spdx_id(c.owner),
                    "relationshipType": "CONTAINS",
                    "relatedSpdxElement": spdx_id(c.id),
                }
            )
        for dep in c.depends:
            relationships.append(
                {
                    "spdxElementId": spdx_id(c.id),
                    "relationshipType": "DEPENDS_ON",
                    "relatedSpdxElement": spdx_id(dep),
                }
            )
    doc: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{image.name}@{image.digest} (linux/{image.arch})",
        "creationInfo": {"created": timestamp(image.created), "creators": [f"Tool: {TOOL}"]},
        "packages": packages,
        "relationships": relationships,
    }
    if refs:
        doc["hasExtractedLicensingInfos"] = [
            {"licenseId": ref, "extractedText": text or ref, "name": ref.removeprefix("LicenseRef-")}
            for ref, text in refs.items()
        ]
    safe = re.sub(r"[^A-Za-z0-9.-]+", "-", image.name).strip("-") or "image"
    doc["documentNamespace"] = f"https://spdx.org/spdxdocs/distill-{safe}-{content_uuid(doc)}"
    return dumps(doc)


__all__ = ["document", "spdx_id", "supplier"]
