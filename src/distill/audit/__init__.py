"""``distill audit``: the attack surface of images, Dockerfiles and Kubernetes
manifests, and the way to distroless (see docs/audit.md).

:func:`audit` takes a target string and returns a :class:`Report`; what kind of
target it is follows from its form (``docker://``, ``podman:``, ``docker:``, an OCI
layout or archive, a Dockerfile, a YAML file, or a directory of Dockerfiles and
manifests).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from distill.audit.model import SEVERITIES, Finding, Report, rank
from distill.errors import AuditError
from distill.fswalk import walk

if TYPE_CHECKING:
    from distill.audit.image import Scan
    from distill.oci.registry import RegistrySettings
    from distill.oci.source import Image, Source

__all__ = ["SEVERITIES", "Finding", "Report", "audit", "audit_source", "classify", "expand_targets", "rank"]

_YAML = (".yaml", ".yml")


def _is_dockerfile(path: Path) -> bool:
    n = path.name.lower()
    return (
        n in ("dockerfile", "containerfile")
        or n.startswith(("dockerfile.", "containerfile."))
        or n.endswith((".dockerfile", ".containerfile"))
    )


def classify(target: str) -> str:
    """image | dockerfile | kubernetes | directory."""
    if target.startswith(("docker://", "podman:", "docker:", "oci:", "oci-archive:", "docker-archive:")):
        return "image"
    path = Path(target)
    if path.is_dir():
        return "image" if (path / "oci-layout").exists() else "directory"
    if path.is_file():
        if _is_dockerfile(path):
            return "dockerfile"
        if path.suffix.lower() in _YAML:
            return "kubernetes"
        from distill.tarsafe import is_tar

        if is_tar(path):
            return "image"
        try:
            with path.open("rb") as f:
                head = f.read(4096).decode("utf-8", "replace")
        except OSError as exc:
            raise AuditError(f"{target}: {exc.strerror}") from None
        for line in head.splitlines():
            s = line.strip()
            if s and not s.startswith("#"):
                word = s.split()[0].upper()
                return "dockerfile" if word in ("FROM", "ARG") else "kubernetes"
        raise AuditError(f"{target}: an empty file is neither a Dockerfile nor a manifest")
    from distill.oci.source import split_ref

    if split_ref(target)[0].exists():
        return "image"  # DIR:REF or ARCHIVE:REF
    raise AuditError(
        f"{target}: no such file, directory or image reference",
        hint="images: DIR[:REF], ARCHIVE.tar, podman:NAME, docker:NAME, docker://HOST/REPO:TAG",
    )


def _looks_like_manifest(path: Path) -> bool:
    """A YAML file with Kubernetes objects (apiVersion and kind), not, say, a distill spec."""
    try:
        with path.open("rb") as f:
            head = f.read(1 << 20)
    except OSError:
        return False
    return b"apiVersion:" in head and b"kind:" in head


def expand_targets(targets: list[str]) -> list[tuple[str, str]]:
    """(target, kind) for each target; a plain directory becomes its Dockerfiles and YAML files."""
    out: list[tuple[str, str]] = []
    for t in targets:
        kind = classify(t)
        if kind != "directory":
            out.append((t, kind))
            continue
        found = []
        for root, dirs, files in walk(t):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "node_modules")
            for f in sorted(files):
                p = Path(root) / f
                if not p.is_file():  # a FIFO or socket in the tree: opening it would block
                    continue
                if _is_dockerfile(p):
                    found.append((str(p), "dockerfile"))
                elif p.suffix.lower() in _YAML and _looks_like_manifest(p):
                    found.append((str(p), "kubernetes"))
        if not found:
            raise AuditError(f"{t}: not an OCI layout, and holds no Dockerfile or YAML manifest")
        out += found
    return out


def audit(
    target: str,
    kind: str,
    *,
    arch: str | None = None,
    settings: RegistrySettings | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    if kind == "dockerfile":
        from distill.audit.dockerfile import audit_dockerfile

        return audit_dockerfile(Path(target), target)
    if kind == "kubernetes":
        from distill.audit.kube import audit_manifest

        return audit_manifest(Path(target), target)
    from distill.oci.source import open_source

    source = open_source(target, settings=settings)
    try:
        return audit_source(source, arch, progress)[0]
    finally:
        source.close()


def audit_source(
    source: Source,
    arch: str | None = None,
    progress: Callable[[int, int], None] | None = None,
    keep: Callable[[str], bool] | None = None,
    image: Image | None = None,
) -> tuple[Report, Scan]:
    """The image report of an open source, with the flavor that would run it (the
    recommendation), and the scan (``keep``: more files whose content it keeps)."""
    from distill.audit.image import audit_image, config_env, elf_of_entrypoint, entry_argv, node_lock_paths
    from distill.audit.recommend import carried_dependencies, recommend

    report, scan, config = audit_image(source, arch, progress, keep, image)
    exe, elf = elf_of_entrypoint(scan.table, config)
    cfg = config.get("config") or {}
    env = config_env(config)
    rec = recommend(
        entry_argv(config),
        elf,
        exe,
        any(f.id == "IMG-ROOT" for f in report.findings),
        env,
        cfg.get("WorkingDir"),
    )
    rec["ports"] = sorted((cfg.get("ExposedPorts") or {}).keys())
    rec["architecture"] = config.get("architecture")
    locks = {p: scan.table.content[p] for p in node_lock_paths(config) if p in scan.table.content}
    report.files = carried_dependencies(rec, scan.table.python_dists(), locks)
    report.recommendation = rec
    return report, scan
