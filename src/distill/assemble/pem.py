"""PEM certificates found in linear time.

A regular expression like ``BEGIN\\s+[A-Za-z0-9+/=\\s]+END`` backtracks over every
split of a whitespace run between its two overlapping parts, at every BEGIN: a
crafted 300 KB file took minutes. Here each BEGIN marker is found with ``find``, the
body is matched by one character class (no alternative ways to split it) up to the
first byte outside it, and the END marker must stand exactly there; the next search
starts past that byte. Every byte is looked at a bounded number of times.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterator

BEGIN = b"-----BEGIN CERTIFICATE-----"
END = b"-----END CERTIFICATE-----"
_BODY = re.compile(rb"[A-Za-z0-9+/=\s]*")
_SPACE = b" \t\n\r\x0b\x0c"


def pem_bodies(data: bytes, label: bytes = b"CERTIFICATE") -> Iterator[bytes]:
    """The base64 text (whitespace kept) of each ``label`` block (a certificate unless
    said otherwise: signing keys are ``PUBLIC KEY`` blocks, for one), in order."""
    begin, end = b"-----BEGIN " + label + b"-----", b"-----END " + label + b"-----"
    pos = 0
    while True:
        start = data.find(begin, pos)
        if start < 0:
            return
        body_start = start + len(begin)
        m = _BODY.match(data, body_start)
        assert m is not None  # the pattern matches the empty string
        body_end = m.end()
        body = data[body_start:body_end]
        # As the old pattern asked: whitespace after BEGIN, then at least one base64 character.
        if body[:1] and body[:1] in _SPACE and body.strip(_SPACE) and data.startswith(end, body_end):
            yield body
            pos = body_end + len(end)
        else:
            pos = max(body_end, start + 1)


class PemError(ValueError):
    """A certificate block whose body is not base64."""


def pem_certificates(data: bytes) -> list[bytes]:
    """The DER certificates of a PEM file, in order (a block that is not base64: :class:`PemError`)."""
    ders = []
    for i, body in enumerate(pem_bodies(data)):
        try:
            ders.append(base64.b64decode(b"".join(body.split()), validate=True))
        except binascii.Error:
            raise PemError(f"certificate {i + 1} is not valid base64") from None
    return ders
