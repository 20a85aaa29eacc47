"""The package catalog of one image (one platform): what is in it, read from the image
itself, and made exact by distill's lock where there is one.

:func:`from_image` streams the image's layers once (verified, whiteouts applied,
nothing written to disk; :func:`distill.oci.read.read_tree` with a
:class:`MetadataKeeper`) and keeps only package metadata: the dpkg databases
(``status`` and distroless ``status.d``), ``/usr/share/doc/PKG/copyright`` (doc
directories that link to a sibling package's are followed), Alpine's
``/lib/apk/db/installed``, Python ``*.dist-info/METADATA`` and ``*.egg-info``,
``node_modules/**/package.json`` (and the project's own beside ``node_modules``), jars
(their ``META-INF/maven/**/pom.properties``, else the jar with its SHA256), loose
``pom.properties`` of an exploded jar, and the entrypoint's executable when no package
owns it (an application binary, with its SHA256).

:func:`with_lock` adds what only the lock knows to a distill build's Debian packages:
each ``.deb``'s SHA256, its archive path and download URL, and the edge of the
resolution that brought it in.
"""

from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
import zipfile
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.parser import HeaderParser
from typing import IO, Any

from packageurl import PackageURL

from distill.debian.deb822 import parse_file
from distill.debian.relation import RelationSyntaxError, parse_relations
from distill.errors import ImageError
from distill.limits import MiB, env_limit, load_json
from distill.oci.source import Image, Source
from distill.resolve.lock import Lock, LockedPackage
from distill.sbom.licenses import NOASSERTION, Declared, declared, metadata_expression

MAX_METADATA = 4 * MiB  # one package record, METADATA, package.json or copyright file
MAX_JAR = 256 * MiB  # one jar read for its pom.properties (a larger one is only hashed)
MAX_JAR_DIRECTORY = 16 * MiB  # a jar's central directory (zipfile holds an object per entry)
MAX_KEPT = 256 * MiB  # package metadata kept from one image (DISTILL_MAX_SBOM_METADATA_MIB)

DEB, APK, PYTHON, NPM, MAVEN, JAR, BINARY = "deb", "apk", "python", "npm", "maven", "jar", "binary"

_DIST_INFO = re.compile(r"(?:^|/)[^/]+\.dist-info/METADATA$")
_EGG_INFO = re.compile(r"(?:^|/)[^/]+\.egg-info(?:/PKG-INFO)?$")
# A package.json that is a package's: in a node_modules directory, or in Debian's own
# tree of Node.js modules (what the nodejs package and node-* packages ship).
_NODE_PACKAGE = re.compile(
    r"(?:(?:^|/)node_modules/|^usr/share/nodejs/)(?:@[^/]+/)?[^/@][^/]*/package\.json$"
)
_JAR = re.compile(r"\.(?:jar|war|ear)$")
_POM = re.compile(r"(?:^|/)META-INF/maven/[^/]+/[^/]+/pom\.properties$")
_MD5SUMS = re.compile(r"^var/lib/dpkg/(?:status\.d/[^/]+|info/[^/]+)\.md5sums$")
_EXACT = {
    "var/lib/dpkg/status",
    "lib/apk/db/installed",
    "etc/os-release",
    "usr/lib/os-release",
}
_PY_NAME = re.compile(r"[-_.]+")


