"""Conventional Debian images for the audit's and the fleet's tests: a root filesystem
from mmdebstrap (minbase, and packages on top), packed into an OCI layout by umoci."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from distill.archive.sources import host_mirrors
from registries import sh


def mirror() -> str:
    """The Debian mirror of the host's apt sources (or $DISTILL_MIRROR)."""
    found = (
        os.environ.get("DISTILL_MIRROR")
        or (host_mirrors() or pytest.fail("no Debian mirror in apt sources")).main
    )
    return found  # type: ignore[return-value]


def debian_image(
    d: Path, name: str, include: str | None = None, cmd: tuple[str, ...] = ()
) -> tuple[Path, Path]:
    """(root filesystem tar, OCI layout with it as image ``1``) of Debian 12 minbase,
    with ``include`` (mmdebstrap's comma-separated package list) on top, and ``cmd``
    as the image's Cmd."""
    for tool in ("mmdebstrap", "umoci"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: run scripts/setup.sh")
    tar = d / f"{name}.tar"
    strap = ["mmdebstrap", "--variant=minbase", "--quiet", "--mode=root"]
    if include:
        strap.append(f"--include={include}")
    sh(*strap, "bookworm", str(tar), mirror(), timeout=900)
    layout = d / f"{name}-oci"
    sh("umoci", "init", "--layout", str(layout))
    sh("umoci", "new", "--image", f"{layout}:1")
    sh("umoci", "raw", "add-layer", "--image", f"{layout}:1", str(tar))
    if cmd:
        sh("umoci", "config", "--image", f"{layout}:1", *(a for c in cmd for a in ("--config.cmd", c)))
    return tar, layout
