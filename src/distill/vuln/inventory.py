"""What a target has installed: the packages of a lock, of an image or of an SBOM.

For an image (any source ``distill audit`` reads: an OCI layout, an OCI or docker
archive, ``podman:``/``docker:``, ``docker://``) the layers are streamed once (verified,
whiteouts applied, nothing extracted) keeping only the package manifests: the dpkg
database (``status`` and distroless ``status.d``), Python ``*.dist-info/METADATA`` and
``*.egg-info/PKG-INFO``, ``node_modules/**/package.json`` and the ``pom.properties`` in
jars. What Debian packaged (``/usr/lib/python3/dist-packages``, ``/usr/share/nodejs``,
``/usr/share/java``, ``/usr/lib/jvm``) is matched as the Debian package it is, not again
as a PyPI, npm or Maven one (as Trivy does for files an OS package owns).
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

from distill.debian.deb822 import parse_file
from distill.distros import DISTROS
from distill.errors import VulnError
from distill.limits import MAX_JSON_DEPTH, load_json
from distill.resolve.lock import Lock
from distill.vuln.db import ZIP_ERRORS
from distill.vuln.model import CODENAMES, Pkg

_PY_META = re.compile(r"(^|/)[^/]+\.(dist-info/METADATA|egg-info/PKG-INFO)$")
_NODE_PKG = re.compile(r"(^|/)node_modules/(@[^/]+/)?[^/@.][^/]*/package\.json$")
_DEBIAN_OWNED = (
    "usr/lib/python3/dist-packages/",
    "usr/share/nodejs/",
    "usr/lib/nodejs/",
    "usr/share/java/",
    "usr/lib/jvm/",
)
MAX_JAR = 64 << 20
MAX_NESTED = 1000  # jars inside one jar (Spring Boot's BOOT-INF/lib)


@dataclass
class Inventory:
    """The packages of one target, and the Debian release they come from."""

    name: str
    kind: str  # lock | spec | image | sbom
    packages: list[Pkg]
    codename: str | None = None  # Debian release (bookworm), None when not Debian
    arch: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def distro(self) -> str | None:
        """distill's name of the release (``debian12``), when distill knows it."""
        return next((d.name for d in DISTROS.values() if d.codename == self.codename), None)

    @property
    def debs(self) -> list[Pkg]:
        return [p for p in self.packages if p.ecosystem == "deb"]


def codename_of(distro: str | None) -> str | None:
    d = DISTROS.get(distro or "")
    return d.codename if d else None


def from_lock(lock: Lock, name: str, kind: str, arch: str | None) -> Inventory:
    archs = lock.archs
    if not archs:
        raise VulnError(f"{name}: the lock has no architecture")
    pick = arch if arch in archs else None
    if arch is not None and pick is None:
        raise VulnError(f"{name} has no {arch} section", hint=f"it has {', '.join(archs)}")
    from distill.distros import host_arch

    pick = pick or (host_arch() if host_arch() in archs else archs[0])
    pkgs = [
        Pkg("deb", p.name, p.version, p.source, p.source_version, p.architecture, f"{name} ({p.suite})")
        for p in lock.packages[pick]
    ]
    return Inventory(name, kind, pkgs, codename_of(lock.distro), pick)


# -- images ------------------------------------------------------------------------------------


def wanted(path: str) -> bool:
    """Whether a scan keeps the content of ``path``: a package manifest (see the module docstring)."""
    if path.startswith(_DEBIAN_OWNED):
        return False
    return bool(_PY_META.search(path) or _NODE_PKG.search(path) or path.endswith(".jar"))


def _dpkg(table: Any) -> list[Pkg]:
    out: list[Pkg] = []
    for path, data in sorted(table.content.items()):
        if not (
            path == "var/lib/dpkg/status"
            or (path.startswith("var/lib/dpkg/status.d/") and not path.endswith(".md5sums"))
        ):
            continue
        for f in parse_file(data):
            if "Package" not in f or not f.get("Status", "install ok installed").endswith(" installed"):
                continue
            name, version = f["Package"].strip(), f.get("Version", "").strip()
            source, source_version = name, version
            if f.get("Source"):
                src, _, rest = f["Source"].strip().partition(" ")
                source = src
                if rest.startswith("(") and rest.endswith(")"):
                    source_version = rest[1:-1].strip()
            out.append(
                Pkg(
                    "deb",
                    name,
                    version,
                    source,
                    source_version,
                    f.get("Architecture", "").strip(),
                    "/" + path,
                )
            )
    return out


def _email_headers(data: bytes) -> dict[str, str]:
    head = data.split(b"\n\n", 1)[0].decode("utf-8", "replace")
    out: dict[str, str] = {}
    for line in head.splitlines():
        k, sep, v = line.partition(":")
        if sep and k in ("Name", "Version") and k not in out:
            out[k] = v.strip()
    return out


