"""The local engine as a sink: put a written image into podman's or docker's storage.

Like ko's ``--local``: an OCI layout goes through ``skopeo copy`` into podman's
storage (only the layers it lacks are copied); an archive through ``ENGINE load``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from distill.engine import run
from distill.errors import BuildError, SpecError
from distill.oci.sink import split_tag


def choose_engine(choice: str) -> str:
    """``auto`` (podman if installed, else docker), ``podman`` or ``docker``."""
    names = ["podman", "docker"] if choice == "auto" else [choice]
    for name in names:
        if shutil.which(name):
            return name
    raise SpecError(
        f"--load: {' or '.join(names)} is not installed",
        hint="install podman, or write the image with -o IMAGE.tar",
    )


def load_form(engine: str) -> str:
    """The output form the engine loads best: ``.oci`` (podman with skopeo) or ``.tar``."""
    return ".oci" if engine == "podman" and shutil.which("skopeo") else ".tar"


def qualified(tag: str) -> str:
    """The name the engine stores: a name without a registry host is under ``localhost/``."""
    first = tag.split("/", 1)[0]
    return (
        tag if "/" in tag and ("." in first or ":" in first or first == "localhost") else f"localhost/{tag}"
    )


def load_into(engine: str, image: Path, tag: str) -> None:
    """Load the layout or archive ``image`` (named ``tag`` in it) into the engine."""
    if image.suffix == ".tar":
        cmd = [engine, "load", "-q", "-i", str(image)]
    else:
        full, ref = split_tag(tag)
        cmd = ["skopeo", "copy", "-q", f"oci:{image}:{ref}", f"containers-storage:{qualified(full)}"]
    run(cmd, "--load", timeout=900, error=BuildError, hint=f"is {engine} usable by this user?")
