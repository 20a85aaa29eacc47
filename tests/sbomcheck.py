"""The validators every SBOM in the tests goes through: spdx-tools (the SPDX project's own
parser and validator) and cyclonedx-python-lib's strict JSON schema validator (1.6)."""

from __future__ import annotations

import json
from typing import Any


def valid_spdx(data: bytes) -> dict[str, Any]:
    """The parsed document; fails the test with spdx-tools' messages when it is not valid."""
    from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    doc = json.loads(data)
    messages = validate_full_spdx_document(JsonLikeDictParser().parse(doc), "SPDX-2.3")
    assert not messages, [m.validation_message for m in messages[:5]]
    return doc  # type: ignore[no-any-return]


def valid_cyclonedx(data: bytes) -> dict[str, Any]:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(data.decode())
    assert error is None, str(error)[:2000]
    return json.loads(data)  # type: ignore[no-any-return]


def spdx_packages(doc: dict[str, Any], purl_type: str) -> dict[str, dict[str, Any]]:
    """name -> package of one purl type (deb, pypi, npm, maven) in an SPDX document."""
    out = {}
    for p in doc["packages"]:
        for r in p.get("externalRefs", []):
            if r["referenceType"] == "purl" and r["referenceLocator"].startswith(f"pkg:{purl_type}/"):
                out[p["name"]] = p
    return out


def purl_of(p: dict[str, Any]) -> str:
    return next(r["referenceLocator"] for r in p.get("externalRefs", []) if r["referenceType"] == "purl")
