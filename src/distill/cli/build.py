"""``distill build``: a spec (or an app on a base) -> an image in a layout, an archive,
the local engine (``--load``)."""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill.cli.common import (
    Subparsers,
    add_common,
    add_registry,
    add_spec_args,
    load,
    lock_path,
    mib,
    options,
    source_date_epoch,
)
from distill.cli.push import add_push_flags, parse_refs, push_to, settings_for_push
from distill.errors import LockError, SpecError

if TYPE_CHECKING:
    from distill.oci.registry import RegistrySettings
    from distill.resolve.lock import Lock
    from distill.spec.model import Spec


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "build",
        help="build the image (OCI layout, or a .tar for podman/docker load)",
        description="Build a reproducible OCI image from the spec: from its lockfile when one is beside "
        "the spec (it must match), else from a fresh resolution. Several architectures make one "
        "multi-arch index. A spec with an 'app' (python, node, java or binary) puts the application "
        "on its flavor: dependencies and code in their own layers, run as 65532 (docs/apps.md). "
        "The image digest is printed on the last line of stdout.",
        epilog="Set SOURCE_DATE_EPOCH to clamp timestamps; otherwise they come from the packages.",
    )
    add_spec_args(p)
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="OUT",
        help="an OCI image layout directory, or OUT.tar: one archive for 'podman load'/'docker load' "
        "(default: ./NAME[-VARIANT].oci)",
    )
    p.add_argument("--variant", default="latest", help="latest (default), nonroot, debug or debug-nonroot")
    p.add_argument(
        "--tag",
        metavar="NAME:TAG",
        help="name the image: ref.name in a layout, RepoTags in a .tar (default: NAME:VARIANT)",
    )
    p.add_argument("--lock", type=Path, help="lockfile path (default: beside the spec)")
    p.add_argument("--locked", action="store_true", help="require a lockfile that matches the spec")
    p.add_argument(
        "--per-arch-tags",
        action="store_true",
        help="in a multi-arch layout, also name each platform's image TAG-ARCH (for tools that cannot "
        "pick a platform from an index, e.g. umoci; index.json then has several entries)",
    )
    p.add_argument(
        "--load",
        nargs="?",
        const="auto",
        choices=["auto", "podman", "docker"],
        metavar="ENGINE",
        help="load the image into the local podman or docker (ENGINE; default: podman if installed, "
        "else docker), tagged with --tag; without -o nothing else is written",
    )
    p.add_argument(
        "--push",
        action="append",
        default=[],
        metavar="REF",
        help="push the image to HOST[:PORT]/REPO[:TAG] (repeatable: several tags or repositories); "
        "without -o nothing else is written; the last line is HOST/REPO@sha256:...",
    )
    p.add_argument(
        "--no-sbom",
        action="store_true",
        help="do not write OUT's SBOMs (by default OUT.spdx.json and OUT.cdx.json beside it, "
        "OUT-ARCH.… per platform of a multi-arch image; none with only --push/--load)",
    )
    add_push_flags(p)
    g = p.add_argument_group("signing (docs/signing.md)")
    g.add_argument(
        "--sign",
        action="store_true",
        help="after the push (or in the layout -o DIR), sign the image and each platform's manifest with "
        "--key as cosign does, and attach the build's SLSA provenance as a signed attestation",
    )
    g.add_argument("--key", type=Path, metavar="KEY", help="the cosign-format private key --sign uses")
    g.add_argument(
        "--identity",
        metavar="HOST/REPO",
        help="the repository a layout's signatures name (default: the --tag name; pushed images: their repository)",
    )
    g.add_argument(
        "--no-provenance", action="store_true", help="with --sign: sign only, attach no provenance"
    )
    g.add_argument(
        "--provenance",
        type=Path,
        metavar="FILE",
        help="also write the build's SLSA provenance (an in-toto Statement, unsigned) to FILE",
    )
    add_common(p)
    add_registry(p)
    p.set_defaults(func=cmd_build)


def spec_lock(spec: Spec, lock_file: Path, required: bool) -> Lock | None:
    """The lock a build of ``spec`` goes by: the one at ``lock_file`` when it is there (or
    ``required``: --locked), checked to be this spec's, for its archs and distro; else None."""
    from distill.resolve.lock import check_current, read_lock
    from distill.spec.load import spec_checksum

    if not (lock_file.exists() or lock_file.is_symlink() or required):
        return None
    lock = read_lock(lock_file)
    check_current(lock, spec_checksum(spec), lock_file, list(spec.archs), spec.distro)
    return lock


