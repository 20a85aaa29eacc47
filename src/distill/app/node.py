"""Node.js applications: production dependencies installed from package-lock.json.

What ``npm ci --omit=dev`` does for a container, done natively: every package the
lockfile (version 2 or 3) lists and that is not dev-only is downloaded from the
address the lockfile records (or the registry npm is configured with), checked
against its ``integrity`` hash, and unpacked into ``node_modules`` at the place the
lockfile gives. Install scripts never run. Optional packages for another OS or CPU
are skipped, as npm does. Native addons (``*.node``) must be prebuilt for the
image's architecture and its Node module ABI (Node-API addons fit every version).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

import httpx

from distill.archive.cache import atomic_write
from distill.errors import BuildError, SpecError
from distill.progress import Reporter

NPM_CPU = {"amd64": "x64", "arm64": "arm64", "armhf": "arm", "i386": "ia32", "ppc64el": "ppc64", "s390x": "s390x", "riscv64": "riscv64"}  # fmt: skip
FORMAT = "distill-node-modules-1"
MAX_TARBALL = 512 << 20


def runtime(packages: list[tuple[str, str]]) -> tuple[int, str]:
    """The image's Node module ABI (NODE_MODULE_VERSION, from libnodeNNN) and node's version."""
    abi = None
    version = ""
    for name, pkg_version in packages:
        m = re.fullmatch(r"libnode(\d+)", name)
        if m:
            abi = int(m.group(1))
        if name == "nodejs":
            version = pkg_version.split(":")[-1].split("+")[0].split("~")[0]
    if abi is None:
        raise SpecError(
            "app kind node needs Node.js in the image", hint="use from: nodejs (or a spec extending it)"
        )
    return abi, version


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
        try:
            for line in rc.read_text().splitlines():
                m = re.match(r"\s*registry\s*=\s*(\S+)", line)
                if m:
                    return m.group(1).rstrip("/")
        except OSError:
            continue
    # npm's own setting (its built-in default included), when npm is installed.
    npm = shutil.which("npm")
    if npm:
        try:
            proc = subprocess.run(
                [npm, "config", "get", "registry"], cwd=project, capture_output=True, text=True, timeout=60
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


def _unpack(data: bytes, into: Path, what: str) -> None:
    """A package tarball's files (first path component stripped) into ``into``."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tf:
            for member in tf:
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
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BuildError(f"{what}: cannot unpack its tarball ({exc})") from None


def _download(url: str, client: httpx.Client, project: Path, what: str) -> bytes:
    if url.startswith("file:"):
        path = (project / url[len("file:") :]).resolve()
        try:
            return path.read_bytes()
        except OSError as exc:
            raise BuildError(f"{what}: cannot read {path}: {exc.strerror}") from None
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
    except httpx.HTTPError as exc:
        raise BuildError(f"{what}: cannot download {url} ({exc.__class__.__name__}: {exc})") from None


def read_lock(project: Path) -> dict[str, dict[str, object]]:
    path = project / "package-lock.json"
    if not path.is_file():
        if (project / "package.json").is_file() and json.loads((project / "package.json").read_text()).get(
            "dependencies"
        ):
            raise SpecError(
                f"{project}: package.json has dependencies but there is no package-lock.json",
                hint="run 'npm install --package-lock-only' and commit the lockfile",
            )
        return {}
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SpecError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("lockfileVersion") not in (2, 3) or "packages" not in doc:
        raise SpecError(
            f"{path}: lockfileVersion {doc.get('lockfileVersion') if isinstance(doc, dict) else '?'} is not supported",
            hint="regenerate it with npm 7 or newer (lockfileVersion 2 or 3)",
        )
    return {k: v for k, v in doc["packages"].items() if k and isinstance(v, dict)}


def install(
    project: Path, arch: str, cache_root: Path, offline: bool, reporter: Reporter
) -> tuple[Path | None, str, int]:
    """node_modules for the image (cached by the lockfile's content): (directory, cache
    key, packages installed)."""
    packages = read_lock(project)
    wanted = {
        path: meta
        for path, meta in packages.items()
        if path.startswith("node_modules/") or "/node_modules/" in path
        if not meta.get("dev")
        and not meta.get("inBundle")
        and _allowed(meta.get("os"), "linux")  # type: ignore[arg-type]
        and _allowed(meta.get("cpu"), NPM_CPU.get(arch, arch))  # type: ignore[arg-type]
    }
    for path in wanted:
        parts = path.split("/")
        if path.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise SpecError(f"package-lock.json: {path!r} is not a place inside node_modules")
    if not wanted:
        return None, "", 0
    lock_bytes = (project / "package-lock.json").read_bytes()
    key = hashlib.sha256(f"{FORMAT}\0{arch}\0".encode() + lock_bytes).hexdigest()
    target = cache_root / "apps" / "node" / key
    if target.is_dir():
        return target / "node_modules", key, len(wanted)
    if offline:
        raise BuildError("the node_modules of package-lock.json are not in the cache (offline)")
    registry = _registry(project)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".tmp-"))
    tarballs = cache_root / "npm"
    task = reporter.task(f"node_modules: {len(wanted)} packages for {arch}", len(wanted))
    try:
        with httpx.Client(timeout=60, follow_redirects=True) as client:
            for path in sorted(wanted, key=lambda p: p.count("/node_modules/")):
                meta = wanted[path]
                name = path.rsplit("node_modules/", 1)[1]
                what = f"{name}@{meta.get('version', '?')}"
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
                integrity = str(meta.get("integrity") or "")
                cached = (
                    tarballs / (hashlib.sha256(integrity.encode()).hexdigest() + ".tgz")
                    if integrity
                    else None
                )
                if cached is not None and cached.is_file():
                    data = cached.read_bytes()
                else:
                    data = _download(url, client, project, what)
                    if integrity:
                        _check_integrity(data, integrity, what)
                        assert cached is not None
                        atomic_write(cached, data)
                    elif not url.startswith("file:"):
                        raise BuildError(f"{what}: package-lock.json gives no integrity hash for it")
                dest = tmp / path
                _unpack(data, dest, what)
                if (dest / "binding.gyp").is_file() and not any(dest.rglob("*.node")):
                    raise SpecError(
                        f"{what} is a native addon that needs compiling (binding.gyp) and ships no prebuilt .node",
                        hint="distill runs no install scripts: use a version with prebuilt binaries, or build "
                        "them for the image and vendor the package",
                    )
                reporter.advance(task, 1)
        (tmp / "node_modules").mkdir(exist_ok=True)
        reporter.done(task, f"installed {len(wanted)} node packages for {arch}")
        try:
            os.rename(tmp, target)
        except OSError:
            if not target.is_dir():  # another build finished first: use its copy
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target / "node_modules", key, len(wanted)
