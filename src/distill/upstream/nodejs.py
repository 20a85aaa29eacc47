"""Node.js from the official release archives, verified as the Node.js project signs them.

Debian carries one Node.js major per release (20 in Debian 13, 18 in Debian 12). For
the others (22, 24, 26) distill takes ``node-vX.Y.Z-linux-ARCH.tar.xz`` from a Node.js
release mirror the user names (``--nodejs-mirror``, ``DISTILL_NODEJS_MIRROR``; the
layout of the project's ``dist/`` directory) and trusts it only this way:

1. ``vX.Y.Z/SHASUMS256.txt`` must carry a good detached signature
   (``SHASUMS256.txt.sig``, checked by ``gpgv``) whose primary key is one of the Node.js
   releasers' keys pinned below (:data:`RELEASE_KEYS`), or a key the spec adds as a
   signer (``nodejs.signers``: a mirror that re-signs, or a test);
2. the archive must hash to the SHA256 that signed list gives it.

The key material comes from a keyring the user points to (``nodejs.keyring`` in the
spec, else ``DISTILL_NODEJS_KEYRING``), e.g. ``gpg/pubring.kbx`` of the Node.js
project's release-keys repository: distill pins the fingerprints, so a keyring with
other keys in it adds no trust. The lock records the version, the file, its SHA256
and the SHA256 of the signed list; a build from the lock needs only the SHA256. The
archive is cached by its SHA256 beside the .debs (``archives/``) and expanded once,
like a .deb, with its paths under ``/nodejs`` (Google's layout).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from distill.archive.cache import Cache, atomic_write, check_digest, file_lock, is_digest, sha256_file
from distill.archive.transport import Transport
from distill.archive.verify import _keyring_files
from distill.errors import ArchiveError, IntegrityError, KeyringError, NetworkError, SignatureError
from distill.limits import MiB, load_json

ENV_MIRROR = "DISTILL_NODEJS_MIRROR"
ENV_KEYRING = "DISTILL_NODEJS_KEYRING"
MIRROR_HINT = f"set --nodejs-mirror URL or {ENV_MIRROR} to a Node.js release mirror (its dist/ directory)"

# The primary keys of the Node.js releasers, active and retired (the fingerprints the
# Node.js project lists in its README and its release-keys repository's keys.list).
RELEASE_KEYS: frozenset[str] = frozenset(
    {
        "5BE8A3F6C8A5C01D106C0AD820B1A390B168D356",  # Antoine du Hamel
        "DD792F5973C6DE52C432CBDAC77ABFA00DDBF2B7",  # Juan José Arboleda
        "CC68F5A3106FF448322E48ED27F5E38D5B0A215F",  # Marco Ippolito
        "8FCCA13FEF1D0C2E91008E09770F7A9A5AE15600",  # Michaël Zasso
        "890C08DB8579162FEE0DF9DB8BEAB4DFCF555EF4",  # Rafael Gonzaga
        "C82FA3AE1CBEDC6BE46B9360C43CEC45C17AB93C",  # Richard Lau
        "108F52B48DB57BB0CC439B2997B01419BD92F80A",  # Ruy Adorno
        "655F3B5C1FB3FA8D1A0CA6BDE4A7D232B936D2FD",  # Stewart X Addison
        "A363A499291CBBC940DD62E41F10027AF002F8B0",  # Ulises Gascón
        # retired: they signed earlier releases
        "C0D6248439F1D5604AAFFB4021D900FFDB233756",  # Antoine du Hamel
        "4ED778F539E3634C779C87C6D7062848A1AB005C",  # Beth Griggs
        "141F07595B7B3FFE74309A937405533BE57C7D57",  # Bryan English
        "9554F04D7259F04124DE6B476D5A82AC7E37093B",  # Chris Dickinson
        "94AE36675C464D64BAFA68DD7434390BDBE9B9C5",  # Colin Ihrig
        "1C050899334244A8AF75E53792EF661D867B9DFA",  # Danielle Adams
        "74F12602B6F1C4E913FAA37AD3A89613643B6201",  # Danielle Adams
        "B9AE9905FFD7803F25714661B63B535A4C206CA9",  # Evan Lucas
        "77984A986EBC2AA786BC0F66B01FBB92821C587A",  # Gibson Fahnestock
        "93C7E9E91B49E432C2F75674B0A78B0A6C481CF6",  # Isaac Z. Schlueter
        "56730D5401028683275BD23C23EFEFE93C4CFFFE",  # Italo A. Casas
        "71DCFD284A79C3B38668286BC97EC7A07EDE3FC1",  # James M Snell
        "FD3A5288F042B6850C66B31F09FE44734EB7990E",  # Jeremiah Senkpiel
        "61FC681DFB92A079F1685E77973F295594EC4689",  # Juan José Arboleda
        "114F43EE0176B71C7BC219DD50A3051F888C628D",  # Julien Gilli
        "C4F0DFFF4E8C1A8236409D08E73BC641CC11F4C8",  # Myles Borins
        "DD8F2338BAE7501E3DD5AC78C273792F7D83545D",  # Rod Vagg
        "A48C2BEE680E841632CD4E44F07496B3EB3C1762",  # Ruben Bridgewater
        "B9E2F5981AA6E0CD28160D9FF13993A75599653C",  # Shelley Vohr
        "7937DFD2AB06298B2293C3187D33FF9D0246406D",  # Timothy J Fontaine
    }
)

# Debian architecture -> the Node.js project's name for it in archive names.
NODE_ARCH = {"amd64": "x64", "arm64": "arm64", "armhf": "armv7l", "ppc64el": "ppc64le", "s390x": "s390x"}

MAX_INDEX = 16 * MiB  # the mirror's index.json (about 300 KiB today)
MAX_SHASUMS = 1 * MiB  # SHASUMS256.txt (about 5 KiB)
MAX_SIGNATURE = 64 << 10
MAX_ARCHIVE = 256 * MiB  # a linux tar.xz is about 30 MiB

_VERSION = re.compile(r"[0-9]{1,4}(\.[0-9]{1,6}){0,2}", re.ASCII)
_EXACT = re.compile(r"[0-9]{1,4}\.[0-9]{1,6}\.[0-9]{1,6}", re.ASCII)
_FINGERPRINT = re.compile(r"[0-9A-F]{40}", re.ASCII)
_FILE = re.compile(r"node-v[0-9]{1,4}\.[0-9]{1,6}\.[0-9]{1,6}-linux-[a-z0-9]{1,16}\.tar\.xz", re.ASCII)


def check_version(v: str) -> str:
    """A spec's ``nodejs.version``: a major ("22"), major.minor or an exact version."""
    v = v.strip().removeprefix("v")
    if not _VERSION.fullmatch(v):
        raise ValueError("must be a Node.js version: a major (22), major.minor (22.12) or exact (22.12.0)")
    return v


