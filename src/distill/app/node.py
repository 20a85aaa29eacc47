"""Node.js applications: production dependencies installed from package-lock.json.

What ``npm ci --omit=dev`` does for a container, done natively: every package the
lockfile (version 2 or 3) lists and that is not dev-only is downloaded from the
address the lockfile records (an http(s) URL, or a ``file:`` tarball inside the
project; or the registry npm is configured with), checked against its ``integrity``
hash (again on every read from the cache), and unpacked as a bounded stream into
``node_modules`` at the place the lockfile gives. Install scripts never run.
Packages for another OS, CPU or C library (``os``/``cpu``/``libc``; the image is
glibc) are skipped, as npm does; an ``engines.node`` range the image's node misses
is a warning. Native addons (``*.node``) must be prebuilt for the image's
architecture and its Node module ABI (Node-API addons fit every version).

The image's node (:class:`Runtime`) is Debian's (``libnodeNNN``), a release archive's
(the lock's version, the archive's ``node_version.h``) or, on an image distill reads,
whatever binary it holds at Google's, upstream's or Debian's path (what the binary says
of itself). No table of versions and ABIs is kept: what the source does not state stays
unknown.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from distill.app import cachecheck
from distill.archive.cache import atomic_write
from distill.assemble.expand import FILE
from distill.assemble.tree import Node, Tree
from distill.errors import BuildError, SpecError, UnsafeEntryError
from distill.limits import MAX_JSON, MAX_TEXT, load_json, read_json, read_regular, read_text
from distill.progress import Reporter

NPM_CPU = {"amd64": "x64", "arm64": "arm64", "armhf": "arm", "i386": "ia32", "ppc64el": "ppc64", "s390x": "s390x", "riscv64": "riscv64"}  # fmt: skip
FORMAT = "distill-node-modules-2"  # 2: <key>/node_modules beside a manifest
MAX_TARBALL = 512 << 20  # a download or file: tarball, compressed
# A tarball may expand to 100x its size or 512 MiB, whichever is more (as the audit's
# layers); its entries and any single PAX/long-name header are capped too.
TARBALL_RATIO = 100
TARBALL_FLOOR = 512 << 20
MAX_TARBALL_ENTRIES = 200_000
MAX_TAR_HEADER = 1 << 20
IMAGE_LIBC = "glibc"  # every distill image's C library (npm's 'libc' field)


@dataclass(frozen=True)
class Runtime:
    """The image's Node.js, as far as the image tells: the binary an app's entrypoint runs,
    its version (for engines.node) and its Node module ABI (NODE_MODULE_VERSION, for
    addons); ``unknown`` says why the ABI is not known when it is None."""

    path: str  # /usr/bin/node (Debian's), /nodejs/bin/node (the release archives, Google's)
    version: str  # "22.12.0"; "" when the image does not say
    abi: int | None
    unknown: str = ""


NODE_PATHS = ("nodejs/bin/node", "usr/local/bin/node", "usr/bin/node")  # Google's, upstream's, Debian's
MAX_HEADER = 256 << 10  # include/node/node_version.h (about 4 KiB)
MAX_BINARY = 1 << 30  # a node binary read for its build configuration (about 120 MiB)
# node_version.h: the numeric definition (the other one is NODE_EMBEDDER_MODULE_VERSION's).
_HEADER_ABI = re.compile(rb"^[ \t]*#[ \t]*define[ \t]+NODE_MODULE_VERSION[ \t]+([0-9]{1,5})[ \t]*$", re.M)
# In a node binary: process.config (configure's config.gypi, node_module_version from
# node_version.h) and process.release.headersUrl (a release build's version).
_BINARY_ABI = re.compile(rb'"node_module_version": ?([0-9]{1,5})[,}\s]')
_BINARY_VERSION = re.compile(rb"/v([0-9]{1,4}\.[0-9]{1,6}\.[0-9]{1,6})/node-v\1-headers\.tar\.gz")
_OVERLAP = 512  # bytes a match may straddle between two chunks


def debian_runtime(packages: list[tuple[str, str]]) -> Runtime | None:
    """Debian's Node.js: the ABI from the libnodeNNN package's name, the version from
    nodejs's; None when the image has no libnode."""
    abi = None
    version = ""
    for name, pkg_version in packages:
        m = re.fullmatch(r"libnode(\d+)", name)
        if m:
            abi = int(m.group(1))
        if name == "nodejs":
            version = pkg_version.split(":")[-1].split("+")[0].split("~")[0]
    return Runtime("/usr/bin/node", version, abi) if abi is not None else None


