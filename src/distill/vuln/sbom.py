"""Reading SBOMs (SPDX 2.x JSON, CycloneDX 1.x JSON; distill's, Syft's or Trivy's) into
an :class:`~distill.vuln.inventory.Inventory`, by the package URLs of their packages.

Debian packages carry their source package as Syft writes it (the ``upstream``
qualifier, ``name`` or ``name@version``; CycloneDX properties
``syft:metadata:source``/``sourceVersion``) or as Trivy does (``epoch`` qualifier,
properties ``aquasecurity:trivy:SrcName``/``SrcVersion``/``SrcRelease``/``SrcEpoch``;
SPDX ``sourceInfo: built package from: NAME VERSION``). The Debian release comes from
the ``distro`` qualifier (``debian-12``, ``debian-12.5``) or the operating-system
component.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from packageurl import PackageURL

from distill.errors import VulnError
from distill.limits import MAX_JSON, read_json
from distill.vuln.inventory import Inventory
from distill.vuln.model import CODENAMES, Pkg

MAX_SBOM = 4 * MAX_JSON  # an SBOM of a large image with every file listed
_SOURCE_INFO = re.compile(r"built package from:\s*(\S+)\s+(\S+)")


def is_sbom(doc: Any) -> bool:
    return isinstance(doc, dict) and ("spdxVersion" in doc or doc.get("bomFormat") == "CycloneDX")


def _from_purl(text: str, props: dict[str, str], where: str) -> tuple[Pkg | None, str | None]:
    """The package a purl names (None for ecosystems distill does not match) and its
    Debian release codename, if the purl says."""
    try:
        purl = PackageURL.from_string(text)
    except ValueError:
        return None, None
    q = purl.qualifiers if isinstance(purl.qualifiers, dict) else {}
    version = purl.version or ""
    if purl.type == "deb":
        if purl.namespace not in (None, "debian"):
            return None, None
        if q.get("epoch") and ":" not in version:
            version = f"{q['epoch']}:{version}"
        source, source_version = purl.name, version
        upstream = q.get("upstream", "")
        if upstream:
            name, _, up_version = upstream.partition("@")
            source, source_version = name, up_version or version
        if props.get("syft:metadata:source"):
            source = props["syft:metadata:source"]
            source_version = props.get("syft:metadata:sourceVersion") or source_version
        if props.get("aquasecurity:trivy:SrcName"):
            source = props["aquasecurity:trivy:SrcName"]
            v = props.get("aquasecurity:trivy:SrcVersion", "")
            if props.get("aquasecurity:trivy:SrcRelease"):
                v += "-" + props["aquasecurity:trivy:SrcRelease"]
            if props.get("aquasecurity:trivy:SrcEpoch") not in (None, "", "0"):
                v = f"{props['aquasecurity:trivy:SrcEpoch']}:{v}"
            source_version = v or source_version
        m = _SOURCE_INFO.search(props.get("sourceInfo", ""))
        if m and not upstream:
            source, source_version = m.group(1), m.group(2)
        distro = q.get("distro", "")
        code = None
        if distro.startswith("debian-"):
            code = CODENAMES.get(distro.removeprefix("debian-").split(".")[0])
        return Pkg("deb", purl.name, version, source, source_version, q.get("arch", ""), where), code
    if purl.type == "pypi":
        from packaging.utils import canonicalize_name

        return Pkg("pypi", str(canonicalize_name(purl.name)), version, location=where), None
    if purl.type == "npm":
        name = f"{purl.namespace}/{purl.name}" if purl.namespace else purl.name
        return Pkg("npm", name, version, location=where), None
    if purl.type == "maven" and purl.namespace:
        return Pkg("maven", f"{purl.namespace}:{purl.name}", version, location=where), None
    return None, None


def _cyclonedx(doc: dict[str, Any], where: str) -> tuple[list[tuple[str, dict[str, str]]], str | None]:
    purls: list[tuple[str, dict[str, str]]] = []
    codename = None
    stack = list(doc.get("components") or [])
    meta = (doc.get("metadata") or {}).get("component")
    if isinstance(meta, dict):
        stack += meta.get("components") or []
    while stack:
        c = stack.pop()
        if not isinstance(c, dict):
            continue
        stack += c.get("components") or []
        if c.get("type") == "operating-system" and str(c.get("name", "")).lower() == "debian":
            codename = CODENAMES.get(str(c.get("version", "")).split(".")[0]) or codename
        if isinstance(c.get("purl"), str):
            props = {
                str(p.get("name")): str(p.get("value"))
                for p in c.get("properties") or []
                if isinstance(p, dict) and "name" in p
            }
            purls.append((c["purl"], props))
    return purls, codename


def _spdx(doc: dict[str, Any]) -> tuple[list[tuple[str, dict[str, str]]], str | None]:
    purls: list[tuple[str, dict[str, str]]] = []
    codename = None
    for p in doc.get("packages") or []:
        if not isinstance(p, dict):
            continue
        if (
            p.get("primaryPackagePurpose") == "OPERATING-SYSTEM"
            and str(p.get("name", "")).lower() == "debian"
        ):
            codename = CODENAMES.get(str(p.get("versionInfo", "")).split(".")[0]) or codename
        for ref in p.get("externalRefs") or []:
            if (
                isinstance(ref, dict)
                and ref.get("referenceType") == "purl"
                and isinstance(ref.get("referenceLocator"), str)
            ):
                info = p.get("sourceInfo")
                purls.append((ref["referenceLocator"], {"sourceInfo": info} if isinstance(info, str) else {}))
                break
    return purls, codename


def read_sbom(path: Path, doc: Any | None = None) -> Inventory:
    """The packages an SBOM lists (``doc``: its JSON, when already parsed)."""
    if doc is None:
        doc = read_json(path, MAX_SBOM, error=VulnError, what="SBOM")
    if not is_sbom(doc):
        raise VulnError(
            f"{path}: not an SBOM distill reads (SPDX 2.x or CycloneDX 1.x JSON)",
            hint="give an SPDX or CycloneDX JSON document (e.g. syft -o spdx-json)",
        )
    where = str(path)
    if "spdxVersion" in doc:
        if not str(doc.get("spdxVersion")).startswith("SPDX-2."):
            raise VulnError(
                f"{path}: SPDX version {str(doc.get('spdxVersion'))[:20]!r} is not read (SPDX 2.x JSON is)"
            )
        purls, codename = _spdx(doc)
    else:
        purls, codename = _cyclonedx(doc, where)
    pkgs: list[Pkg] = []
    seen: set[tuple[str, str, str]] = set()
    for text, props in purls:
        pkg, code = _from_purl(text, props, where)
        codename = codename or code
        if pkg is None or (pkg.ecosystem, pkg.name, pkg.version) in seen:
            continue
        seen.add((pkg.ecosystem, pkg.name, pkg.version))
        pkgs.append(pkg)
    archs = sorted({p.arch for p in pkgs if p.ecosystem == "deb" and p.arch and p.arch != "all"})
    return Inventory(where, "sbom", pkgs, codename, archs[0] if archs else None)