def check_fingerprint(v: str) -> str:
    fpr = v.replace(" ", "").upper()
    if not _FINGERPRINT.fullmatch(fpr):
        raise ValueError("must be an OpenPGP key fingerprint (40 hex digits)")
    return fpr


@dataclass(frozen=True)
class LockedArchive:
    """One release archive as the lock pins it."""

    name: str  # "nodejs"
    version: str  # "22.23.5"
    file: str  # node-v22.23.5-linux-x64.tar.xz
    sha256: str
    shasums_sha256: str  # the signed SHASUMS256.txt it was taken from
    layer: str = ""


def archive_problem(a: LockedArchive) -> str | None:
    """What makes a locked archive unsafe to use (its field and why), or None."""
    for name in ("name", "version", "file", "sha256", "shasums_sha256", "layer"):
        if not isinstance(getattr(a, name), str):
            return f"{name}: not a string"
    if a.name != "nodejs":
        return "name: not a release archive distill knows (nodejs)"
    if not _EXACT.fullmatch(a.version):
        return "version: not an exact Node.js version"
    if not _FILE.fullmatch(a.file) or not a.file.startswith(f"node-v{a.version}-"):
        return "file: not a Node.js linux archive name of that version"
    if not is_digest(a.sha256) or not is_digest(a.shasums_sha256):
        return "sha256: not a SHA256 digest (64 lowercase hex digits)"
    return None