def runtime(packages: list[tuple[str, str]]) -> Runtime:
    """Debian's Node.js in a distill image, or the error that says the image has none."""
    found = debian_runtime(packages)
    if found is None:
        raise SpecError(
            "app kind node needs Node.js in the image",
            hint="use from: nodejs, nodejs22, nodejs24 or nodejs26 (or a spec extending one)",
        )
    return found


def header_abi(header: bytes) -> int | None:
    """NODE_MODULE_VERSION as node_version.h defines it (None if it does not)."""
    found = {int(m.group(1)) for m in _HEADER_ABI.finditer(header)}
    return found.pop() if len(found) == 1 else None


def release_runtime(version: str, file: str, header: bytes | None) -> Runtime:
    """Node.js from a release archive (under /nodejs): the version the lock pins, the ABI
    from the archive's own include/node/node_version.h."""
    abi = header_abi(header) if header is not None else None
    why = "" if abi is not None else f"{file} has no include/node/node_version.h defining NODE_MODULE_VERSION"
    return Runtime("/nodejs/bin/node", version, abi, why)


class BinaryScan:
    """What the node binaries in an image's layers say of themselves, read as the layers
    stream by (a :class:`distill.oci.read.Keeper`): the Node module ABI from the build
    configuration compiled into them (``process.config``), the version from a release
    build's ``process.release.headersUrl``. Only those two facts are kept, as the tree
    node's data (so a later layer that replaces or removes the file drops them too)."""

    def wants(self, path: str, size: int) -> bool:
        return (path == "bin/node" or path.endswith("/bin/node")) and size <= MAX_BINARY

    def keep(self, path: str, f: IO[bytes], size: int) -> bytes:
        abis: set[int] = set()
        version = ""
        tail = b""
        while chunk := f.read(1 << 20):
            window = tail + chunk
            abis.update(int(m.group(1)) for m in _BINARY_ABI.finditer(window))
            if not version:
                m = _BINARY_VERSION.search(window)
                version = m.group(1).decode() if m else ""
            tail = window[-_OVERLAP:]
        abi = abis.pop() if len(abis) == 1 else None
        return json.dumps({"abi": abi, "version": version}).encode()

    @staticmethod
    def facts(node: Node) -> tuple[int | None, str] | None:
        """(ABI, version) that :meth:`keep` found in the file ``node`` (None: not read)."""
        if node.data is None:
            return None
        try:
            seen = json.loads(node.data)
            abi, version = seen["abi"], seen["version"]
        except (ValueError, KeyError, TypeError):
            return None
        if (abi is not None and not isinstance(abi, int)) or not isinstance(version, str):
            return None
        return abi, version


def image_runtime(tree: Tree, packages: list[tuple[str, str]], scan: BinaryScan, image: str) -> Runtime:
    """The Node.js of an image distill reads (``from:`` an image): Debian's (its packages),
    else the first of /nodejs/bin/node, /usr/local/bin/node and /usr/bin/node that is a
    file, with what the binary says of itself."""
    found = debian_runtime(packages)
    if found is not None:
        return found
    for candidate in NODE_PATHS:
        try:
            real = tree.resolve(candidate)
        except UnsafeEntryError:
            continue
        binary = tree.get(real)
        if binary is None or binary.kind != FILE:
            continue
        abi, version = scan.facts(binary) or (None, "")
        why = "" if abi is not None else f"no Node module ABI (node_module_version) found in its /{real}"
        return Runtime(f"/{candidate}", version, abi, why)
    raise SpecError(
        f"app kind node needs Node.js in the image: {image} has no Debian nodejs (libnode) and no "
        f"node at {', '.join('/' + p for p in NODE_PATHS)}",
        hint="build on an image with Node.js (distill's nodejs, nodejs22, nodejs24, nodejs26, or Google's)",
    )


