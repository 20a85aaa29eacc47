"""cosign's simple-signing payload: what a container image signature signs.

::

    {"critical":{"identity":{"docker-reference":"HOST/REPO"},
                 "image":{"docker-manifest-digest":"sha256:…"},
                 "type":"cosign container image signature"},
     "optional":null}

containers/image (podman, skopeo, CRI-O) parses it strictly: exactly these keys in
``critical`` and its members, ``critical`` and ``optional`` both present, and in
``optional`` (null or an object of annotations) a ``timestamp`` that is an integer.
:func:`parse` applies the same rules, so a payload distill accepts is one they accept.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from distill.errors import VerificationError
from distill.limits import load_json

TYPE = "cosign container image signature"
MEDIA_TYPE = "application/vnd.dev.cosign.simplesigning.v1+json"
MAX_PAYLOAD = 1 << 20  # a payload is a few hundred bytes; containers/image caps what it reads too
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class Payload:
    identity: str  # docker-reference: HOST/REPO, the repository the image was signed for
    digest: str  # docker-manifest-digest
    optional: dict[str, Any] | None = None


def make(identity: str, digest: str, annotations: dict[str, str] | None = None) -> bytes:
    """The payload bytes cosign writes (its key order, no spaces)."""
    doc = {
        "critical": {
            "identity": {"docker-reference": identity},
            "image": {"docker-manifest-digest": digest},
            "type": TYPE,
        },
        "optional": dict(annotations) if annotations else None,
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _exact(doc: Any, keys: set[str], where: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise VerificationError(f"{where} is not a JSON object")
    if set(doc) != keys:
        extra, missing = sorted(set(doc) - keys), sorted(keys - set(doc))
        detail = f"unexpected {', '.join(extra)}" if extra else f"missing {', '.join(missing)}"
        raise VerificationError(f"{where}: {detail[:200]}")
    return doc


def parse(data: bytes, what: str) -> Payload:
    """The payload's claims, checked as containers/image checks them."""
    doc = _exact(
        load_json(data, label=f"{what}: the payload", error=VerificationError, limit=MAX_PAYLOAD),
        {"critical", "optional"},
        f"{what}: the payload",
    )
    critical = _exact(doc["critical"], {"identity", "image", "type"}, f"{what}: critical")
    if critical["type"] != TYPE:
        raise VerificationError(f"{what}: critical.type is not {TYPE!r}")
    image = _exact(critical["image"], {"docker-manifest-digest"}, f"{what}: critical.image")
    identity = _exact(critical["identity"], {"docker-reference"}, f"{what}: critical.identity")
    digest, ref = image["docker-manifest-digest"], identity["docker-reference"]
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise VerificationError(f"{what}: critical.image.docker-manifest-digest is not a sha256 digest")
    if not isinstance(ref, str) or not ref:
        raise VerificationError(f"{what}: critical.identity.docker-reference is not a reference")
    optional = doc["optional"]
    if optional is not None:
        if not isinstance(optional, dict):
            raise VerificationError(f"{what}: optional is neither null nor an object")
        stamp = optional.get("timestamp")
        if "timestamp" in optional and (
            isinstance(stamp, bool)
            or not isinstance(stamp, int | float)
            or not math.isfinite(stamp)
            or int(stamp) != stamp
        ):
            raise VerificationError(f"{what}: optional.timestamp is not an integer")
    return Payload(ref, digest, optional)


__all__ = ["MEDIA_TYPE", "TYPE", "Payload", "make", "parse"]
