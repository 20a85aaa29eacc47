"""SLSA provenance v1 of a distill build, written by the build itself.

``buildDefinition.externalParameters`` holds what the user chose: the spec (its file's
sha256 and the spec as distill read it, with its ``extends`` chain resolved) and the
lock (its sha256; a build without a lock file resolves one, whose digest is given),
the variant and the architectures. ``resolvedDependencies`` lists everything the image
was made from, each with a URI and a sha256: every ``.deb`` (its URL on the mirror the
lock names), every wheel and npm tarball of an app, and a ``from:`` base image.
``runDetails.builder.id`` names distill and its version (a purl: distill is a Python
package); ``byproducts`` lists the manifests built (one per platform).
"""

from __future__ import annotations

import hashlib
import platform as host_platform
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from distill import __version__
from distill.build import BuildResult
from distill.resolve.lock import Lock
from distill.spec.model import Spec

PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:distill:build-type:image:v1"  # an identifier, never fetched
BUILDER_ID = f"pkg:pypi/distill@{__version__}"


@dataclass(frozen=True)
class Invocation:
    """How the build was run: what provenance says beside the build's own result."""

    spec: Spec
    spec_path: Path | None
    lock: Lock | None
    lock_path: Path | None  # None: resolved for this build, not read from a file
    variant: str
    archs: list[str]
    tag: str | None
    started: datetime
    finished: datetime
    source_date_epoch: int | None = None


def _file_digest(path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _debs(lock: Lock, archs: list[str], variant: str) -> list[dict[str, Any]]:
    urls = {s.suite: s.url.rstrip("/") for s in lock.suites}
    out: dict[str, dict[str, Any]] = {}
    sections = [lock.packages.get(a, []) for a in archs]
    if variant.startswith("debug"):
        sections += [lock.debug.get(a, []) for a in archs]
    for section in sections:
        for p in section:
            base = urls.get(p.suite)
            out.setdefault(
                p.sha256,
                {
                    "name": f"pkg:deb/debian/{p.name}@{p.version}?arch={p.architecture}",
                    "uri": f"{base}/{p.filename}" if base else p.filename,
                    "digest": {"sha256": p.sha256},
                    "annotations": {"suite": p.suite, "component": p.component, "size": str(p.size)},
                },
            )
    return sorted(out.values(), key=lambda d: str(d["name"]))


def _timestamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def predicate(result: BuildResult, run: Invocation) -> dict[str, Any]:
    """The provenance predicate (``https://slsa.dev/provenance/v1``) of one build."""
    spec_doc = run.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    external: dict[str, Any] = {
        "spec": {
            "name": run.spec.levels[-1][0],
            **({"path": run.spec_path.name} if run.spec_path is not None else {}),
            **({"digest": {"sha256": sd}} if (sd := _file_digest(run.spec_path)) else {}),
            "content": spec_doc,
        },
        "variant": run.variant,
        "archs": list(run.archs),
    }
    if run.tag:
        external["tag"] = run.tag
    if run.lock is not None:
        from_file = _file_digest(run.lock_path)
        lock_digest = from_file or hashlib.sha256(run.lock.to_json().encode()).hexdigest()
        external["lock"] = {
            **({"path": run.lock_path.name} if run.lock_path is not None and from_file else {}),
            "digest": {"sha256": lock_digest},
            "specSha256": run.lock.spec_sha256,
            "suites": [
                {"uri": s.url, "suite": s.suite, "inReleaseSha256": s.inrelease_sha256}
                for s in run.lock.suites
            ],
        }
    deps: list[dict[str, Any]] = []
    if result.base is not None:
        name, digest = result.base
        deps.append({"name": name, "uri": _image_uri(name, digest), "digest": {"sha256": digest[7:]}})
    if run.lock is not None and result.base is None:
        deps += _debs(run.lock, run.archs, run.variant)
    app: dict[str, dict[str, Any]] = {}
    for image in result.images:
        for d in image.dependencies:
            entry = app.setdefault(
                f"{d.ecosystem}:{d.name}@{d.version}:{d.uri}",
                {
                    "name": f"pkg:{d.ecosystem}/{d.name}@{d.version}",
                    "uri": d.uri,
                    "digest": dict(d.digest),
                    "annotations": {"archs": []},
                },
            )
            entry["annotations"]["archs"].append(image.arch)
    for entry in app.values():
        entry["annotations"]["archs"] = ",".join(entry["annotations"]["archs"])
    deps += sorted(app.values(), key=lambda d: str(d["name"]))
    internal: dict[str, Any] = {"distro": run.spec.distro}
    if run.source_date_epoch is not None:
        internal["sourceDateEpoch"] = run.source_date_epoch
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": internal,
            "resolvedDependencies": deps,
        },
        "runDetails": {
            "builder": {
                "id": BUILDER_ID,
                "version": {"distill": __version__, "python": host_platform.python_version()},
            },
            "metadata": {
                "invocationId": f"urn:uuid:{uuid.uuid4()}",
                "startedOn": _timestamp(run.started),
                "finishedOn": _timestamp(run.finished),
            },
            "byproducts": [
                {
                    "name": f"manifest {i.arch}",
                    "digest": {"sha256": i.manifest.digest[7:]},
                    "mediaType": i.manifest.media_type,
                }
                for i in result.images
            ],
        },
    }


def _image_uri(name: str, digest: str) -> str:
    """A base image as a URI: ``docker://HOST/REPO@sha256:…`` for a registry image (what
    skopeo names it), else the source as the spec named it (``podman:…``, ``oci:DIR``)."""
    from distill.errors import DistillError
    from distill.oci.ref import parse_reference

    try:
        ref = parse_reference(name)
    except DistillError:
        return name
    return f"docker://{ref.name}@{digest}"


def subjects(result: BuildResult) -> list[str]:
    """The digests a build's provenance is about: the top one (index or image) and each platform's."""
    out = [result.digest]
    out += [i.manifest.digest for i in result.images if i.manifest.digest != result.digest]
    return out


__all__ = ["BUILDER_ID", "BUILD_TYPE", "PREDICATE_TYPE", "Invocation", "predicate", "subjects"]