def _allowed(values: list[str] | None, mine: str) -> bool:
    """npm's os/cpu fields: a list of allowed values, or of '!excluded' ones."""
    if not values:
        return True
    if any(v == mine for v in values):
        return True
    negated = [v for v in values if v.startswith("!")]
    return bool(negated) and len(negated) == len(values) and f"!{mine}" not in values


def _registry(project: Path) -> str | None:
    """The registry npm would use: npm_config_registry, else project or user .npmrc."""
    env = os.environ.get("npm_config_registry") or os.environ.get("NPM_CONFIG_REGISTRY")  # noqa: SIM112 (npm reads both)
    if env:
        return env.rstrip("/")
    for rc in (project / ".npmrc", Path.home() / ".npmrc"):
        if not os.path.lexists(rc):
            continue
        for line in read_text(rc, MAX_TEXT, error=SpecError, what=".npmrc").splitlines():
            m = re.match(r"\s*registry\s*=\s*(\S+)", line)
            if m:
                return m.group(1).rstrip("/")
    # npm's own setting (its built-in default included), when npm is installed.
    npm = shutil.which("npm")
    if npm:
        try:
            proc = subprocess.run(
                [npm, "config", "get", "registry"],
                cwd=project,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=60,
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        value = proc.stdout.strip()
        if proc.returncode == 0 and value.startswith(("http://", "https://")):
            return value.rstrip("/")
    return None


def _check_integrity(data: bytes, integrity: str, what: str) -> None:
    best = None
    for item in integrity.split():
        algo, _, b64 = item.partition("-")
        rank = (
            ("sha1", "sha256", "sha384", "sha512").index(algo)
            if algo in ("sha1", "sha256", "sha384", "sha512")
            else -1
        )
        if rank >= 0 and (best is None or rank > best[0]):
            best = (rank, algo, b64.split("?")[0])
    if best is None:
        raise BuildError(f"{what}: unsupported integrity {integrity!r} in package-lock.json")
    actual = base64.b64encode(hashlib.new(best[1], data).digest()).decode()
    if actual != best[2]:
        raise BuildError(
            f"{what}: the download does not match its integrity hash in package-lock.json ({best[1]})",
            hint="the registry served different bytes; do not build from it until that is explained",
        )


class _TooLarge(Exception):
    pass


class _Capped:
    """A decompressed stream that refuses to give more than ``limit`` bytes."""

    def __init__(self, raw: io.BufferedIOBase | gzip.GzipFile, limit: int) -> None:
        self.raw, self.limit, self.total = raw, limit, 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size if size >= 0 else self.limit + 1 - self.total)
        self.total += len(data)
        if self.total > self.limit:
            raise _TooLarge(f"expands to more than {self.limit >> 20} MiB")
        return data


class _TarInfo(tarfile.TarInfo):
    """tarfile reads a PAX or GNU long-name header whole into memory: cap it first."""

    def _proc_pax(self, tarfile: tarfile.TarFile) -> tarfile.TarInfo:
        if self.size > MAX_TAR_HEADER:
            raise _TooLarge(f"has a {self.size}-byte PAX header (limit {MAX_TAR_HEADER})")
        return super()._proc_pax(tarfile)  # type: ignore[misc,no-any-return]

    def _proc_gnulong(self, tarfile: tarfile.TarFile) -> tarfile.TarInfo:
        if self.size > MAX_TAR_HEADER:
            raise _TooLarge(f"has a {self.size}-byte long-name header (limit {MAX_TAR_HEADER})")
        return super()._proc_gnulong(tarfile)  # type: ignore[misc,no-any-return]


def expansion_limit(compressed: int) -> int:
    return max(TARBALL_FLOOR, TARBALL_RATIO * compressed)


