"""Attestations: an in-toto Statement in a DSSE envelope, signed over its PAE.

``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` (lengths in
ASCII decimal): the signature covers the payload type as well as the payload, so
neither can be swapped. The envelope::

    {"payloadType":"application/vnd.in-toto+json","payload":"<b64>",
     "signatures":[{"keyid":"","sig":"<b64 DER ECDSA P-256/SHA-256>"}]}

The Statement (v1): ``_type``, ``subject[{name, digest:{sha256}}]``, ``predicateType``,
``predicate``. cosign writes ``Statement/v0.1``; both are read.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from distill.errors import VerificationError
from distill.limits import load_json
from distill.sign import keys

PAYLOAD_TYPE = "application/vnd.in-toto+json"
MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
STATEMENT_V1 = "https://in-toto.io/Statement/v1"
STATEMENTS = (STATEMENT_V1, "https://in-toto.io/Statement/v0.1")
MAX_ENVELOPE = 64 << 20  # an SBOM of a large image is some MiB; base64 adds a third

# cosign's --type shortcuts (and a URI for any other predicate).
PREDICATE_TYPES = {
    "slsaprovenance": "https://slsa.dev/provenance/v1",
    "slsaprovenance1": "https://slsa.dev/provenance/v1",
    "slsaprovenance02": "https://slsa.dev/provenance/v0.2",
    "spdx": "https://spdx.dev/Document",
    "spdxjson": "https://spdx.dev/Document",
    "cyclonedx": "https://cyclonedx.org/bom",
    "openvex": "https://openvex.dev/ns",
    "vuln": "https://cosign.sigstore.dev/attestation/vuln/v1",
    "custom": "https://cosign.sigstore.dev/attestation/v1",
}
_URI = re.compile(r"[a-z][a-z0-9+.-]*://[\x21-\x7e]{1,500}")


def predicate_type(text: str) -> str:
    """A ``--type`` value: one of cosign's shortcuts, or a predicate type URI."""
    if text in PREDICATE_TYPES:
        return PREDICATE_TYPES[text]
    if _URI.fullmatch(text):
        return text
    from distill.errors import SpecError

    raise SpecError(
        f"--type {text[:80]!r} is neither a known predicate type nor a URI",
        hint=f"one of {', '.join(sorted(PREDICATE_TYPES))}, or the predicate type's URI",
    )


def pae(payload_type: str, body: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body)


def statement(subjects: list[tuple[str, str]], predicate_type: str, predicate: Any) -> bytes:
    """An in-toto Statement v1 about ``subjects`` ((name, sha256 digest) each)."""
    doc = {
        "_type": STATEMENT_V1,
        "subject": [{"name": name, "digest": {"sha256": d.removeprefix("sha256:")}} for name, d in subjects],
        "predicateType": predicate_type,
        "predicate": predicate,
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def envelope(key: ec.EllipticCurvePrivateKey, body: bytes, payload_type: str = PAYLOAD_TYPE) -> bytes:
    sig = keys.sign(key, pae(payload_type, body))
    doc = {
        "payloadType": payload_type,
        "payload": base64.b64encode(body).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(sig).decode()}],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Statement:
    predicate_type: str
    subjects: list[tuple[str, str]]  # (name, "sha256:…")
    predicate: Any
    body: bytes


def _b64(value: Any, what: str) -> bytes:
    try:
        if isinstance(value, str):
            return base64.b64decode(value, validate=True)
    except binascii.Error:
        pass
    raise VerificationError(f"{what} is not base64")


def open_envelope(data: bytes, key: ec.EllipticCurvePublicKey, what: str) -> Statement:
    """The Statement of an envelope that ``key`` signed; anything else (no signature by
    the key, a changed payload or type, a payload that is no Statement) is refused."""
    doc = load_json(data, label=what, error=VerificationError, limit=MAX_ENVELOPE)
    if not isinstance(doc, dict):
        raise VerificationError(f"{what} is not a DSSE envelope (a JSON object)")
    ptype = doc.get("payloadType")
    if not isinstance(ptype, str):
        raise VerificationError(f"{what}: payloadType is missing")
    body = _b64(doc.get("payload"), f"{what}: payload")
    sigs = doc.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise VerificationError(f"{what}: the envelope has no signatures")
    message = pae(ptype, body)
    signed = any(
        isinstance(s, dict) and keys.verify(key, _b64(s.get("sig"), f"{what}: a signature"), message)
        for s in sigs[:64]
    )
    if not signed:
        raise VerificationError(f"{what}: no signature of the envelope verifies with the key")
    if ptype != PAYLOAD_TYPE:
        raise VerificationError(f"{what}: payloadType is {ptype[:80]!r}, not {PAYLOAD_TYPE}")
    st = load_json(body, label=f"{what}: the statement", error=VerificationError, limit=MAX_ENVELOPE)
    if not isinstance(st, dict) or st.get("_type") not in STATEMENTS:
        raise VerificationError(f"{what}: the payload is not an in-toto Statement")
    subjects: list[tuple[str, str]] = []
    for s in st.get("subject") or []:
        digest = s.get("digest") if isinstance(s, dict) else None
        hexd = digest.get("sha256") if isinstance(digest, dict) else None
        if isinstance(hexd, str) and re.fullmatch(r"[0-9a-f]{64}", hexd):
            subjects.append((str(s.get("name", "")), f"sha256:{hexd}"))
    ptype_pred = st.get("predicateType")
    if not isinstance(ptype_pred, str):
        raise VerificationError(f"{what}: the statement has no predicateType")
    return Statement(ptype_pred, subjects, st.get("predicate"), body)


__all__ = [
    "MEDIA_TYPE",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPES",
    "Statement",
    "envelope",
    "open_envelope",
    "pae",
    "predicate_type",
    "statement",
]