def base_of(
    spec: Spec, lock: Lock | None, settings: RegistrySettings, locked: bool, lock_file: Path, offline: bool
) -> Any:
    """The image an app goes on, read by the lock's digest when there is a lock; with
    ``--locked`` a tag that has moved since is refused (``distill lock`` takes it) —
    unless ``--offline``, which cannot ask and builds what the lock pins."""
    from distill.build import Base
    from distill.oci.base import resolve_base
    from distill.oci.ref import parse_reference

    image = spec.base_image
    assert image is not None
    pinned = None
    if lock is not None:
        if lock.base is None:
            raise LockError(f"{lock_file} pins no base image", hint="run 'distill lock SPEC'")
        pinned = lock.base.digest
        if locked and not offline:
            now = resolve_base(image.target, settings)
            if now != pinned:
                raise LockError(
                    f"the base {image.text} has moved: {lock_file} pins {pinned}, it names {now} now",
                    hint="run 'distill lock SPEC' to take the new image (and review what changed)",
                )
    name = (
        str(parse_reference(image.target).with_tag(parse_reference(image.target).tag or "latest"))
        if image.is_registry
        else None
    )
    return Base(image.target, pinned, settings, name)


def cmd_build(args: argparse.Namespace) -> int:
    from distill.build import BuildResult, build, build_on_image, check_variant, default_output
    from distill.oci.load import choose_engine, load_form, load_into, qualified
    from distill.oci.sink import check_tag

    check_variant(args.variant)
    started = datetime.now(UTC)
    signing_key = _signing_key(args)
    spec, path = load(args)
    lock_file = lock_path(args, path, "lock")
    opts = options(args)
    opts.source_date_epoch = source_date_epoch()
    push_refs = parse_refs(args.push) if args.push else []
    settings = settings_for_push(args)
    archs: list[str] = list(spec.archs)
    lock = spec_lock(spec, lock_file, args.locked)
    base = (
        base_of(spec, lock, settings, args.locked, lock_file, args.offline)
        if spec.base_image is not None
        else None
    )
    from distill.archive.ondemand import ArchiveOnDemand

    archive = ArchiveOnDemand(spec, opts)

    name = spec.levels[-1][0]
    output = args.output or default_output(name, args.variant)
    tag = check_tag(args.tag) if args.tag else f"{name}:{args.variant}"
    engine = choose_engine(args.load) if args.load else None
    scratch = None
    # podman's storage takes an OCI layout through skopeo, copying only new layers;
    # docker (or podman without skopeo) loads an archive.
    load_kind = load_form(engine) if engine else ".tar"
    if engine and (args.output is None or (args.output.suffix == ".tar") != (load_kind == ".tar")):
        scratch = Path(tempfile.mkdtemp(prefix="distill-load-"))
    # Only pushed: the image stays in the cache's blob store, nothing else is written.
    only_pushed = bool(push_refs) and args.output is None and engine is None
    pins: list[str] = []
    pushed: list[str] = []
    try:
        if scratch is not None and args.output is None:
            output = scratch / f"image{load_kind}"  # only loaded, not kept

        def run_build(out: Path | None) -> BuildResult:
            nonlocal lock
            per_arch_tags = args.per_arch_tags and out == output  # not in the extra form --load takes
            if base is not None:
                return build_on_image(spec, opts, base, variant=args.variant, archs=archs, output=out, tag=tag,
                                      spec_path=path, per_arch_tags=per_arch_tags)  # fmt: skip
            if lock is None:
                from distill.pipeline import make_lock, resolve

                lock = make_lock(spec, archive.get(), resolve(spec, archive.get()), opts)
            return build(spec, lock, opts, variant=args.variant, archs=archs, output=out, tag=tag, fetch=archive.fetch,
                         spec_path=path, per_arch_tags=per_arch_tags)  # fmt: skip

        result = run_build(None if only_pushed else output)
        if push_refs:
            from distill.archive.cache import Cache
            from distill.oci.image import BlobStore
            from distill.oci.source import StoreSource

            store = BlobStore(Cache(opts.cache_dir).root)
            source = StoreSource(store, result.digest, "the built image")
            top = source.top()
            total = result.top.size + sum(i.config.size + i.size + i.manifest.size for i in result.images)
            pins, pushed = push_to(source, top, push_refs, settings, opts.jobs, opts.reporter, total)
        if engine:
            load_from = output
            if (output.suffix == ".tar") != (load_kind == ".tar"):  # the form to load is extra
                assert scratch is not None
                load_from = scratch / f"image{load_kind}"
                run_build(load_from)
            load_into(engine, load_from, tag)
        sboms = []
        if not args.no_sbom and not ((engine or push_refs) and args.output is None):
            from distill.cli.sbom import write_build_sboms

            sboms = write_build_sboms(result, lock, opts, tag.rpartition(":")[0] or name, output)
    finally:
        archive.close()
        opts.reporter.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    # -q: the final line alone (what a user pins: HOST/REPO@sha256:… after a push, else
    # the digest); the signing below is done all the same.
    say = (lambda line: None) if args.quiet else print
    for image in result.images:
        say(
            f"{image.arch}: {len(image.layers)} layers ({', '.join(image.layer_names)}), {image.packages} packages, "
            f"{image.files} files, {mib(image.size)} compressed, {mib(image.tar_size)} uncompressed"
        )
    kind = "archive" if output.suffix == ".tar" else "OCI layout"
    state = "wrote" if result.written else "up to date:"
    if not ((engine or push_refs) and args.output is None):
        say(
            f"{state} {kind} {output} ({result.layers_written} layers written, {result.layers_reused} reused)"
        )
    if sboms:
        say(f"wrote SBOMs {', '.join(str(p) for p in sboms)}")
    if engine:
        say(f"loaded into {engine} as {qualified(tag)}")
    for line in pushed:
        say(line)
    if signing_key is not None or args.provenance is not None:
        from distill.sign.provenance import Invocation

        run = Invocation(
            spec, path, lock, lock_file if lock_file.is_file() else None, args.variant, archs, tag,
            started, datetime.now(UTC), opts.source_date_epoch,
        )  # fmt: skip
        sbom_name = tag.rpartition(":")[0] or name
        for line in sign_build(args, result, run, signing_key, push_refs, output, settings, opts, sbom_name):
            say(line)
    for pin in pins[:-1]:
        say(pin)
    print(pins[-1] if pins else result.digest)
    return 0