def _unpack(
    data: bytes, into: Path, what: str, *, limit: int | None = None, max_entries: int = MAX_TARBALL_ENTRIES
) -> None:
    """A package tarball's files (first path component stripped) into ``into``, streamed
    with the expansion, entry and header caps."""
    raw: io.BufferedIOBase | gzip.GzipFile = (
        gzip.GzipFile(fileobj=io.BytesIO(data)) if data[:2] == b"\x1f\x8b" else io.BytesIO(data)
    )
    stream = _Capped(raw, limit if limit is not None else expansion_limit(len(data)))
    entries = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|", tarinfo=_TarInfo) as tf:  # type: ignore[call-overload]
            while (member := tf.next()) is not None:
                tf.members.clear()  # a stream needs no index of what was read: memory stays flat
                entries += 1
                if entries > max_entries:
                    raise _TooLarge(f"has more than {max_entries} entries")
                parts = member.name.replace("\\", "/").split("/")[1:]
                if not parts or parts == [""]:
                    continue
                if member.name.startswith("/") or ".." in parts:
                    raise BuildError(f"{what}: tarball entry {member.name!r} escapes the package directory")
                target = into.joinpath(*[p for p in parts if p and p != "."])
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isfile():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    src = tf.extractfile(member)
                    assert src is not None
                    with target.open("wb") as out:
                        shutil.copyfileobj(src, out)
                    target.chmod(0o755 if member.mode & 0o111 else 0o644)
                # Links, devices and fifos are left out, as npm's tarball reader does.
    except _TooLarge as exc:
        raise BuildError(f"{what}: its tarball {exc}; refusing it") from None
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BuildError(f"{what}: cannot unpack its tarball ({exc})") from None


def _local_tarball(url: str, project: Path, what: str) -> bytes:
    """A ``file:`` tarball, which must lie inside the project (a lockfile from elsewhere
    must not make distill read, and put into an image, any file on the host)."""
    root = project.resolve()
    path = (root / url[len("file:") :].removeprefix("//")).resolve()
    if not path.is_relative_to(root):
        raise SpecError(
            f"{what}: package-lock.json resolves it to {url[:200]!r}, outside the project {project}",
            hint="vendor the tarball inside the project, or install it from a registry",
        )
    return read_regular(path, MAX_TARBALL, error=BuildError, what=what)


def _download(url: str, client: httpx.Client, project: Path, what: str) -> bytes:
    if url.startswith("file:"):
        return _local_tarball(url, project, what)
    if not url.startswith(("https://", "http://")):
        raise SpecError(
            f"{what}: package-lock.json resolves it to a {url.split(':', 1)[0][:20]!r} address; only registry "
            "(http/https) and file: tarballs are installed",
            hint="git and other sources would need npm to build them: publish or pack the package",
        )
    try:
        with client.stream("GET", url) as r:
            if r.status_code != 200:
                raise BuildError(f"{what}: {url} answered HTTP {r.status_code}")
            chunks, size = [], 0
            for chunk in r.iter_bytes():
                size += len(chunk)
                if size > MAX_TARBALL:
                    raise BuildError(f"{what}: {url} is larger than {MAX_TARBALL >> 20} MiB")
                chunks.append(chunk)
            return b"".join(chunks)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL: not an error httpx.HTTPError covers
        raise BuildError(f"{what}: cannot download {url[:200]!r} ({exc.__class__.__name__}: {exc})") from None


def package_json(project: Path) -> dict[str, object]:
    """The project's package.json ({} when there is none); bounded, regular files only."""
    path = project / "package.json"
    if not os.path.lexists(path):
        return {}
    doc = read_json(path, error=SpecError)
    if not isinstance(doc, dict):
        raise SpecError(f"{path}: not a JSON object")
    return doc