@dataclass
class Component:
    """One package (or application file) found in the image."""

    kind: str  # DEB, APK, PYTHON, NPM, MAVEN, JAR or BINARY
    name: str
    version: str
    path: str  # where its record is in the image (no leading '/')
    purl: str | None = None
    arch: str = ""
    source: str = ""  # Debian: the source package
    source_version: str = ""
    supplier: str = ""  # "Name <email>" (Debian: Maintainer)
    license: Declared = field(default_factory=Declared)
    sha256: str = ""  # the .deb's (from the lock), the jar's, the binary's
    download: str = ""  # the .deb's URL (from the lock)
    filename: str = ""  # the .deb's archive path (from the lock)
    summary: str = ""
    homepage: str = ""
    depends: list[str] = field(default_factory=list)  # ids of other components
    owner: str = ""  # the id of the Debian package that ships it (its md5sums list it)
    properties: dict[str, str] = field(default_factory=dict)
    requires: list[str] = field(default_factory=list)  # raw dependency names, resolved into depends

    @property
    def id(self) -> str:
        """A stable identifier: the kind, the name and a hash of what makes it unique."""
        h = hashlib.sha256(f"{self.kind}\0{self.name}\0{self.version}\0{self.arch}\0{self.path}".encode())
        safe = re.sub(r"[^A-Za-z0-9.-]+", "-", self.name).strip("-") or "x"
        return f"{self.kind}-{safe[:64]}-{h.hexdigest()[:16]}"


@dataclass
class ImageInfo:
    """The image a catalog describes: one platform's manifest."""

    name: str  # a short name (purl name: the repository's last path segment)
    digest: str  # the platform manifest's digest
    arch: str  # OCI architecture
    variant: str | None
    created: int  # seconds since the epoch (SOURCE_DATE_EPOCH, else the config's 'created')
    config_digest: str
    repository_url: str | None = None
    tag: str | None = None
    index_digest: str | None = None

    @property
    def purl(self) -> str:
        qualifiers = {"arch": self.arch}
        if self.repository_url:
            qualifiers["repository_url"] = self.repository_url
        if self.tag:
            qualifiers["tag"] = self.tag
        name = self.name.rsplit("/", 1)[-1].lower() or "image"
        return PackageURL("oci", None, name, self.digest, qualifiers).to_string()


@dataclass
class Catalog:
    image: ImageInfo
    os_id: str = ""  # os-release ID (debian, ubuntu, alpine)
    os_version: str = ""  # os-release VERSION_ID
    os_name: str = ""  # PRETTY_NAME
    components: list[Component] = field(default_factory=list)

    def by_kind(self, kind: str) -> list[Component]:
        return [c for c in self.components if c.kind == kind]


# -- streaming: what is kept of each file ---------------------------------------------


class MetadataKeeper:
    """A :class:`distill.oci.read.Keeper` for package metadata: records are kept as they
    are (bounded), package.json files compacted, METADATA cut to its headers, jars and
    the entrypoint's executable summarised (hashes and pom.properties)."""

    def __init__(self, name: str, executables: set[str]) -> None:
        self.name = name
        self.executables = executables  # image paths the entrypoint may run
        self.kept = 0
        self.limit = env_limit("MAX_SBOM_METADATA_MIB", MAX_KEPT // MiB) * MiB

    def wants(self, path: str, size: int) -> bool:
        if path in _EXACT or path.startswith("var/lib/dpkg/status.d/"):
            return True
        if path.startswith("usr/share/doc/") and path.endswith("/copyright") and path.count("/") == 4:
            return True
        if path.endswith("package.json"):
            return bool(_NODE_PACKAGE.search(path)) or path.count("/") < 6
        return bool(
            _DIST_INFO.search(path)
            or _EGG_INFO.search(path)
            or _JAR.search(path)
            or _POM.search(path)
            or _MD5SUMS.match(path)
            or path in self.executables
        )

    def keep(self, path: str, f: IO[bytes], size: int) -> bytes:
        if _JAR.search(path) or path in self.executables:
            data = _summary(path, f, size, jar=bool(_JAR.search(path)), what=f"{self.name}: /{path}")
        elif size > MAX_METADATA:
            data = b""  # not a package record of any real package: left out
        else:
            data = f.read(MAX_METADATA + 1)
            if path.endswith("package.json"):
                data = _compact_package_json(data)
            elif path.endswith(("/METADATA", "/PKG-INFO", ".egg-info")):
                data = data.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]  # the headers
        self.kept += len(data)
        if self.kept > self.limit:
            raise ImageError(
                f"{self.name}: more than {self.limit >> 20} MiB of package metadata; refusing"
                " (DISTILL_MAX_SBOM_METADATA_MIB raises the limit)"
            )
        return data