def _pom_properties(data: bytes, where: str, depth: int = 0) -> list[Pkg]:
    out: list[Pkg] = []
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
        for i in infos:
            if (
                i.filename.startswith("META-INF/maven/")
                and i.filename.endswith("/pom.properties")
                and i.file_size < 1 << 16
            ):
                props: dict[str, str] = {}
                for line in zf.read(i).decode("utf-8", "replace").splitlines():
                    k, sep, v = line.partition("=")
                    if sep and not k.startswith("#"):
                        props[k.strip()] = v.strip()
                if props.get("groupId") and props.get("artifactId") and props.get("version"):
                    out.append(
                        Pkg(
                            "maven",
                            f"{props['groupId']}:{props['artifactId']}",
                            props["version"],
                            location=where,
                        )
                    )
        if depth == 0:
            nested = [i for i in infos if i.filename.endswith(".jar") and i.file_size <= MAX_JAR][:MAX_NESTED]
            for i in nested:
                out += _pom_properties(zf.read(i), f"{where}!/{i.filename}", 1)
    except ZIP_ERRORS:
        return out  # not a readable jar: nothing known about it
    return out


def app_packages(content: dict[str, bytes]) -> list[Pkg]:
    """PyPI, npm and Maven packages from the manifests kept of an image."""
    from packaging.utils import canonicalize_name

    out: list[Pkg] = []
    for path, data in sorted(content.items()):
        if path.startswith(_DEBIAN_OWNED):
            continue
        if _PY_META.search(path):
            h = _email_headers(data)
            if h.get("Name") and h.get("Version"):
                out.append(Pkg("pypi", str(canonicalize_name(h["Name"])), h["Version"], location="/" + path))
        elif _NODE_PKG.search(path):
            try:
                doc = load_json(data, label=path, error=VulnError, limit=4 << 20, max_depth=MAX_JSON_DEPTH)
            except VulnError:
                continue
            if (
                isinstance(doc, dict)
                and isinstance(doc.get("name"), str)
                and isinstance(doc.get("version"), str)
            ):
                out.append(Pkg("npm", doc["name"], doc["version"], location="/" + posixpath.dirname(path)))
        elif path.endswith(".jar"):
            out += _pom_properties(data, "/" + path)
    return out


def _os_codename(release: dict[str, str]) -> str | None:
    if release.get("ID") != "debian":
        return None
    code = release.get("VERSION_CODENAME") or CODENAMES.get(release.get("VERSION_ID", "").split(".")[0], "")
    return code or None


_INVENTORY_FORMAT = 1


def _cache_key(image: Any) -> str:
    """An image's package list depends only on its layers (named by their digests) and its
    config: the digests name it, wherever the image is read from."""
    import hashlib
    import json

    layers = [str(d.get("digest")) for d in image.layers]
    config = str((image.manifest.get("config") or {}).get("digest"))
    return hashlib.sha256(json.dumps([_INVENTORY_FORMAT, config, layers]).encode()).hexdigest()


def _cached(cache: Any, key: str) -> tuple[list[Pkg], dict[str, str]] | None:
    import json

    from distill.archive.cache import CorruptEntryError, read_sealed

    try:
        payload = read_sealed(cache.vuln_path(key, "inventory"), "image package list")
    except CorruptEntryError:
        return None
    if payload is None:
        return None
    try:
        doc = json.loads(payload)
        pkgs = [Pkg(*map(str, row)) for row in doc["packages"] if isinstance(row, list) and len(row) == 7]
        release = {str(k): str(v) for k, v in doc["os_release"].items()}
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return pkgs, release


def _store(cache: Any, key: str, pkgs: list[Pkg], release: dict[str, str]) -> None:
    import json

    from distill.archive.cache import atomic_write, seal

    rows = [[p.ecosystem, p.name, p.version, p.source, p.source_version, p.arch, p.location] for p in pkgs]
    doc = {"packages": rows, "os_release": release}
    atomic_write(cache.vuln_path(key, "inventory"), seal(json.dumps(doc).encode()))


def packages_of(table: Any) -> tuple[list[Pkg], dict[str, str]]:
    """The packages and the os-release of a scanned image (a scan made with ``keep=wanted``)."""
    from distill.audit.image import dpkg_installed, os_release

    debs = _dpkg(table) if dpkg_installed(table) is not None else []
    return debs + app_packages(table.content), os_release(table)


def codename_of_release(release: dict[str, str]) -> str | None:
    """The Debian codename an image's os-release names (None when not Debian)."""
    return _os_codename(release)


def image_packages(
    target: str,
    arch: str | None,
    *,
    settings: Any = None,
    progress: Any = None,
    cache: Any = None,
) -> Inventory:
    """The packages installed in an image (the one place that reads images for the
    vulnerability commands: it streams the layers through the image sources of distill.oci).
    With ``cache`` (a :class:`~distill.archive.cache.Cache`) the list is kept by the
    image's config and layer digests, so a second scan reads the manifest and config only."""
    from distill.audit.image import scan
    from distill.oci.source import open_source

    source = open_source(target, settings=settings)
    try:
        image = source.image(arch)
        key = _cache_key(image)
        got = _cached(cache, key) if cache is not None else None
        if got is not None:
            pkgs, release = got
        else:
            pkgs, release = packages_of(scan(source, image, progress, keep=wanted).table)
            if cache is not None:
                _store(cache, key, pkgs, release)
    finally:
        source.close()
    inv = Inventory(target, "image", pkgs, _os_codename(release), image.config.get("architecture"))
    if release and inv.codename is None:
        inv.notes.append(f"the image's OS is {release.get('PRETTY_NAME') or release.get('ID')}, not Debian")
    return inv