def read_lock(project: Path) -> tuple[dict[str, dict[str, object]], bytes]:
    """The lockfile's package entries (by node_modules path) and its bytes."""
    path = project / "package-lock.json"
    if not os.path.lexists(path):
        if package_json(project).get("dependencies"):
            raise SpecError(
                f"{project}: package.json has dependencies but there is no package-lock.json",
                hint="run 'npm install --package-lock-only' and commit the lockfile",
            )
        return {}, b""
    data = read_regular(path, MAX_JSON, error=SpecError)
    doc = load_json(data, label=str(path), error=SpecError)
    packages = doc.get("packages") if isinstance(doc, dict) else None
    if (
        not isinstance(doc, dict)
        or doc.get("lockfileVersion") not in (2, 3)
        or not isinstance(packages, dict)
    ):
        version = doc.get("lockfileVersion") if isinstance(doc, dict) else "?"
        raise SpecError(
            f"{path}: lockfileVersion {str(version)[:20]} is not supported",
            hint="regenerate it with npm 7 or newer (lockfileVersion 2 or 3)",
        )
    return {k: v for k, v in packages.items() if k and isinstance(v, dict)}, data


def _list(meta: dict[str, object], field: str) -> list[str] | None:
    value = meta.get(field)
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise SpecError(f"package-lock.json: the {field!r} field of a package is not a list of strings")


def _engine_warnings(wanted: dict[str, dict[str, object]], node_version: str, reporter: Reporter) -> None:
    """One line per package whose engines.node excludes the image's node (as npm's
    EBADENGINE warning); a range that cannot be read is not reported."""
    if not node_version:
        return
    for path in sorted(wanted):
        engines = wanted[path].get("engines")
        wanted_node = engines.get("node") if isinstance(engines, dict) else None
        if isinstance(wanted_node, str) and satisfies(node_version, wanted_node) is False:
            name = path.rsplit("node_modules/", 1)[1]
            reporter.note(
                f"warning: {name}@{str(wanted[path].get('version', '?'))[:50]} wants node "
                f"{wanted_node[:100]!r}, the image has node {node_version}"
            )


def _tarball(
    url: str,
    integrity: str,
    cache_dir: Path,
    client: httpx.Client,
    project: Path,
    what: str,
    reporter: Reporter,
) -> bytes:
    """The tarball's bytes, checked against the lockfile's integrity, from the cache when
    there (re-checked on every read: a damaged entry is replaced with one warning)."""
    cached = cache_dir / (hashlib.sha256(integrity.encode()).hexdigest() + ".tgz") if integrity else None
    if cached is not None and os.path.lexists(cached):
        try:
            data = read_regular(cached, MAX_TARBALL, error=BuildError, what=what)
            _check_integrity(data, integrity, what)
            return data
        except BuildError:
            cached.unlink(missing_ok=True)
            reporter.note(
                f"warning: the cached tarball of {what} ({cached}) is damaged; downloading it again"
            )
    data = _download(url, client, project, what)
    if integrity:
        _check_integrity(data, integrity, what)
        assert cached is not None
        # The integrity beside it (its name is only a hash of it), for 'distill cache verify'.
        atomic_write(cached.with_suffix(".integrity"), integrity.encode())
        atomic_write(cached, data)
    elif not url.startswith("file:"):
        raise BuildError(f"{what}: package-lock.json gives no integrity hash for it")
    return data


def verify_tarball_cache(directory: Path) -> list[Path]:
    """Check every cached tarball against the integrity recorded beside it (whose hash
    is its name); remove and return the bad ones (and those with no record)."""
    bad: list[Path] = []
    if not directory.is_dir():
        return bad
    for tarball in sorted(directory.glob("*.tgz")):
        record = tarball.with_suffix(".integrity")
        try:
            integrity = read_text(record, 64 << 10, error=BuildError)
            if hashlib.sha256(integrity.encode()).hexdigest() != tarball.stem:
                raise BuildError("the record is not this tarball's")
            _check_integrity(read_regular(tarball, MAX_TARBALL, error=BuildError), integrity, tarball.name)
        except BuildError:
            tarball.unlink(missing_ok=True)
            record.unlink(missing_ok=True)
            bad.append(tarball)
    return bad


def _wanted(packages: dict[str, dict[str, object]], arch: str) -> dict[str, dict[str, object]]:
    """The lock's packages that go into the image: production ones for linux/``arch``."""
    return {
        path: meta
        for path, meta in packages.items()
        if path.startswith("node_modules/") or "/node_modules/" in path
        if not meta.get("dev")
        and not meta.get("inBundle")
        and _allowed(_list(meta, "os"), "linux")
        and _allowed(_list(meta, "cpu"), NPM_CPU.get(arch, arch))
        and _allowed(_list(meta, "libc"), IMAGE_LIBC)
    }


