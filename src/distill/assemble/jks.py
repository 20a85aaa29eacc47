"""Java KeyStore (JKS) files of trusted certificates, written natively.

What ``ca-certificates-java`` would make at /etc/ssl/certs/java/cacerts (Debian's
JREs link ``$JAVA_HOME/lib/security/cacerts`` there). The format, as the JDK's
``JavaKeyStore`` reads it: big-endian, magic ``0xFEEDFEED``, version 2, the entry
count, then per entry tag 2 (trusted certificate), the alias and type as Java
"modified UTF-8" strings, a timestamp in milliseconds and the DER certificate;
the file ends with SHA-1 over the password (UTF-16BE), the words "Mighty
Aphrodite" and everything before it. Java 9+ reads JKS wherever PKCS12 is the
default (``keystore.type.compat``).
"""

from __future__ import annotations

import hashlib
import struct

from distill.assemble.pem import pem_certificates as pem_certificates  # where it used to live

MAGIC = 0xFEEDFEED
VERSION = 2
TRUSTED_CERT = 2
DEFAULT_PASSWORD = "changeit"  # the JDK's and Debian's


def _utf(text: str) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > 0xFFFF:
        raise ValueError("alias too long for a keystore")
    return struct.pack(">H", len(raw)) + raw


def write_jks(certs: list[tuple[str, bytes]], timestamp_ms: int, password: str = DEFAULT_PASSWORD) -> bytes:
    """A keystore of trusted certificates ``(alias, der)``; entries in alias order."""
    out = bytearray(struct.pack(">III", MAGIC, VERSION, len(certs)))
    for alias, der in sorted(certs):
        out += struct.pack(">I", TRUSTED_CERT) + _utf(alias.lower()) + struct.pack(">q", timestamp_ms)
        out += _utf("X.509") + struct.pack(">I", len(der)) + der
    digest = hashlib.sha1(
        password.encode("utf-16-be") + b"Mighty Aphrodite" + bytes(out), usedforsecurity=False
    )
    return bytes(out) + digest.digest()


def read_jks(data: bytes, password: str = DEFAULT_PASSWORD) -> list[tuple[str, bytes]]:
    """The trusted certificates of a keystore written by :func:`write_jks` (integrity checked)."""
    body, digest = data[:-20], data[-20:]
    expected = hashlib.sha1(password.encode("utf-16-be") + b"Mighty Aphrodite" + body, usedforsecurity=False)
    if len(data) < 32 or expected.digest() != digest:
        raise ValueError("keystore integrity check failed")
    magic, version, count = struct.unpack_from(">III", body)
    if magic != MAGIC or version != VERSION:
        raise ValueError("not a JKS keystore")
    pos, out = 12, []
    for _ in range(count):
        (tag,) = struct.unpack_from(">I", body, pos)
        if tag != TRUSTED_CERT:
            raise ValueError(f"unexpected keystore entry tag {tag}")
        (n,) = struct.unpack_from(">H", body, pos + 4)
        alias = body[pos + 6 : pos + 6 + n].decode()
        pos += 6 + n + 8
        (n,) = struct.unpack_from(">H", body, pos)
        pos += 2 + n
        (n,) = struct.unpack_from(">I", body, pos)
        out.append((alias, body[pos + 4 : pos + 4 + n]))
        pos += 4 + n
    return out
