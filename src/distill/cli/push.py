"""``distill push``: an image that exists (a layout, an archive, any image source)
into a registry; and the push step ``distill build --push`` and ``publish`` share."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from distill.cli.common import Subparsers, add_registry, mib, registry_settings
from distill.errors import SpecError
from distill.progress import Reporter, make_reporter

if TYPE_CHECKING:
    from distill.oci.ref import Reference
    from distill.oci.registry import PushStats, RegistrySettings
    from distill.oci.source import Document, Source


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "push",
        help="push an image (OCI layout, archive, or any image source) to a registry",
        description="Push IMAGE to each REF (HOST[:PORT]/REPO[:TAG]): an OCI layout (DIR[:REF]), an OCI or "
        "docker archive, podman:NAME, or another registry's docker://HOST/REPO:TAG. Blobs the registry has "
        "are skipped, blobs another repository of it has are mounted, the rest uploaded in parallel (chunked "
        "when large); manifests go before the tags, children before the index. The last line of stdout is "
        "HOST/REPO@sha256:... (what to pin).",
        epilog="Exit status: 0 pushed, 2 an error (one line; nothing is tagged unless all of it is in place).",
    )
    p.add_argument("image", metavar="IMAGE")
    p.add_argument(
        "refs", metavar="REF", nargs="+", help="where to push (several tags or repositories at once)"
    )
    add_push_flags(p)
    add_registry(p)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.add_argument("-j", "--jobs", type=int, default=4, help="parallel uploads (default: 4)")
    p.set_defaults(func=cmd_push)


def add_push_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--chunk-size",
        metavar="SIZE",
        default="64M",
        help="upload blobs larger than SIZE in chunks of SIZE (PATCH; resumable) (default: 64M)",
    )


def parse_refs(texts: list[str]) -> list[Reference]:
    from distill.oci.ref import parse_reference

    refs = [parse_reference(t, what="an image reference to push to") for t in texts]
    for r in refs:
        if r.digest is not None:
            raise SpecError(
                f"{r}: push to a tag (HOST/REPO:TAG), not a digest", hint="the digest is printed after"
            )
    return refs


def settings_for_push(args: argparse.Namespace) -> RegistrySettings:
    from dataclasses import replace

    from distill.limits import parse_size

    chunk = parse_size(args.chunk_size, "--chunk-size")
    if chunk < 1024:
        raise SpecError("--chunk-size must be at least 1K")
    return replace(registry_settings(args), chunk_size=chunk)


def push_to(
    source: Source,
    top: Document,
    refs: list[Reference],
    settings: RegistrySettings,
    jobs: int,
    reporter: Reporter,
    total: int,
) -> tuple[list[str], list[str]]:
    """Push ``top`` to every repository ``refs`` name (grouped: one push per repository,
    its tags at once); returns ``HOST/REPO@DIGEST`` for each repository, and a line of
    what was done for each."""
    from distill.oci.push import Pusher

    groups: dict[tuple[str, str], list[Reference]] = {}
    for r in refs:
        groups.setdefault((r.registry, r.repository), []).append(r)
    pins: list[str] = []
    lines: list[str] = []
    by_host: dict[str, list[list[Reference]]] = {}
    for (host, _), group in groups.items():
        by_host.setdefault(host, []).append(group)
    for host, repo_groups in by_host.items():
        task = reporter.task(f"pushing to {host}", total * len(repo_groups) or None)

        def progress(kind: str, size: int, task: int = task) -> None:
            reporter.advance(task, size)

        with Pusher.to(host, settings, jobs, progress=progress) as pusher:
            for group in repo_groups:
                stats = pusher.push(source, top, group)
                lines.append(_summary(group, stats))
                pins.append(f"{group[0].name}@{top.digest}")
        reporter.done(task)
    return pins, lines


def push_attachments(
    source: Source,
    top: Document,
    refs: list[Reference],
    settings: RegistrySettings,
    jobs: int,
) -> list[str]:
    """A layout's signatures and attestations of the image (``distill sign DIR``) go
    along, under the same tags, to every repository pushed to."""
    from distill.oci.attach import LayoutStore, carried
    from distill.oci.source import LayoutSource

    if not isinstance(source, LayoutSource):
        return []
    attachments = carried(LayoutStore(source.path, source.name), top)
    repos = list({(r.registry, r.repository): r for r in refs}.values())
    quiet = make_reporter(True)  # small manifests: the image's progress line says enough
    for tag, doc in attachments:
        push_to(source, doc, [r.with_tag(tag) for r in repos], settings, jobs, quiet, 0)
    if not attachments:
        return []
    return [
        f"pushed {len(attachments)} signature/attestation manifests of the layout ({', '.join(t for t, _ in attachments)[:300]})"
    ]


def _summary(group: list[Reference], stats: PushStats) -> str:
    tags = ", ".join(stats.tags)
    return (
        f"pushed {group[0].name}:{{{tags}}} " if len(stats.tags) > 1 else f"pushed {group[0].name}:{tags} "
    ) + (
        f"({stats.uploaded} blobs uploaded ({mib(stats.uploaded_bytes)}), {stats.mounted} mounted, "
        f"{stats.existing} already there; {stats.manifests} manifests written, "
        f"{stats.manifests_existing} already there)"
    )


def cmd_push(args: argparse.Namespace) -> int:
    from distill.oci.source import open_source

    if args.jobs < 1:
        raise SpecError("--jobs must be at least 1")
    refs = parse_refs(args.refs)
    settings = settings_for_push(args)
    reporter = make_reporter(args.quiet)
    try:
        with open_source(args.image, settings=settings) as source:
            top = source.root()
            pins, lines = push_to(source, top, refs, settings, args.jobs, reporter, 0)
            lines += push_attachments(source, top, refs, settings, args.jobs)
    finally:
        reporter.close()
    for line in lines:
        print(line)
    for pin in pins:
        print(pin)
    return 0
