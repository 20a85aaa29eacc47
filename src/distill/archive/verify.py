"""OpenPGP verification of InRelease files with ``gpgv``.

gpgv is the verifier apt itself uses; it is part of every Debian and Ubuntu
system. distill accepts an InRelease only when gpgv reports at least one good,
valid signature by a key in the given keyrings and no bad one, and then parses
only the text gpgv says was signed (never the clear-text envelope itself).
"""

from __future__ import annotations

import base64
import binascii
import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from distill.debian.release import Release, ReleaseFormatError, parse_release
from distill.errors import KeyringError, SignatureError

_ARMOR_BEGIN = "-----BEGIN PGP PUBLIC KEY BLOCK-----"
_ARMOR_END = "-----END PGP PUBLIC KEY BLOCK-----"


def dearmor(text: str) -> bytes:
    """Binary OpenPGP packets from an ASCII-armored key file (gpgv reads only binary)."""
    out = b""
    lines = iter(text.splitlines())
    for line in lines:
        if line.strip() != _ARMOR_BEGIN:
            continue
        for header in lines:  # armor headers end with an empty line
            if not header.strip():
                break
        body = []
        for line2 in lines:
            s = line2.strip()
            if s == _ARMOR_END:
                break
            if s.startswith("="):  # CRC24 checksum line
                continue
            body.append(s)
        try:
            out += base64.b64decode("".join(body), validate=True)
        except binascii.Error as exc:
            raise KeyringError(f"malformed ASCII-armored key block: {exc}") from None
    return out


def _keyring_files(keyrings: tuple[Path, ...], tmp: Path) -> list[Path]:
    files = []
    for i, k in enumerate(keyrings):
        try:
            raw = k.read_bytes()
        except OSError as exc:
            raise KeyringError(f"cannot read keyring {k}: {exc.strerror}") from None
        if raw.lstrip().startswith(b"-----BEGIN PGP"):
            binary = tmp / f"keyring{i}.gpg"
            binary.write_bytes(dearmor(raw.decode("ascii", "replace")))
            files.append(binary)
        else:
            files.append(k)
    if not files:
        raise KeyringError("no keyring given to verify the archive with")
    return files


def verify_clearsigned(data: bytes, keyrings: tuple[Path, ...], *, what: str) -> str:
    """Return the signed text of a clear-signed file, or raise :class:`SignatureError`."""
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise KeyringError("gpgv is not installed", hint="apt-get install gpgv")
    if not data.lstrip().startswith(b"-----BEGIN PGP SIGNED MESSAGE-----"):
        raise SignatureError(f"{what} is not signed")
    with tempfile.TemporaryDirectory(prefix="distill-gpgv-") as d:
        tmp = Path(d)
        signed = tmp / "InRelease"
        signed.write_bytes(data)
        out = tmp / "Release"
        cmd = [gpgv, "--homedir", str(tmp), "--status-fd", "1", "--output", str(out)]
        for k in _keyring_files(keyrings, tmp):
            cmd += ["--keyring", str(k)]
        cmd.append(str(signed))
        proc = subprocess.run(cmd, capture_output=True, check=False)
        status = proc.stdout.decode("utf-8", "replace").splitlines()
        words = [line.split()[1] for line in status if line.startswith("[GNUPG:] ") and len(line.split()) > 1]
        if "BADSIG" in words:
            raise SignatureError(f"{what} has a BAD signature", hint="the file was altered")
        if "VALIDSIG" in words and "GOODSIG" in words and out.exists():
            return out.read_text("utf-8", "replace")
        if "EXPKEYSIG" in words or "REVKEYSIG" in words:
            raise SignatureError(f"{what} is signed only by an expired or revoked key")
        if "NO_PUBKEY" in words or "ERRSIG" in words:
            raise SignatureError(
                f"{what} is not signed by any key in {', '.join(map(str, keyrings))}",
                hint="use the archive's keyring (spec field keyring:)",
            )
        detail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SignatureError(f"{what}: signature not verified ({detail[-1] if detail else 'no status'})")


def load_release(
    data: bytes, keyrings: tuple[Path, ...], *, suite: str, what: str, now: datetime | None = None
) -> Release:
    """Verify an InRelease and check it is the right suite and still valid."""
    text = verify_clearsigned(data, keyrings, what=what)
    try:
        release = parse_release(text)
    except ReleaseFormatError as exc:
        raise SignatureError(f"{what}: {exc}") from None
    if not release.matches(suite):
        raise SignatureError(
            f"{what} is for suite {release.suite or release.codename!r}, not {suite!r}",
            hint="the mirror serves another suite under this name",
        )
    now = now or datetime.now(UTC)
    if release.valid_until is not None and release.valid_until < now:
        raise SignatureError(
            f"{what} expired on {release.valid_until:%Y-%m-%d %H:%M} UTC (Valid-Until)",
            hint="the mirror is stale or replaying old metadata; fetch again from a fresh mirror",
        )
    return release