def _signing_key(args: argparse.Namespace) -> Any:
    """The private key --sign uses, opened (and its password asked) before the build."""
    if args.key is not None and not args.sign:
        raise SpecError("--key is for --sign", hint="add --sign, or leave --key out")
    if not args.sign:
        if args.no_provenance or args.identity:
            raise SpecError("--no-provenance and --identity go with --sign")
        return None
    if args.key is None:
        raise SpecError("--sign needs --key KEY (a cosign-format private key: distill keygen makes one)")
    if not args.push and (args.output is None or args.output.suffix == ".tar"):
        raise SpecError("--sign signs a pushed image (--push REF) or an OCI layout (-o DIR)")
    from distill.sign.keys import load_private

    return load_private(args.key)


def sign_build(
    args: argparse.Namespace,
    result: Any,
    run: Any,
    key: Any,
    refs: list[Any],
    output: Path,
    settings: RegistrySettings,
    opts: Any,
    sbom_name: str,
) -> list[str]:
    """Sign what the build made (every pushed repository, and a layout -o DIR), attach its
    SLSA provenance to the index and each platform, and each platform's SBOMs (SPDX and
    CycloneDX, unless --no-sbom) to that platform; write the provenance to --provenance
    FILE. Lines to print."""
    from distill.output import write_output
    from distill.sign import dsse, image, provenance

    predicate = provenance.predicate(result, run)
    lines: list[str] = []
    if args.provenance is not None:
        name = refs[0].name if refs else (args.identity or run.tag or "image")
        statement = dsse.statement(
            [(name, d) for d in provenance.subjects(result)], provenance.PREDICATE_TYPE, predicate
        )
        write_output(args.provenance, statement + b"\n", "the provenance")
        lines.append(f"wrote the SLSA provenance to {args.provenance}")
    if key is None:
        return lines
    targets = [f"{r.name}@{result.digest}" for r in {(r.registry, r.repository): r for r in refs}.values()]
    if args.output is not None and output.suffix != ".tar" and output.is_dir():
        targets.append(str(output))
    sboms = []
    if not args.no_sbom:
        from distill.cli.sbom import build_sboms

        sboms = build_sboms(result, run.lock, opts, sbom_name)  # kept in the cache: read back
    sbom_types = (("spdx", "https://spdx.dev/Document"), ("cyclonedx", "https://cyclonedx.org/bom"))
    for text in targets:
        identity = args.identity if text == str(output) else None
        with image.open_target(text, settings, identity) as target:
            signed = image.sign(target, key)
            lines.append(
                f"signed {target.name}: {len(signed)} manifests ({', '.join(s.entry.label for s in signed)})"
            )
            if not args.no_provenance:
                done = image.attest(target, key, provenance.PREDICATE_TYPE, predicate, entries=target.entries)
                lines.append(
                    f"attested {target.name}: SLSA provenance on {sum(1 for a in done if a.written)} manifests"
                )
            by_digest = {e.digest: e for e in target.entries}
            count = 0
            for doc in sboms:
                entry = by_digest.get(doc.manifest_digest)
                assert entry is not None, doc.manifest_digest  # the SBOMs are of this image
                for fmt, ptype in sbom_types:
                    done = image.attest(target, key, ptype, json.loads(doc.data(fmt)), entries=[entry])
                    count += sum(1 for a in done if a.written)
            if sboms:
                lines.append(f"attested {target.name}: SPDX and CycloneDX SBOMs ({count} attestations)")
    return lines
