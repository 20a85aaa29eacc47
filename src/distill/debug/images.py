"""The images a debug session runs, built by distill and put into the local engine.

- The busybox image beside a container: the built-in ``static`` flavor's ``debug``
  variant for the host's architecture (busybox-static from the Debian archive, its
  applets at ``/busybox``, entrypoint ``/busybox/sh``), tagged by its digest under
  :data:`~distill.debug.DEBUG_REPO`, so a new Debian busybox makes a new tag and an
  unchanged one is loaded once.
- A spec's ``debug`` variant, from the spec's own lock: the same packages and app
  layers as its ``latest`` image.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from distill.debug import DEBUG_REPO
from distill.debug.session import image_exists, load_image

if TYPE_CHECKING:
    from distill.build import Base, BuildResult
    from distill.options import Options
    from distill.resolve.lock import Lock
    from distill.spec.model import Spec


def _builder(
    spec: Spec, lock: Lock | None, options: Options, variant: str, base: Base | None, spec_path: Path | None
) -> Callable[[Path | None, str | None], BuildResult]:
    """``build(output, tag)`` of the spec's variant for the host's architecture; the
    archive is opened (and the spec resolved, without a lock) on first need only."""
    from distill.archive.ondemand import ArchiveOnDemand
    from distill.build import build, build_on_image
    from distill.distros import host_arch

    arch = host_arch()
    archive = ArchiveOnDemand(spec, options)
    locked = lock

    def make(output: Path | None, tag: str | None) -> BuildResult:
        nonlocal locked
        try:
            if base is not None:
                return build_on_image(
                    spec,
                    options,
                    base,
                    variant=variant,
                    archs=[arch],
                    output=output,
                    tag=tag,
                    spec_path=spec_path,
                )
            if locked is None:
                from distill.pipeline import make_lock, resolve

                locked = make_lock(spec, archive.get(), resolve(spec, archive.get()), options)
            return build(
                spec, locked, options, variant=variant, archs=[arch], output=output, tag=tag, fetch=archive.fetch,
                spec_path=spec_path,
            )  # fmt: skip
        finally:
            archive.close()

    return make


def busybox_image(engine: str, exe: str, options: Options, distro: str | None = None) -> tuple[str, bool]:
    """The busybox image's tag in the engine (built and loaded when it lacks it), and
    whether it was loaded now."""
    from distill.distros import host_arch
    from distill.spec.load import load_spec, with_overrides

    spec, path = load_spec("static")
    spec = with_overrides(spec, archs=[host_arch()], **({"distro": distro} if distro else {}))
    make = _builder(spec, None, options, "debug", None, path)
    result = make(None, None)  # into the cache's blob store: its digest names the tag
    tag = f"{DEBUG_REPO}:{spec.distro}-{result.digest.removeprefix('sha256:')[:16]}"
    if image_exists(exe, tag):
        return tag, False
    load_image(engine, tag, lambda out: make(out, tag))
    return tag, True


def spec_image(
    engine: str,
    spec: Spec,
    lock: Lock | None,
    options: Options,
    tag: str,
    variant: str,
    base: Base | None,
    spec_path: Path,
) -> BuildResult:
    """The spec's debug variant for the host's architecture, loaded into the engine as
    ``tag`` (an older image of that name loses it; only missing layers are copied)."""
    make = _builder(spec, lock, options, variant, base, spec_path)
    result: list[BuildResult] = []
    load_image(engine, tag, lambda out: result.append(make(out, tag)))
    return result[0]


__all__ = ["busybox_image", "spec_image"]