def resolved(project: Path, arch: str, cache_root: Path) -> list[tuple[str, str, str, dict[str, str]]]:
    """The tarballs the image's node_modules came from: (name, version, URL, digests), the
    digests from the lock's integrity (sha512, in hex) and the cached tarball's sha256."""
    packages, _ = read_lock(project)
    out = []
    for path, meta in _wanted(packages, arch).items():
        integrity = str(meta.get("integrity") or "")
        digest: dict[str, str] = {}
        for item in integrity.split():
            algo, _, b64 = item.partition("-")
            try:
                digest[algo] = base64.b64decode(b64, validate=True).hex()
            except ValueError:
                continue
        cached = cache_root / "npm" / (hashlib.sha256(integrity.encode()).hexdigest() + ".tgz")
        if integrity and cached.is_file():
            data = read_regular(cached, MAX_TARBALL, error=BuildError, what="cached tarball")
            _check_integrity(data, integrity, path)
            digest["sha256"] = hashlib.sha256(data).hexdigest()
        name = path.rsplit("node_modules/", 1)[1]
        out.append((name, str(meta.get("version", "")), str(meta.get("resolved") or ""), digest))
    return sorted(out)


def install(
    project: Path, arch: str, cache_root: Path, offline: bool, reporter: Reporter, node_version: str = ""
) -> tuple[Path | None, str, int]:
    """node_modules for the image (cached by the lockfile's content): (directory, cache
    key, packages installed)."""
    packages, lock_bytes = read_lock(project)
    wanted = _wanted(packages, arch)
    for path in wanted:
        parts = path.split("/")
        if path.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise SpecError(f"package-lock.json: {path[:200]!r} is not a place inside node_modules")
    if not wanted:
        return None, "", 0
    _engine_warnings(wanted, node_version, reporter)
    key = hashlib.sha256(f"{FORMAT}\0{arch}\0".encode() + lock_bytes).hexdigest()
    target = cache_root / "apps" / "node" / key
    if cachecheck.usable(target, "node_modules of package-lock.json", offline, reporter):
        return target / "node_modules", key, len(wanted)
    if offline:
        raise BuildError("the node_modules of package-lock.json are not in the cache (offline)")
    registry = _registry(project)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    entry = tmp / "entry"
    task = reporter.task(f"node_modules: {len(wanted)} packages for {arch}", len(wanted))
    try:
        with httpx.Client(timeout=60, follow_redirects=True) as client:
            for path in sorted(wanted, key=lambda p: p.count("/node_modules/")):
                meta = wanted[path]
                name = path.rsplit("node_modules/", 1)[1]
                what = f"{name}@{str(meta.get('version', '?'))[:50]}"
                if meta.get("link"):
                    raise SpecError(f"{what}: linked packages (workspaces) are not supported")
                url = str(meta.get("resolved") or "")
                if not url:
                    if not registry:
                        raise SpecError(
                            f"{what}: package-lock.json records no download address and no npm registry is configured",
                            hint="set npm_config_registry or 'registry=' in .npmrc",
                        )
                    url = f"{registry}/{name}/-/{name.rsplit('/', 1)[-1]}-{meta.get('version')}.tgz"
                data = _tarball(
                    url, str(meta.get("integrity") or ""), cache_root / "npm", client, project, what, reporter
                )
                dest = entry / path
                _unpack(data, dest, what)
                if (dest / "binding.gyp").is_file() and not any(dest.rglob("*.node")):
                    raise SpecError(
                        f"{what} is a native addon that needs compiling (binding.gyp) and ships no prebuilt .node",
                        hint="distill runs no install scripts: use a version with prebuilt binaries, or build "
                        "them for the image and vendor the package",
                    )
                reporter.advance(task, 1)
        (entry / "node_modules").mkdir(parents=True, exist_ok=True)
        cachecheck.write_manifest(entry)
        reporter.done(task, f"installed {len(wanted)} node packages for {arch}")
        try:
            os.rename(entry, target)
        except OSError:
            if not target.is_dir():  # another build finished first: use its copy
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target / "node_modules", key, len(wanted)


