"""What ``distill outdated`` and ``distill scan`` read: a spec (with its lock), a lock, an
SBOM or any image source, and the Debian suites its packages are compared with.

The suites: the target's own (a spec's ``sources``, the suites a lock records) and the
distro's release, ``-updates`` and ``-security`` suites on the configured mirror
(``--mirror``, ``DISTILL_MIRROR``, the host's apt sources). A spec that locks from the
release suite alone is still told what ``-security`` holds for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.archive.sources import Source, check_keyrings, distro_sources, host_keyrings
from distill.distros import DISTROS, get_distro
from distill.errors import VulnError
from distill.limits import read_json
from distill.options import Options
from distill.resolve.lock import Lock, read_lock
from distill.vuln.inventory import Inventory, from_lock, image_packages
from distill.vuln.model import Pkg
from distill.vuln.sbom import MAX_SBOM, is_sbom, read_sbom

if TYPE_CHECKING:
    from distill.spec.model import Spec


@dataclass
class Target:
    inventory: Inventory  # the packages of one architecture (what a scan matches)
    installed: dict[str, list[Pkg]]  # arch -> Debian packages (every arch of a lock)
    sources: list[Source] | None  # None: a release distill has no suites for
    lock: Lock | None = None
    lock_path: Path | None = None
    spec: Spec | None = None
    spec_path: Path | None = None


def _union(*groups: list[Source]) -> list[Source]:
    out: dict[tuple[str, str], Source] = {}
    for group in groups:
        for s in group:
            key = (s.base, s.suite)
            old = out.get(key)
            if old is None:
                out[key] = s
            else:
                comps = tuple(dict.fromkeys(old.components + s.components))
                out[key] = Source(old.url, old.suite, comps, old.keyrings)
    return list(out.values())


def _distro_suites(
    distro: str | None, options: Options, keyrings: tuple[Path, ...] | None = None
) -> list[Source] | None:
    if distro is None or distro not in DISTROS:
        return None
    return distro_sources(
        get_distro(distro), mirror=options.mirror, security_mirror=options.security_mirror, keyrings=keyrings
    )


def _with_release_suites(own: list[Source], release: list[Source] | None) -> list[Source]:
    """The target's suites, and its release's when it reads the Debian mirror (a target
    on a repository of its own is compared with that repository alone)."""
    if release and any(s.base == release[0].base for s in own):
        return _union(own, release)
    return own


def _lock_suites(lock: Lock, keyrings: tuple[Path, ...] | None) -> list[Source]:
    keyrings = check_keyrings(keyrings or host_keyrings())
    comps: dict[str, list[str]] = {}
    for pkgs in lock.packages.values():
        for p in pkgs:
            comps.setdefault(p.suite, [])
            if p.component not in comps[p.suite]:
                comps[p.suite].append(p.component)
    return [Source(s.url, s.suite, tuple(comps.get(s.suite) or ["main"]), keyrings) for s in lock.suites]


def _debs_by_arch(lock: Lock, name: str, arch: str | None) -> dict[str, list[Pkg]]:
    """Every architecture's packages (only ``arch``'s when one is asked for)."""
    return {
        a: [Pkg("deb", p.name, p.version, p.source, p.source_version, p.architecture, name) for p in pkgs]
        for a, pkgs in lock.packages.items()
        if arch is None or a == arch
    }


def _sniff_json(path: Path) -> Any | None:
    try:
        with open(path, "rb") as f:
            head = f.read(64).lstrip()
    except OSError:
        return None
    if not head.startswith((b"{", b"[")):
        return None
    return read_json(path, MAX_SBOM, error=VulnError, what="target")


def open_target(
    text: str,
    options: Options,
    *,
    arch: str | None = None,
    distro: str | None = None,
    lock_file: Path | None = None,
    keyrings: tuple[Path, ...] | None = None,
    settings: Any = None,
    progress: Any = None,
) -> Target:
    """The target ``text`` names (see the module docstring)."""
    path = Path(text)
    if path.is_file() and path.suffix not in (".yaml", ".yml"):
        doc = _sniff_json(path)
        if isinstance(doc, dict) and "lockVersion" in doc:
            lock = read_lock(path)
            inv = from_lock(lock, text, "lock", arch)
            if distro:
                inv.codename = get_distro(distro).codename
            srcs = _with_release_suites(
                _lock_suites(lock, keyrings), _distro_suites(distro or lock.distro, options, keyrings)
            )
            return Target(inv, _debs_by_arch(lock, text, arch), srcs, lock, path)
        if doc is not None:
            if not is_sbom(doc):
                raise VulnError(
                    f"{text}: a JSON file that is neither a distill lock nor an SBOM (SPDX 2.x or CycloneDX 1.x)",
                    hint="scan takes a spec, a lock, an SBOM or an image",
                )
            inv = read_sbom(path, doc)
            return _with_distro(inv, distro, options, keyrings)
    if path.suffix in (".yaml", ".yml") or _builtin(text, path):
        from distill.builtins import builtin_dir
        from distill.pipeline import spec_sources
        from distill.resolve.lock import default_lock_path
        from distill.spec.load import load_spec, with_overrides

        spec, spec_path = load_spec(text)
        if distro:
            spec = with_overrides(spec, distro=distro)
        if spec.base_image is not None:
            raise VulnError(f"{text} goes on an image ({spec.base_image.text}): scan the built image instead")
        lp = lock_file or default_lock_path(spec_path, spec_path.resolve().parent == builtin_dir().resolve())
        lock = read_lock(lp)
        inv = from_lock(lock, text, "spec", arch)
        keyrings = keyrings or (tuple(Path(k) for k in spec.keyring) if spec.keyring else None)
        srcs = _with_release_suites(
            spec_sources(spec, options), _distro_suites(spec.distro, options, keyrings)
        )
        return Target(inv, _debs_by_arch(lock, str(lp), arch), srcs, lock, lp, spec, spec_path)
    from distill.archive.cache import Cache

    cache = Cache(options.cache_dir)
    inv = image_packages(text, arch, settings=settings, progress=progress, cache=cache)
    return _with_distro(inv, distro, options, keyrings)


def _builtin(text: str, path: Path) -> bool:
    """A built-in flavor's name (``python3``), unless a file or directory has that name."""
    if path.exists() or not text.replace("-", "").isalnum():
        return False
    from distill.builtins import builtin_names

    return text in builtin_names()


def _with_distro(
    inv: Inventory, distro: str | None, options: Options, keyrings: tuple[Path, ...] | None
) -> Target:
    if distro:
        inv.codename = get_distro(distro).codename
    debs = inv.debs
    if debs and inv.codename is None:
        raise VulnError(
            f"{inv.name} lists Debian packages but does not say which Debian release",
            hint="name it with --distro debian13|debian12",
        )
    arch = inv.arch or "amd64"
    srcs = _distro_suites(inv.distro, options, keyrings) if debs else None
    return Target(inv, {arch: debs} if debs else {}, srcs)