def _summary(path: str, f: IO[bytes], size: int, jar: bool, what: str) -> bytes:
    """A jar's or an executable's SHA256 (and a jar's pom.properties), as JSON."""
    h = hashlib.sha256()
    buf = io.BytesIO() if jar and size <= MAX_JAR else None
    while chunk := f.read(1 << 20):
        h.update(chunk)
        if buf is not None:
            buf.write(chunk)
    out: dict[str, Any] = {"sha256": h.hexdigest()}
    if buf is not None:
        out.update(_jar_metadata(buf))
    return json.dumps(out, sort_keys=True).encode()


def _central_directory_size(tail: bytes) -> int | None:
    """The size a zip's end record (ZIP64's too) gives its central directory, from the
    last bytes of the file; None when there is no end record in them."""
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    size = int.from_bytes(tail[at + 12 : at + 16], "little")
    if size == 0xFFFFFFFF:  # ZIP64: the size is in the ZIP64 end record, before it
        z64 = tail.rfind(b"PK\x06\x06", 0, at)
        if z64 < 0 or at - z64 < 56:
            return None
        size = int.from_bytes(tail[z64 + 40 : z64 + 48], "little")
    return size


def _jar_metadata(buf: io.BytesIO) -> dict[str, Any]:
    """pom.properties and the manifest's main attributes of a jar (one that is not a
    readable zip, or whose central directory is beyond :data:`MAX_JAR_DIRECTORY`, has none:
    zipfile would hold an object for each of its entries)."""
    poms: list[dict[str, str]] = []
    manifest: dict[str, str] = {}
    with buf.getbuffer() as view:
        tail = bytes(view[-(1 << 17) :])  # the end record, its comment, a ZIP64 end record
    directory = _central_directory_size(tail)
    if directory is None or directory > MAX_JAR_DIRECTORY:
        return {}
    try:
        with zipfile.ZipFile(buf) as z:
            for info in z.infolist()[:200_000]:
                if _POM.search(info.filename) and info.file_size <= 64 << 10:
                    poms.append({**_properties(z.read(info)), "path": info.filename})
                elif info.filename == "META-INF/MANIFEST.MF" and info.file_size <= 1 << 20:
                    manifest = _manifest(z.read(info))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
        return {}
    return {"poms": poms, "manifest": manifest}


def _properties(data: bytes) -> dict[str, str]:
    out = {}
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def _manifest(data: bytes) -> dict[str, str]:
    fields: dict[str, str] = {}
    last = None
    for line in data.decode("utf-8", "replace").replace("\r\n", "\n").split("\n"):
        if not line:
            break
        if line.startswith(" ") and last:
            fields[last] += line[1:]
        elif ":" in line:
            last, _, value = line.partition(":")
            fields[last.strip()] = value.strip()
    keys = ("Implementation-Title", "Implementation-Version", "Bundle-SymbolicName", "Bundle-Version",
            "Implementation-Vendor", "Main-Class")  # fmt: skip
    return {k: fields[k] for k in keys if k in fields}


def _compact_package_json(data: bytes) -> bytes:
    """The fields of a package.json an SBOM uses (a big one is mostly README text)."""
    try:
        doc = load_json(data, label="package.json", error=ImageError, limit=MAX_METADATA)
    except ImageError:
        return b""
    if not isinstance(doc, dict):
        return b""
    keep = ("name", "version", "license", "licenses", "dependencies", "optionalDependencies",
            "description", "homepage", "author", "private")  # fmt: skip
    return json.dumps({k: doc[k] for k in keep if k in doc}, sort_keys=True).encode()


# -- reading the image -----------------------------------------------------------------


def entry_argv(config: dict[str, Any]) -> list[str]:
    c = config.get("config") or {}
    return [str(x) for x in (c.get("Entrypoint") or []) + (c.get("Cmd") or [])]


