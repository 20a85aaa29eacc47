"""cosign-format signing keys: ECDSA P-256, the private key encrypted with a password.

The public key is a PEM ``PUBLIC KEY`` block (PKIX DER). The private key is a PEM
``ENCRYPTED SIGSTORE PRIVATE KEY`` block (cosign's older name ``ENCRYPTED COSIGN
PRIVATE KEY`` is read too) whose body is the JSON that go-securesystemslib's
``encrypted`` package writes::

    {"kdf":{"name":"scrypt","params":{"N":65536,"r":8,"p":1},"salt":"<32 bytes>"},
     "cipher":{"name":"nacl/secretbox","nonce":"<24 bytes>"},"ciphertext":"<...>"}

(base64 with padding). The plaintext is the key as PKCS#8 DER; the secretbox key is
scrypt(password, salt, N, r, p) of 32 bytes. As that package does, only its three
parameter sets are accepted (N = 2^15, 2^16 or 2^17 with r=8, p=1): the parameters
are input, and a file that asked for N = 2^30 would take the machine's memory.
So cosign, skopeo and podman read distill's keys, and distill reads theirs.

The password comes from ``DISTILL_PASSWORD``, else ``COSIGN_PASSWORD`` (an empty
value is a password too: cosign's keys made with ``COSIGN_PASSWORD=""``), else a
prompt on the terminal; without any, one error line.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from distill.assemble.pem import pem_bodies
from distill.errors import SigningError
from distill.limits import load_json, read_regular

if TYPE_CHECKING:  # cryptography is imported where it is used: a signing command opens the
    # key (scrypt, on a thread of its own) before it has loaded anything else
    from cryptography.hazmat.primitives.asymmetric import ec

SIGSTORE_PRIVATE = b"ENCRYPTED SIGSTORE PRIVATE KEY"
COSIGN_PRIVATE = b"ENCRYPTED COSIGN PRIVATE KEY"
PUBLIC = b"PUBLIC KEY"
MAX_KEY_FILE = 64 * 1024  # a P-256 key file is about 650 bytes
SCRYPT_PARAMS = ((32768, 8, 1), (65536, 8, 1), (131072, 8, 1))  # go-securesystemslib's three
DEFAULT_N = 65536  # its "standard" strength, what cosign generate-key-pair writes
SALT_SIZE = 32
NONCE_SIZE = 24
ENV_PASSWORDS = ("DISTILL_PASSWORD", "COSIGN_PASSWORD")


@dataclass(frozen=True)
class KeyPair:
    """The two files of a key pair, as bytes."""

    private_pem: bytes
    public_pem: bytes


def _pem(label: bytes, der: bytes) -> bytes:
    """One PEM block, 64 characters a line (as Go's encoding/pem writes it)."""
    b64 = base64.b64encode(der)
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return b"-----BEGIN " + label + b"-----\n" + b"\n".join(lines) + b"\n-----END " + label + b"-----\n"


def _pem_block(data: bytes, labels: tuple[bytes, ...], what: str) -> tuple[bytes, bytes]:
    """The first block with one of ``labels``: (label, DER); bounded, linear-time scan."""
    for label in labels:
        body = next(pem_bodies(data, label), None)
        if body is None:
            continue
        try:
            return label, base64.b64decode(b"".join(body.split()), validate=True)
        except binascii.Error:
            raise SigningError(f"{what}: the {label.decode()} block is not valid base64") from None
    names = " or ".join(label.decode() for label in labels)
    raise SigningError(
        f"{what}: not a key file (no PEM {names} block)",
        hint="make a key pair with 'distill keygen' or 'cosign generate-key-pair'",
    )


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    # libsodium's scrypt (pynacl) was faster here than OpenSSL's (hashlib) in each try:
    # the key derivation is the larger part of signing an image (docs/performance.md).
    from nacl.bindings import crypto_pwhash_scryptsalsa208sha256_ll

    return crypto_pwhash_scryptsalsa208sha256_ll(password, salt, n, r, p, 32, 160 * r * n + (1 << 20))


def generate() -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _pem(PUBLIC, der)


def encrypt_private(key: ec.EllipticCurvePrivateKey, password: bytes, n: int = DEFAULT_N) -> bytes:
    """The private key as cosign writes it (PKCS#8, scrypt + nacl/secretbox, PEM)."""
    from cryptography.hazmat.primitives import serialization
    from nacl.secret import SecretBox

    plain = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt, nonce = os.urandom(SALT_SIZE), os.urandom(NONCE_SIZE)
    box = SecretBox(_scrypt(password, salt, n, 8, 1))
    ciphertext = box.encrypt(plain, nonce).ciphertext
    # Field order and spelling as Go's encoding/json writes go-securesystemslib's struct.
    doc = {
        "kdf": {"name": "scrypt", "params": {"N": n, "r": 8, "p": 1}, "salt": _b64(salt)},
        "cipher": {"name": "nacl/secretbox", "nonce": _b64(nonce)},
        "ciphertext": _b64(ciphertext),
    }
    return _pem(SIGSTORE_PRIVATE, json.dumps(doc, separators=(",", ":")).encode())


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def key_pair(password: bytes, n: int = DEFAULT_N) -> KeyPair:
    key = generate()
    return KeyPair(encrypt_private(key, password, n), public_pem(key.public_key()))


def _b64_field(doc: dict[str, object], name: str, what: str, size: int | None = None) -> bytes:
    value = doc.get(name)
    try:
        out = base64.b64decode(value, validate=True) if isinstance(value, str) else None
    except binascii.Error:
        out = None
    if out is None or (size is not None and len(out) != size):
        want = f"{size} bytes of " if size is not None else ""
        raise SigningError(f"{what}: '{name}' is not {want}base64")
    return out


def decrypt_private(data: bytes, password: bytes, what: str) -> ec.EllipticCurvePrivateKey:
    """The private key of a cosign key file; a wrong password, a damaged file and a
    key of another kind are each one :class:`SigningError` line."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from nacl.exceptions import CryptoError
    from nacl.secret import SecretBox

    label, body = _pem_block(data, (SIGSTORE_PRIVATE, COSIGN_PRIVATE), what)
    doc = load_json(body, label=f"{what}: the {label.decode()} block", error=SigningError, limit=MAX_KEY_FILE)
    if not isinstance(doc, dict):
        raise SigningError(f"{what}: the encrypted key is not a JSON object")
    kdf, cipher = doc.get("kdf"), doc.get("cipher")
    if not isinstance(kdf, dict) or kdf.get("name") != "scrypt":
        raise SigningError(f"{what}: the key is not encrypted with scrypt (kdf.name)")
    if not isinstance(cipher, dict) or cipher.get("name") != "nacl/secretbox":
        raise SigningError(f"{what}: the key is not encrypted with nacl/secretbox (cipher.name)")
    params = kdf.get("params")
    got = tuple(params.get(k) for k in ("N", "r", "p")) if isinstance(params, dict) else None
    if got not in SCRYPT_PARAMS or any(isinstance(v, bool) for v in got or ()):
        raise SigningError(
            f"{what}: unsupported scrypt parameters (N, r, p)",
            hint="cosign's are N=32768, 65536 or 131072 with r=8, p=1",
        )
    assert got is not None
    n, r, p = (int(v) for v in got)
    salt = _b64_field(kdf, "salt", f"{what}: kdf")
    nonce = _b64_field(cipher, "nonce", f"{what}: cipher", NONCE_SIZE)
    ciphertext = _b64_field(doc, "ciphertext", what)
    try:
        plain = SecretBox(_scrypt(password, salt, n, r, p)).decrypt(ciphertext, nonce)
    except CryptoError:
        raise SigningError(
            f"{what}: wrong password (the key does not decrypt with it)",
            hint="the password is read from DISTILL_PASSWORD, else COSIGN_PASSWORD, else asked for",
        ) from None
    try:
        key = serialization.load_der_private_key(plain, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SigningError(f"{what}: the decrypted key is not a PKCS#8 private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SigningError(
            f"{what}: a {_kind(key)} key; distill signs with ECDSA P-256 keys (cosign's default)",
            hint="make one with 'distill keygen'",
        )
    return key


def _kind(key: object) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec

    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return f"ECDSA {key.curve.name}"
    return type(key).__name__.lstrip("_").replace("PrivateKey", "").replace("PublicKey", "") or "foreign"


def load_public(data: bytes, what: str) -> ec.EllipticCurvePublicKey:
    """A PEM ``PUBLIC KEY`` (PKIX) holding an ECDSA P-256 key."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    _, der = _pem_block(data, (PUBLIC,), what)
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise SigningError(f"{what}: the PUBLIC KEY block is not a PKIX public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SigningError(
            f"{what}: a {_kind(key)} key; distill verifies ECDSA P-256 keys (cosign's default)"
        )
    return key


def read_key_file(path: Path) -> bytes:
    return read_regular(path, MAX_KEY_FILE, error=SigningError, what="key file")


def password(what: str, *, confirm: bool = False) -> bytes:
    """The key's password: ``DISTILL_PASSWORD``, else ``COSIGN_PASSWORD``, else asked
    on the terminal (twice when ``confirm``, for a new key)."""
    for name in ENV_PASSWORDS:
        value = os.environ.get(name)
        if value is not None:
            return value.encode()
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise SigningError(
            f"no password for {what}: DISTILL_PASSWORD and COSIGN_PASSWORD are unset and there is no terminal to ask on",
            hint="set DISTILL_PASSWORD (an empty value is a password too)",
        )
    try:
        first = getpass.getpass(f"Password for {what}: ")
        if confirm and getpass.getpass(f"Password for {what} again: ") != first:
            raise SigningError("the two passwords differ")
    except EOFError:
        raise SigningError(f"no password for {what} (end of input)") from None
    return first.encode()


def _read_private(path: Path) -> tuple[bytes, bytes]:
    """A private key file's bytes and its password (a foreign file is refused before asking)."""
    data = read_key_file(path)
    _pem_block(data, (SIGSTORE_PRIVATE, COSIGN_PRIVATE), f"key file {path}")
    return data, password(f"key file {path}")


def load_private(path: Path) -> ec.EllipticCurvePrivateKey:
    """The private key of a cosign key file, its password asked for as :func:`password` says."""
    data, secret = _read_private(path)
    return decrypt_private(data, secret, f"key file {path}")


def open_private_in_background(path: Path) -> Callable[[], ec.EllipticCurvePrivateKey]:
    """:func:`load_private`, its key derivation (scrypt, ~0.15 s: the cosign format's
    cost) run on another thread while the caller goes on (imports, connecting to the
    registry): the file is read and the password asked for here; the returned function
    waits for the key (and raises what opening it raised). scrypt and the secretbox run
    in C without the GIL (pynacl's cffi calls)."""
    from concurrent.futures import ThreadPoolExecutor

    data, secret = _read_private(path)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="distill-open-key")
    future = pool.submit(decrypt_private, data, secret, f"key file {path}")
    pool.shutdown(wait=False)
    return future.result


def sign(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """ECDSA P-256 over SHA-256 of ``data``, ASN.1 DER (what cosign and containers/image write)."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    return key.sign(data, ec.ECDSA(hashes.SHA256()))


def verify(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


__all__ = [
    "KeyPair",
    "decrypt_private",
    "encrypt_private",
    "generate",
    "key_pair",
    "load_private",
    "load_public",
    "open_private_in_background",
    "password",
    "public_pem",
    "read_key_file",
    "sign",
    "verify",
]