@dataclass(frozen=True)
class Settings:
    """Where archives come from and which keys sign them (the spec's, else the environment's)."""

    mirror: str | None
    keyrings: tuple[Path, ...]
    signers: frozenset[str]

    @classmethod
    def make(cls, mirror: str | None, keyrings: list[str], signers: list[str]) -> Settings:
        mirror = mirror or os.environ.get(ENV_MIRROR) or None
        if mirror is not None and not mirror.startswith(("http://", "https://")):
            raise NetworkError(f"the Node.js mirror {mirror[:200]!r} is not an http(s) URL", hint=MIRROR_HINT)
        paths = [Path(k) for k in keyrings]
        if not paths and os.environ.get(ENV_KEYRING):
            paths = [Path(p) for p in os.environ[ENV_KEYRING].split(os.pathsep) if p]
        return cls(mirror.rstrip("/") if mirror else None, tuple(paths), frozenset(signers))

    def need_mirror(self, what: str) -> str:
        if not self.mirror:
            raise NetworkError(
                f"{what} comes from the Node.js release archives, and no mirror is set", MIRROR_HINT
            )
        return self.mirror


def _get(transport: Transport, url: str, limit: int) -> bytes:
    try:
        return transport.get(url, max_size=limit).content
    except NetworkError as exc:
        raise NetworkError(exc.message, hint=MIRROR_HINT) from None


def _key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def pick_version(index: bytes, wanted: str, node_arch: str, where: str) -> str:
    """The newest release in the mirror's index.json that matches ``wanted`` and has a
    linux archive for ``node_arch``. (The index is not signed: what it can do is name an
    older genuine release, whose signed list is still checked; the lock pins the result.)"""
    doc = load_json(index, label=where, error=ArchiveError, limit=MAX_INDEX)
    if not isinstance(doc, list):
        raise ArchiveError(f"{where}: not a list of releases")
    prefix = _key(wanted)
    found: list[tuple[int, ...]] = []
    for entry in doc:
        if not isinstance(entry, dict):
            continue
        version, files = entry.get("version"), entry.get("files")
        if not isinstance(version, str) or not isinstance(files, list):
            continue
        v = version.removeprefix("v")
        if _EXACT.fullmatch(v) and _key(v)[: len(prefix)] == prefix and f"linux-{node_arch}" in files:
            found.append(_key(v))
    if not found:
        raise ArchiveError(f"{where} lists no Node.js {wanted} release for linux-{node_arch}")
    return ".".join(map(str, max(found)))


def verify_shasums(shasums: bytes, signature: bytes, settings: Settings, where: str) -> None:
    """gpgv over the detached signature; the signing primary key must be pinned or a signer."""
    gpgv = shutil.which("gpgv")
    if gpgv is None:
        raise KeyringError("gpgv is not installed", hint="apt-get install gpgv")
    if not settings.keyrings:
        raise KeyringError(
            f"{where} is signed by the Node.js releasers, and no keyring holds their keys",
            hint=f"set {ENV_KEYRING} (or nodejs.keyring in the spec) to a keyring with the Node.js release "
            "keys, e.g. gpg/pubring.kbx of the Node.js release-keys repository",
        )
    with tempfile.TemporaryDirectory(prefix="distill-gpgv-") as d:
        tmp = Path(d)
        (tmp / "SHASUMS256.txt").write_bytes(shasums)
        (tmp / "SHASUMS256.txt.sig").write_bytes(signature)
        cmd = [gpgv, "--homedir", str(tmp), "--status-fd", "1"]
        for k in _keyring_files(settings.keyrings, tmp):
            cmd += ["--keyring", str(k)]
        cmd += [str(tmp / "SHASUMS256.txt.sig"), str(tmp / "SHASUMS256.txt")]
        proc = subprocess.run(cmd, capture_output=True, check=False, timeout=60)
    status = [line.split() for line in proc.stdout.decode("utf-8", "replace").splitlines()]
    words = [s[1] for s in status if len(s) > 1 and s[0] == "[GNUPG:]"]
    if "BADSIG" in words:
        raise SignatureError(f"{where} has a BAD signature", hint="the file was altered")
    if "EXPKEYSIG" in words or "REVKEYSIG" in words:
        raise SignatureError(f"{where} is signed only by an expired or revoked key")
    signers = {s[-1].upper() for s in status if len(s) > 11 and s[0] == "[GNUPG:]" and s[1] == "VALIDSIG"}
    if "GOODSIG" not in words or not signers:
        raise SignatureError(
            f"{where} is not signed by any key in {', '.join(map(str, settings.keyrings))}",
            hint=f"the keyring must hold the Node.js release keys ({ENV_KEYRING} or nodejs.keyring)",
        )
    trusted = RELEASE_KEYS | settings.signers
    if not signers & trusted:
        raise SignatureError(
            f"{where} is signed by {', '.join(sorted(signers))}, which is not a Node.js release key",
            hint="distill trusts the pinned Node.js releasers' keys; add a mirror's own key with nodejs.signers",
        )