def _executables(config: dict[str, Any]) -> set[str]:
    """The image paths the entrypoint's first word may name."""
    argv = entry_argv(config)
    if not argv:
        return set()
    exe = argv[0]
    c = config.get("config") or {}
    if exe.startswith("/"):
        return {posixpath.normpath(exe).lstrip("/")}
    if "/" in exe:
        return {posixpath.normpath(posixpath.join(c.get("WorkingDir") or "/", exe)).lstrip("/")}
    env = dict(str(x).partition("=")[::2] for x in c.get("Env") or [])
    dirs = (env.get("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":")
    return {posixpath.normpath(posixpath.join(d or "/", exe)).lstrip("/") for d in dirs}


def created_of(config: dict[str, Any]) -> int:
    """The config's ``created`` as seconds since the epoch (0 when absent or unreadable)."""
    raw = config.get("created")
    if not isinstance(raw, str) or not raw:
        return 0
    try:
        return int(datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp())
    except (ValueError, OverflowError):
        return 0


def from_image(source: Source, image: Image, info: ImageInfo) -> Catalog:
    """The catalog of ``image`` (read from ``source``), described as ``info``."""
    from distill.oci import read

    exe_paths = _executables(image.config)
    keeper = MetadataKeeper(image.name, exe_paths)
    # The compressed digests verify the layers; their diff_ids matter to a build that reuses
    # them, not here (a docker archive's layers, named by diff_id, are hashed anyway).
    tree, _, _ = read.read_tree(source, image, keeper=keeper, sonames=False, check_diff_ids=False)
    return _catalog(tree, info, image.config, exe_paths)


def _content(tree: Any, path: str) -> bytes | None:
    """The kept content at ``path``, symlinks followed (None when it is not there)."""
    from distill.errors import UnsafeEntryError

    try:
        real = tree.resolve(path)
    except UnsafeEntryError:
        return None
    node = tree.get(real)
    if node is None or node.kind != "0" or node.data is None:
        return None
    data: bytes = node.data
    return data


def _catalog(tree: Any, info: ImageInfo, config: dict[str, Any], exe_paths: set[str]) -> Catalog:
    release: dict[str, str] = {}
    for p in ("etc/os-release", "usr/lib/os-release"):
        data = _content(tree, p)
        if data:
            for line in data.decode("utf-8", "replace").splitlines():
                k, sep, v = line.partition("=")
                if sep:
                    release[k.strip()] = v.strip().strip("\"'")
            break
    cat = Catalog(info, release.get("ID", ""), release.get("VERSION_ID", ""), release.get("PRETTY_NAME", ""))
    paths = sorted(p for p, n in tree.nodes.items() if n.kind == "0" and n.data is not None)
    cat.components += _debs(tree, paths, cat)
    cat.components += _apks(tree, cat)
    cat.components += _pythons(tree, paths)
    cat.components += _npms(tree, paths)
    cat.components += _javas(tree, paths)
    owned = _owned(tree, paths)
    cat.components += _binary(tree, config, exe_paths, set(owned), cat.components)
    _owners(cat.components, owned)
    _link(cat.components)
    cat.components.sort(key=lambda c: (c.kind, c.name, c.version, c.path))
    return cat


def _distro_qualifier(cat: Catalog) -> str | None:
    if cat.os_id and cat.os_version:
        return f"{cat.os_id}-{cat.os_version}"
    return None


def deb_purl(
    name: str, version: str, arch: str, source: str, source_version: str, os_id: str, distro: str | None
) -> str:
    """Syft's form: ``pkg:deb/debian/NAME@VERSION?arch=A&distro=debian-13&upstream=SRC[@SRCVER]``."""
    qualifiers = {"arch": arch}
    if distro:
        qualifiers["distro"] = distro
    if source and (source != name or source_version != version):
        qualifiers["upstream"] = source if source_version == version else f"{source}@{source_version}"
    return PackageURL("deb", os_id or "debian", name, version, qualifiers).to_string()


def _source_field(fields: dict[str, str]) -> tuple[str, str]:
    """(source, source version) from ``Source: NAME [(VERSION)]``; the binary's own when absent."""
    raw = fields.get("Source", "").strip()
    version = fields.get("Version", "").strip()
    if not raw:
        return fields.get("Package", "").strip(), version
    m = re.fullmatch(r"(\S+)\s*(?:\((\S+)\))?", raw)
    if not m:
        return raw, version
    return m.group(1), m.group(2) or version


def _debs(tree: Any, paths: list[str], cat: Catalog) -> list[Component]:
    records: list[tuple[str, dict[str, str]]] = []
    for p in paths:
        if p.startswith("var/lib/dpkg/status.d/") and not p.endswith(".md5sums"):
            data = _content(tree, p) or b""
            records += [(p, fields) for fields in parse_file(data)]
        elif p == "var/lib/dpkg/status":
            for fields in parse_file(_content(tree, p) or b""):
                if fields.get("Status", "install ok installed").split()[-1:] == ["installed"]:
                    records.append((p, fields))
    out = []
    seen: set[tuple[str, str]] = set()
    distro = _distro_qualifier(cat)
    for path, fields in records:
        name = fields.get("Package", "").strip()
        version = fields.get("Version", "").strip()
        arch = fields.get("Architecture", "").strip()
        if not name or not version or (name, arch) in seen:
            continue
        seen.add((name, arch))
        source, source_version = _source_field(fields)
        copyright_data = _content(tree, f"usr/share/doc/{name}/copyright")
        c = Component(
            DEB,
            name,
            version,
            path,
            purl=deb_purl(name, version, arch, source, source_version, cat.os_id or "debian", distro),
            arch=arch,
            source=source,
            source_version=source_version,
            supplier=fields.get("Maintainer", "").strip(),
            license=declared(copyright_data),
            summary=fields.get("Description", "").partition("\n")[0].strip(),
            homepage=fields.get("Homepage", "").strip(),
        )
        for key in ("Pre-Depends", "Depends"):
            c.requires += _deb_requires(fields.get(key, ""))
        c.properties["provides"] = fields.get("Provides", "").strip()
        out.append(c)
    return out


def _deb_requires(value: str) -> list[str]:
    """Each clause of a relation field as 'a|b|c' (alternatives in order)."""
    if not value.strip():
        return []
    try:
        clauses = parse_relations(value.replace("\n", " "))
    except RelationSyntaxError:
        return []
    return ["|".join(r.name for r in clause) for clause in clauses]


def _apks(tree: Any, cat: Catalog) -> list[Component]:
    data = _content(tree, "lib/apk/db/installed")
    if not data:
        return []
    out = []
    distro = _distro_qualifier(cat)
    for block in re.split(r"\n\s*\n", data.decode("utf-8", "replace")):
        fields: dict[str, str] = {}
        depends: list[str] = []
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep and len(key) == 1:
                if key == "D":
                    depends += value.split()
                fields.setdefault(key, value.strip())
        name, version = fields.get("P", ""), fields.get("V", "")
        if not name or not version:
            continue
        qualifiers = {"arch": fields.get("A", "")}
        if distro:
            qualifiers["distro"] = distro
        if fields.get("o") and fields["o"] != name:
            qualifiers["upstream"] = fields["o"]
        c = Component(
            APK,
            name,
            version,
            "lib/apk/db/installed",
            purl=PackageURL("apk", cat.os_id or "alpine", name.lower(), version, qualifiers).to_string(),
            arch=fields.get("A", ""),
            source=fields.get("o", ""),
            supplier=fields.get("m", ""),
            license=spdx_or_noassertion(fields.get("L", "")),
            summary=fields.get("T", ""),
            homepage=fields.get("U", ""),
        )
        c.requires = [re.split(r"[<>=~]", d, maxsplit=1)[0] for d in depends if not d.startswith("!")]
        c.properties["provides"] = " ".join(
            re.split(r"[<>=~]", p, maxsplit=1)[0] for p in fields.get("p", "").split()
        )
        out.append(c)
    return out


def spdx_or_noassertion(text: str) -> Declared:
    """A license a package's metadata states: kept when it is a valid SPDX expression of
    listed identifiers, else NOASSERTION (free text is not interpreted)."""
    text = text.strip()
    if not text or len(text) > 1000:
        return Declared()
    expression = metadata_expression(text)
    return Declared(expression) if expression is not None else Declared()


def python_name(name: str) -> str:
    return _PY_NAME.sub("-", name).lower()


def _pythons(tree: Any, paths: list[str]) -> list[Component]:
    out = []
    for p in paths:
        if not (_DIST_INFO.search(p) or _EGG_INFO.search(p)):
            continue
        data = _content(tree, p)
        if not data:
            continue
        headers = HeaderParser().parsestr(data.decode("utf-8", "replace"))
        name, version = (headers.get("Name") or "").strip(), (headers.get("Version") or "").strip()
        if not name or not version:
            continue
        lic = spdx_or_noassertion(headers.get("License-Expression") or "")
        if lic.expression == NOASSERTION:
            lic = spdx_or_noassertion((headers.get("License") or "").partition("\n")[0])
        c = Component(
            PYTHON,
            name,
            version,
            p.rsplit("/", 1)[0] if p.endswith(("/METADATA", "/PKG-INFO")) else p,
            purl=PackageURL("pypi", None, python_name(name), version).to_string(),
            license=lic,
            summary=(headers.get("Summary") or "").strip(),
            supplier=(headers.get("Author-email") or headers.get("Author") or "").strip(),
            homepage=(headers.get("Home-page") or "").strip(),
        )
        for req in headers.get_all("Requires-Dist") or []:
            spec, _, marker = str(req).partition(";")
            if "extra" in marker:
                continue  # an optional dependency
            m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
            if m:
                c.requires.append(python_name(m.group(1)))
        out.append(c)
    return out


def _npm_license(doc: dict[str, Any]) -> Declared:
    value = doc.get("license")
    if isinstance(value, dict):
        value = value.get("type")
    return spdx_or_noassertion(value) if isinstance(value, str) else Declared()


def _npms(tree: Any, paths: list[str]) -> list[Component]:
    out = []
    # Directories that hold a node_modules: a project's own package.json is beside it.
    projects = {p.partition("node_modules/")[0] for p in paths if "node_modules/" in p}
    for p in paths:
        if not p.endswith("package.json"):
            continue
        nested = bool(_NODE_PACKAGE.search(p))
        if not nested and p[: -len("package.json")] not in projects:
            continue
        data = _content(tree, p)
        if not data:
            continue
        try:
            doc = json.loads(data)
        except ValueError:
            continue
        name, version = doc.get("name"), doc.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            continue
        namespace, _, base = name.rpartition("/")
        author = doc.get("author")
        if isinstance(author, dict):
            author = author.get("name")
        c = Component(
            NPM,
            name,
            version,
            p,
            purl=PackageURL("npm", namespace or None, base, version).to_string(),
            license=_npm_license(doc),
            summary=str(doc.get("description") or "")[:1000],
            homepage=str(doc.get("homepage") or "") if isinstance(doc.get("homepage"), str) else "",
            supplier=author if isinstance(author, str) else "",
        )
        for key in ("dependencies", "optionalDependencies"):
            deps = doc.get(key)
            if isinstance(deps, dict):
                c.requires += [d for d in deps if isinstance(d, str)]
        if not nested:
            c.properties["application"] = "true"
        out.append(c)
    return out


def _maven(pom: dict[str, str], path: str, sha256: str = "") -> Component | None:
    group, artifact, version = pom.get("groupId", ""), pom.get("artifactId", ""), pom.get("version", "")
    if not group or not artifact or not version:
        return None
    return Component(
        MAVEN,
        f"{group}:{artifact}",
        version,
        path,
        purl=PackageURL("maven", group, artifact, version).to_string(),
        sha256=sha256,
    )


def _javas(tree: Any, paths: list[str]) -> list[Component]:
    out = []
    for p in paths:
        if _JAR.search(p):
            data = _content(tree, p)
            try:
                meta = json.loads(data or b"{}")
            except ValueError:
                continue
            poms = meta.get("poms") or []
            stem = posixpath.basename(p).rsplit(".", 1)[0]
            own = [
                x
                for x in poms
                if stem.startswith(f"{x.get('artifactId', '')}-") or stem == x.get("artifactId")
            ]
            if len(poms) == 1 and not own:
                own = poms
            found = False
            for pom in poms:
                c = _maven(pom, f"{p}!/{pom.get('path', '')}", meta.get("sha256", "") if pom in own else "")
                if c is not None:
                    if pom not in own:
                        c.properties["shaded"] = "true"
                    out.append(c)
                    found = found or pom in own
            if not found:
                manifest = meta.get("manifest") or {}
                out.append(
                    Component(
                        JAR,
                        manifest.get("Implementation-Title")
                        or manifest.get("Bundle-SymbolicName")
                        or posixpath.basename(p),
                        manifest.get("Implementation-Version") or manifest.get("Bundle-Version") or "",
                        p,
                        sha256=meta.get("sha256", ""),
                    )
                )
        elif _POM.search(p):
            c = _maven(_properties(_content(tree, p) or b""), p)
            if c is not None:
                out.append(c)
    return out


def _owned(tree: Any, paths: list[str]) -> dict[str, str]:
    """Every path a package database lists (md5sums), as written there -> the package."""
    owned: dict[str, str] = {}
    for p in paths:
        if _MD5SUMS.match(p):
            pkg = posixpath.basename(p)[: -len(".md5sums")].split(":")[0]
            for line in (_content(tree, p) or b"").decode("utf-8", "replace").splitlines():
                if len(line) > 34:
                    owned.setdefault(line[34:].strip().lstrip("/"), pkg)
    return owned


def _owners(components: list[Component], owned: dict[str, str]) -> None:
    """Python, npm and Java packages a Debian package ships (Debian's python3-*, the
    modules nodejs bundles, a packaged jar) name it as their owner."""
    debs = {c.name: c for c in components if c.kind == DEB}
    for c in components:
        if c.kind in (DEB, APK, BINARY):
            continue
        record = c.path.partition("!/")[0]
        names = [record, f"{record}/METADATA", f"{record}/PKG-INFO"] if c.kind == PYTHON else [record]
        owner = next((debs[owned[n]] for n in names if owned.get(n) in debs), None)
        if owner is not None:
            c.owner = owner.id
            c.properties["distill:debian:package"] = owner.name


def _binary(
    tree: Any, config: dict[str, Any], exe_paths: set[str], owned: set[str], found: list[Component]
) -> list[Component]:
    """The entrypoint's executable when no package owns it: the application itself."""
    from distill.errors import UnsafeEntryError

    for candidate in sorted(exe_paths):
        try:
            real = tree.resolve(candidate)
        except UnsafeEntryError:
            continue
        node = tree.get(real)
        if node is None or node.kind != "0":
            continue
        if (
            real in owned
            or candidate in owned
            or any(real.startswith(c.path + "/") for c in found if c.kind == PYTHON)
        ):
            return []
        try:
            sha = json.loads(node.data or b"{}").get("sha256", "")
        except ValueError:
            sha = ""
        return [Component(BINARY, posixpath.basename(real), "", real, sha256=sha)]
    return []


def _link(components: list[Component]) -> None:
    """Each component's dependencies as ids of the components that satisfy them: Debian
    relations by name or Provides (the first alternative installed), Python requirements by
    normalised name, npm dependencies by Node's lookup (the nearest node_modules up)."""
    debs: dict[str, Component] = {}
    provided: dict[str, Component] = {}
    for c in components:
        if c.kind == DEB:
            debs.setdefault(c.name, c)
            for prov in c.properties.get("provides", "").split(","):
                pname = prov.strip().split(" ")[0].split(":")[0]
                if pname:
                    provided.setdefault(pname, c)
    apks = {c.name: c for c in components if c.kind == APK}
    for c in components:  # what an apk package provides (so:libc.musl-x86_64.so.1, cmd:sh)
        if c.kind == APK:
            for name in c.properties.get("provides", "").split():
                apks.setdefault(name, c)
    pythons = {python_name(c.name): c for c in components if c.kind == PYTHON}
    npm_at = {c.path.rsplit("/package.json", 1)[0]: c for c in components if c.kind == NPM}
    for c in components:
        targets: list[Component] = []
        if c.kind == DEB:
            for clause in c.requires:
                for alt in clause.split("|"):
                    hit = debs.get(alt) or provided.get(alt)
                    if hit is not None:
                        targets.append(hit)
                        break
        elif c.kind == APK:
            targets = [apks[d] for d in c.requires if d in apks]
        elif c.kind == PYTHON:
            targets = [pythons[d] for d in c.requires if d in pythons]
        elif c.kind == NPM:
            here = c.path.rsplit("/package.json", 1)[0]
            for dep in c.requires:
                d = here
                while True:
                    hit = npm_at.get(f"{d}/node_modules/{dep}" if d else f"node_modules/{dep}")
                    if hit is not None or not d:
                        break
                    d = (
                        d.rsplit("/node_modules/", 1)[0]
                        if "/node_modules/" in d
                        else (d.rsplit("/", 1)[0] if "/" in d else "")
                    )
                if hit is not None:
                    targets.append(hit)
        c.depends = sorted({t.id for t in targets if t is not c})
        c.properties.pop("provides", None)


# -- the lock ------------------------------------------------------------------------


def with_lock(cat: Catalog, lock: Lock, arch: str) -> Catalog:
    """``cat`` with the lock's knowledge of its Debian packages: the .deb's SHA256,
    archive path and URL (``downloadLocation``), and the resolution's edges. A package
    the lock does not pin exactly (name, version, architecture) is left as it was read."""
    pinned: dict[tuple[str, str, str], LockedPackage] = {}
    for p in [*lock.packages.get(arch, []), *lock.debug.get(arch, [])]:
        pinned[(p.name, p.version, p.architecture)] = p
    urls = {s.suite: s.url.rstrip("/") for s in lock.suites}
    out = []
    for c in cat.components:
        found = pinned.get((c.name, c.version, c.arch)) if c.kind == DEB else None
        if found is None:
            out.append(c)
            continue
        p = found
        url = urls.get(p.suite)
        new = replace(
            c,
            sha256=p.sha256,
            filename=p.filename,
            download=f"{url}/{p.filename}" if url else "",
            properties={**c.properties, "distill:layer": p.layer, "distill:suite": p.suite},
            depends=list(c.depends),
        )
        if p.required_by:
            new.properties["distill:required_by"] = p.required_by
        out.append(new)
    # The resolution's edge (parent -> package) is a dependency the image's fields show too;
    # it is added where the fields missed it (a relation satisfied through a pruned path).
    ids = {c.name: c for c in out if c.kind == DEB}
    for c in out:
        parent = ids.get(c.properties.get("distill:required_by", ""))
        if parent is not None and c.id not in parent.depends and parent is not c:
            parent.depends = sorted({*parent.depends, c.id})
    return replace(cat, components=out)


__all__ = [
    "APK",
    "BINARY",
    "DEB",
    "JAR",
    "MAVEN",
    "NPM",
    "PYTHON",
    "Catalog",
    "Component",
    "ImageInfo",
    "MetadataKeeper",
    "created_of",
    "deb_purl",
    "from_image",
    "spdx_or_noassertion",
    "with_lock",
]