# -- engines.node: npm's semver ranges, the common forms ------------------------------

_PARTIAL = re.compile(r"^[v=]*\s*(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?$")


def _partial(text: str) -> list[int | None] | None:
    """[major, minor, patch] with None for a wildcard or a missing part; None when the
    text is not a plain version (prereleases and build tags are not handled)."""
    m = _PARTIAL.match(text)
    if not m:
        return None
    parts: list[int | None] = [None if g is None or g in "xX*" else int(g) for g in m.groups()]
    for i in range(1, 3):  # nothing precise after a wildcard
        if parts[i - 1] is None:
            parts[i] = None
    return parts


def _fill(parts: list[int | None]) -> tuple[int, int, int]:
    return (parts[0] or 0, parts[1] or 0, parts[2] or 0)


def _bump(parts: list[int | None]) -> tuple[int, int, int]:
    """The first version above every version the partial names (1.2 -> 1.3.0)."""
    if parts[1] is None:
        return ((parts[0] or 0) + 1, 0, 0)
    if parts[2] is None:
        return (parts[0] or 0, parts[1] + 1, 0)
    return (parts[0] or 0, parts[1], parts[2] + 1)


Bound = tuple[str, tuple[int, int, int]]


def _comparator(text: str) -> list[Bound] | None:
    """One comparator as (op, version) bounds; None when it cannot be read."""
    m = re.match(r"^(<=|>=|<|>|=|\^|~>?|)\s*(.*)$", text)
    if not m:
        return None
    op, rest = m.group(1), m.group(2)
    parts = _partial(rest)
    if parts is None:
        return None
    if parts[0] is None:
        return [] if op in ("", "=", ">=", "<=", "^", "~", "~>") else None  # '*': anything
    low = _fill(parts)
    if op in ("", "="):
        return [(">=", low), ("<", _bump(parts))] if None in parts else [(">=", low), ("<=", low)]
    if op == ">=":
        return [(">=", low)]
    if op == "<":
        return [("<", low)]
    if op == ">":
        return [(">=", _bump(parts))] if None in parts else [(">", low)]
    if op == "<=":
        return [("<", _bump(parts))] if None in parts else [("<=", low)]
    if op in ("~", "~>"):
        return [(">=", low), ("<", _bump([*parts[:2], None] if parts[1] is not None else parts))]
    # ^: the leftmost non-zero part stays fixed.
    major, minor, patch = low[0], parts[1], parts[2]
    if major != 0 or minor is None:
        high = (major + 1, 0, 0)
    elif minor != 0 or patch is None:
        high = (0, minor + 1, 0)
    else:
        high = (0, 0, patch + 1)
    return [(">=", low), ("<", high)]


def satisfies(version: str, spec: str) -> bool | None:
    """Whether ``version`` (x.y.z) is in the npm range ``spec``; None when either cannot be
    read, so that an unknown form is never reported as a mismatch."""
    have = _partial(version.strip())
    if have is None or None in have:
        return None
    v = _fill(have)
    ops = {">=": v.__ge__, ">": v.__gt__, "<": v.__lt__, "<=": v.__le__}
    answer = False
    for alternative in spec.split("||"):
        text = re.sub(r"(<=|>=|<|>|=|\^|~>?)\s+", r"\1", alternative.strip())
        hyphen = re.fullmatch(r"(\S+)\s+-\s+(\S+)", text)
        bounds: list[Bound] = []
        if hyphen:
            a, b = _partial(hyphen.group(1)), _partial(hyphen.group(2))
            if a is None or b is None:
                return None
            bounds.append((">=", _fill(a)))
            if b[0] is not None:
                bounds.append(("<", _bump(b)) if None in b else ("<=", _fill(b)))
        else:
            for token in text.split() or ["*"]:
                found = _comparator(token)
                if found is None:
                    return None
                bounds += found
        if all(ops[op](bound) for op, bound in bounds):
            answer = True
    return answer
