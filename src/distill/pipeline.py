"""The stages a command runs, one after another: spec -> archive -> resolve -> lock -> fetch.

Each stage takes plain values and returns plain values; the command line is one
client of these functions.
"""

from __future__ import annotations

from pathlib import Path

from distill.archive.cache import Cache
from distill.archive.repo import Archive
from distill.archive.sources import Source, check_keyrings, distro_sources, host_keyrings
from distill.archive.transport import Transport
from distill.distros import get_distro
from distill.errors import NetworkError, ResolveError, SpecError
from distill.fetch import FetchResult, fetch_debs
from distill.options import Options
from distill.resolve.lock import Lock, LockedSuite, lock_from
from distill.resolve.policy import PrunePolicy
from distill.resolve.solver import Resolution, Resolver
from distill.spec.load import spec_checksum
from distill.spec.model import Spec, to_clause
from distill.upstream import nodejs


def spec_sources(spec: Spec, options: Options) -> list[Source]:
    """The repositories a spec resolves against (spec > flags > env > host apt)."""
    distro = get_distro(spec.distro)
    keyrings = tuple(Path(k) for k in spec.keyring) if spec.keyring else None
    if spec.sources and all(s.url for s in spec.sources):
        keyrings = check_keyrings(keyrings if keyrings is not None else host_keyrings())
        return [
            Source(s.url or "", suite, tuple(s.components), keyrings)
            for s in spec.sources
            for suite in s.suites
        ]
    defaults = distro_sources(
        distro,
        mirror=options.mirror,
        security_mirror=options.security_mirror,
        keyrings=keyrings,
    )
    if not spec.sources:
        return defaults
    return [
        Source(s.url or defaults[0].url, suite, tuple(s.components), defaults[0].keyrings)
        for s in spec.sources
        for suite in s.suites
    ]


def open_archive(spec: Spec, options: Options) -> Archive:
    return Archive(
        spec_sources(spec, options),
        cache=Cache(options.cache_dir),
        offline=options.offline,
        reporter=options.reporter,
        jobs=options.jobs,
    )


def policy_for(spec: Spec) -> PrunePolicy:
    return PrunePolicy.make(defaults=spec.prune.defaults, keep=spec.prune.keep, exclude=spec.exclude)


Prefer = dict[str, dict[str, str]]  # arch -> package -> the version to try first (a lock's)


def resolve(
    spec: Spec, archive: Archive, archs: list[str] | None = None, prefer: Prefer | None = None
) -> dict[str, Resolution]:
    """Resolve the spec's packages for each architecture (``prefer``: versions to keep
    where they still fit, for ``lock --update PKG``)."""
    if not spec.packages:
        raise SpecError("the spec lists no packages", hint="add a packages: list (or extends:)")
    archs = archs or list(spec.archs)
    universes = archive.universes(archs)
    policy = policy_for(spec)
    requests = spec.requests()
    out: dict[str, Resolution] = {}
    for arch in archs:
        out[arch] = Resolver(universes[arch], policy, (prefer or {}).get(arch)).resolve(requests)
    return out


DEBUG_PACKAGES = ("busybox-static",)


def level_assignment(
    spec: Spec, archive: Archive, resolutions: dict[str, Resolution], prefer: Prefer | None = None
) -> dict[str, dict[str, str]]:
    """arch -> package -> the lowest level of the spec's chain that brings it in (same version).

    Each level is resolved on its own, as the image of that name would be, so the
    packages of ``base`` form the same layer in every image built on ``base``."""
    out: dict[str, dict[str, str]] = {}
    for arch, res in resolutions.items():
        universe = archive.universe(arch)
        final = {p.name: p.version for p in res.packages}
        where: dict[str, str] = {}
        for name, level in spec.levels[:-1]:
            if not level.packages:
                continue
            try:
                level_res = Resolver(universe, policy_for(level), (prefer or {}).get(arch)).resolve(
                    level.requests()
                )
            except ResolveError:
                continue  # the level does not stand alone: its packages go higher up
            for p in level_res.packages:
                if p.name not in where and final.get(p.name) == p.version:
                    where[p.name] = name
        out[arch] = where
    return out


def resolve_debug(
    spec: Spec, archive: Archive, archs: list[str], prefer: Prefer | None = None
) -> dict[str, Resolution]:
    """What the debug variants add: a static busybox (with whatever it needs)."""
    requests = [to_clause(n) for n in DEBUG_PACKAGES]
    out = {}
    for arch in archs:
        try:
            out[arch] = Resolver(archive.universe(arch), policy_for(spec), (prefer or {}).get(arch)).resolve(
                requests
            )
        except ResolveError:
            continue  # no busybox here: the debug variants cannot be built from this lock
    return out


def node_settings(spec: Spec, options: Options | None) -> nodejs.Settings:
    node = spec.nodejs
    return nodejs.Settings.make(
        options.nodejs_mirror if options else None,
        list(node.keyring) if node else [],
        list(node.signers) if node else [],
    )


def lock_archives(
    spec: Spec, archs: list[str], options: Options | None, transport: Transport | None
) -> dict[str, list[nodejs.LockedArchive]]:
    """arch -> the release archives the spec asks for (``nodejs:``), each verified."""
    if spec.nodejs is None:
        return {}
    if spec.nodejs.version is None:
        raise SpecError("nodejs: has no version", hint="e.g. nodejs: {version: '22'}, or extend nodejs22")
    version = spec.nodejs.version
    layer = next(name for name, level in spec.levels if level.nodejs is not None and level.nodejs.version)
    what = f"Node.js {version} ({spec.name or layer})"
    if transport is None:
        raise NetworkError(f"locking {what} needs its mirror, and --offline forbids the network")
    found = nodejs.resolve(version, archs, node_settings(spec, options), transport, layer, what)
    return {arch: [a] for arch, a in found.items()}


def make_lock(
    spec: Spec,
    archive: Archive,
    resolutions: dict[str, Resolution],
    options: Options | None = None,
    prefer: Prefer | None = None,
) -> Lock:
    suites = [
        LockedSuite(
            url=st.source.base,
            suite=st.source.suite,
            inrelease_sha256=st.inrelease_sha256,
            date=st.release.date.isoformat() if st.release.date else None,
        )
        for st in archive.suite_states()
    ]
    archives = lock_archives(spec, sorted(resolutions), options, archive.transport)
    return lock_from(
        spec_checksum(spec),
        spec.distro,
        suites,
        resolutions,
        layers=[name for name, _ in spec.levels],
        assignment=level_assignment(spec, archive, resolutions, prefer),
        debug=resolve_debug(spec, archive, sorted(resolutions), prefer),
        archives=archives,
    )


def fetch(lock: Lock, archive: Archive, options: Options, archs: list[str] | None = None) -> FetchResult:
    pkgs = [p for arch in (archs or lock.archs) for p in lock.packages[arch]]
    return fetch_debs(pkgs, archive, archive.cache, reporter=options.reporter, jobs=options.jobs)