def sha256_of(shasums: bytes, file: str, where: str) -> str:
    for line in shasums.decode("utf-8", "replace").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == file:
            if not is_digest(parts[0]):
                raise ArchiveError(f"{where}: the SHA256 of {file} is not 64 hex digits")
            return parts[0]
    raise ArchiveError(f"{where} lists no {file}")


def resolve(
    wanted: str, archs: list[str], settings: Settings, transport: Transport, layer: str, what: str
) -> dict[str, LockedArchive]:
    """arch -> the archive to lock, for a spec's ``nodejs.version``."""
    mirror = settings.need_mirror(what)
    out: dict[str, LockedArchive] = {}
    index: bytes | None = None
    for arch in archs:
        node_arch = NODE_ARCH.get(arch)
        if node_arch is None:
            raise ArchiveError(
                f"the Node.js project publishes no linux archive for {arch}",
                hint=f"architectures: {', '.join(NODE_ARCH)}",
            )
        version = wanted
        if not _EXACT.fullmatch(wanted):
            if index is None:
                index = _get(transport, f"{mirror}/index.json", MAX_INDEX)
            version = pick_version(index, wanted, node_arch, f"{mirror}/index.json")
        base = f"{mirror}/v{version}"
        shasums = _get(transport, f"{base}/SHASUMS256.txt", MAX_SHASUMS)
        signature = _get(transport, f"{base}/SHASUMS256.txt.sig", MAX_SIGNATURE)
        verify_shasums(shasums, signature, settings, f"{base}/SHASUMS256.txt")
        file = f"node-v{version}-linux-{node_arch}.tar.xz"
        digest = sha256_of(shasums, file, f"{base}/SHASUMS256.txt")
        out[arch] = LockedArchive("nodejs", version, file, digest, hashlib.sha256(shasums).hexdigest(), layer)
    return out


def archive_path(cache: Cache, sha256: str) -> Path:
    return cache.root / "archives" / f"{check_digest(sha256, 'archive hash')}.tar.xz"


def ensure(
    cache: Cache, a: LockedArchive, settings: Settings, transport: Transport | None, offline: bool
) -> Path:
    """The verified archive in the cache, downloaded first if it is not there (concurrent
    builds on one cache download it once)."""
    path = archive_path(cache, a.sha256)
    if path.is_file():
        return path
    if offline or transport is None:
        raise NetworkError(
            f"{a.file} is not in the cache and --offline forbids downloading it",
            hint="run once without --offline",
        )
    mirror = settings.need_mirror(f"Node.js {a.version}")
    path.parent.mkdir(parents=True, exist_ok=True)
    (cache.root / "tmp").mkdir(parents=True, exist_ok=True)
    with file_lock(cache.root / "tmp" / f"{a.sha256}.archive.lock"):
        if path.is_file():
            return path
        url = f"{mirror}/v{a.version}/{a.file}"
        data = _get(transport, url, MAX_ARCHIVE)
        got = hashlib.sha256(data).hexdigest()
        if got != a.sha256:
            raise IntegrityError(
                f"{url} has SHA256 {got}, but the signed SHASUMS256.txt records {a.sha256}",
                hint="the mirror is mid-sync or tampered with; nothing was cached",
            )
        atomic_write(path, data)
    return path


def intact(path: Path, sha256: str) -> bool:
    try:
        return sha256_file(path) == sha256
    except OSError:
        return False
