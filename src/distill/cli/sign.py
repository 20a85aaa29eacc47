"""``distill keygen``, ``sign``, ``verify``, ``attest``, ``verify-attestation``:
cosign-compatible key pairs, signatures and attestations (docs/signing.md)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from distill.cli.common import Subparsers, add_registry, registry_settings
from distill.errors import SigningError, SpecError

EXIT_VERIFY = 1  # a verification that failed (2: one that could not be done)
_EXIT_NOTE = (
    "Exit status: 0 verified, 1 verification failed (no signature, none by the key, "
    "one over another digest or repository, a tampered envelope), 2 an error (one line)."
)
_PASSWORD = "The password is read from DISTILL_PASSWORD, else COSIGN_PASSWORD, else asked on the terminal."


def register(sub: Subparsers) -> None:
    p = sub.add_parser(
        "keygen",
        help="make a cosign-format key pair (distill.key, distill.pub)",
        description="Write an ECDSA P-256 key pair as cosign does: PREFIX.pub (PEM PUBLIC KEY) and PREFIX.key "
        "(ENCRYPTED SIGSTORE PRIVATE KEY: scrypt + nacl/secretbox). cosign, skopeo and podman read them. "
        + _PASSWORD,
    )
    p.add_argument(
        "--output-prefix",
        default="distill",
        metavar="PREFIX",
        help="write PREFIX.key and PREFIX.pub (default: distill)",
    )
    p.add_argument("--force", action="store_true", help="replace key files that exist")
    p.set_defaults(func=cmd_keygen)

    p = sub.add_parser(
        "sign",
        help="sign an image in a registry or an OCI layout (cosign's .sig)",
        description="Sign IMAGE (HOST[:PORT]/REPO[:TAG|@DIGEST], or an OCI layout DIR[:REF]) with a cosign "
        "key: the index and every platform manifest in it each get a signature under the tag "
        "sha256-<hex>.sig, as cosign stores them (podman, skopeo and cosign verify them). A layout "
        "keeps them as index.json entries named by those tags. " + _PASSWORD,
        epilog="The last line of stdout is the signed image as HOST/REPO@sha256:... (or DIR@sha256:...).",
    )
    _image_args(p, "private")
    p.add_argument(
        "--identity",
        metavar="HOST/REPO",
        help="the repository the signatures name (default: the reference's; for a layout, its image name)",
    )
    _annotations(p)
    p.set_defaults(func=cmd_sign)

    p = sub.add_parser(
        "verify",
        help="verify an image's signatures with a public key",
        description="Check that IMAGE and every platform manifest in it carry a signature by KEY whose "
        "payload names that manifest's digest and the image's repository (--identity to expect "
        "another).",
        epilog=_EXIT_NOTE,
    )
    _image_args(p, "public")
    p.add_argument(
        "--identity",
        metavar="HOST/REPO",
        help="the repository the signatures must name (default: the reference's; a layout: not checked)",
    )
    _annotations(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "attest",
        help="attach a signed attestation (SBOM, SLSA provenance) to an image",
        description="Sign an in-toto Statement about IMAGE with a cosign key (a DSSE envelope) and attach "
        "it as cosign does (tag sha256-<hex>.att) and as an OCI 1.1 referrer (the registry's "
        "referrers API, else the sha256-<hex> tag schema). " + _PASSWORD,
    )
    _image_args(p, "private")
    p.add_argument(
        "--type",
        required=True,
        metavar="TYPE",
        help="spdx, cyclonedx, slsaprovenance (v1), openvex, ... or a predicate type URI",
    )
    p.add_argument(
        "--predicate", type=Path, metavar="FILE", help="the predicate: a JSON file (an SBOM, a provenance)"
    )
    p.add_argument("--replace", action="store_true", help="drop attestations of the same type first")
    p.add_argument("--no-referrers", action="store_true", help="only cosign's .att tag, no OCI 1.1 referrer")
    p.set_defaults(func=cmd_attest)

    p = sub.add_parser(
        "verify-attestation",
        help="verify an image's attestations with a public key",
        description="Check the attestations of IMAGE (its .att tag and its referrers): at least one signed "
        "by KEY, about the image's digest (of --type, when given). With --output the verified "
        "Statements are printed as JSON, one a line.",
        epilog=_EXIT_NOTE,
    )
    _image_args(p, "public")
    p.add_argument("--type", metavar="TYPE", help="only attestations of this predicate type")
    p.add_argument("--output", action="store_true", help="print each verified Statement (JSON, one a line)")
    p.set_defaults(func=cmd_verify_attestation)


def _image_args(p: argparse.ArgumentParser, which: str) -> None:
    p.add_argument(
        "image", metavar="IMAGE", help="HOST[:PORT]/REPO[:TAG|@DIGEST], or an OCI layout DIR[:REF]"
    )
    p.add_argument(
        "--key",
        type=Path,
        required=True,
        metavar="KEY",
        help="the private key (cosign format)" if which == "private" else "the public key (PEM)",
    )
    add_registry(p)


def _annotations(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-a",
        "--annotation",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a claim in the payload's 'optional' (sign), or one it must have (verify); repeatable",
    )


def parse_annotations(texts: list[str]) -> dict[str, str] | None:
    out = {}
    for t in texts:
        k, sep, v = t.partition("=")
        if not sep or not k:
            raise SpecError(f"--annotation {t[:80]!r} is not KEY=VALUE")
        out[k] = v
    return out or None


def _identity(text: str | None) -> str | None:
    if text is None:
        return None
    from distill.oci.ref import parse_reference

    ref = parse_reference(text, what="a repository (HOST/REPO)")
    if ref.digest or (ref.tag and ref.tag != "latest") or text.endswith(":latest"):
        raise SpecError(f"--identity {text[:80]!r}: a repository, without tag or digest")
    return ref.name


def cmd_keygen(args: argparse.Namespace) -> int:
    from distill.archive.cache import atomic_write
    from distill.sign import keys

    prefix = str(args.output_prefix)
    private, public = Path(prefix + ".key"), Path(prefix + ".pub")
    for path in (private, public):
        if (path.exists() or path.is_symlink()) and not args.force:
            raise SigningError(f"{path} exists", hint="--force to replace it, or --output-prefix")
        if not path.absolute().parent.is_dir():
            raise SigningError(f"cannot write {path}: {path.absolute().parent} is not a directory")
    pair = keys.key_pair(keys.password("the new key", confirm=True))
    try:
        atomic_write(private, pair.private_pem)
        os.chmod(private, 0o600)
        atomic_write(public, pair.public_pem)
        os.chmod(public, 0o644)
    except OSError as exc:
        raise SigningError(f"cannot write the key pair: {exc.strerror}") from None
    print(f"wrote {private} (private, keep it secret) and {public} (public)")
    return 0


def _public(path: Path) -> Any:
    from distill.sign import keys

    return keys.load_public(keys.read_key_file(path), f"key file {path}")


def cmd_sign(args: argparse.Namespace) -> int:
    from distill.sign import keys

    annotations = parse_annotations(args.annotation)
    identity = _identity(args.identity)
    settings = registry_settings(args)  # --password-stdin is read before the key's password
    key = keys.open_private_in_background(args.key)
    from distill.sign import image  # its imports (httpx, the registry client) beside the key's scrypt

    with image.open_target(args.image, settings, identity) as target:
        done = image.sign(target, key(), annotations)
        for s in done:
            state = "signed" if s.written else "already signed:"
            print(f"{state} {s.entry.label} {s.entry.digest} ({attach_tag(s.entry.digest, 'sig')})")
        print(target.pin())
    return 0


def attach_tag(digest: str, suffix: str) -> str:
    from distill.oci.attach import tag_of

    return tag_of(digest, suffix)


def cmd_verify(args: argparse.Namespace) -> int:
    from distill.sign import image

    annotations = parse_annotations(args.annotation)
    key = _public(args.key)
    with image.open_target(args.image, registry_settings(args)) as target:
        identity = _identity(args.identity) or (None if target.layout else target.identity)
        for v in image.verify(target, key, identity=identity, annotations=annotations):
            print(f"verified {v.entry.label} {v.entry.digest} (signed for {v.identity})")
        print(target.pin())
    return 0


def cmd_attest(args: argparse.Namespace) -> int:
    from distill.sign import dsse, image, keys

    ptype = dsse.predicate_type(args.type)
    predicate = image.read_predicate(args.predicate) if args.predicate is not None else None
    if predicate is None:
        default_predicates(args.type, ptype, None, args)  # refused before a password is asked
    key = keys.load_private(args.key)
    with image.open_target(args.image, registry_settings(args)) as target:
        work = (
            [(target.entries[:1], predicate)]
            if predicate is not None
            else default_predicates(args.type, ptype, target, args)
        )
        for entries, pred in work:
            done = image.attest(
                target,
                key,
                ptype,
                pred,
                entries=entries,
                replace=args.replace,
                referrers=not args.no_referrers,
            )
            for a in done:
                print(_attested_line(a, ptype))
        print(target.pin())
    return 0


def _attested_line(a: Any, ptype: str) -> str:
    if not a.written:
        return f"already attested: {a.entry.label} {a.entry.digest} ({ptype})"
    where = attach_tag(a.entry.digest, "att")
    if a.referrer:
        how = "referrers API" if a.referrers_api else f"fallback tag {attach_tag(a.entry.digest, '')}"
        where += f", referrer {a.referrer} ({how})"
    return f"attested {a.entry.label} {a.entry.digest}: {ptype} ({where})"


def default_predicates(
    kind: str, ptype: str, target: Any, args: argparse.Namespace
) -> list[tuple[list[Any], Any]]:
    """What is attested when no --predicate is given: (entries, predicate) pairs.

    An SBOM (spdx, cyclonedx) is distill's own (:func:`distill.sbom.documents`), one per
    platform, attached to that platform's manifest. ``target`` is None for the check
    made before the key's password is asked."""
    import json

    formats = {"https://spdx.dev/Document": "spdx", "https://cyclonedx.org/bom": "cyclonedx"}
    if ptype not in formats:
        raise SpecError(
            f"--type {kind} needs --predicate FILE",
            hint="SLSA provenance is written by the build itself: distill build ... --push REF --sign --key KEY",
        )
    if target is None:
        return []
    from distill.sbom import documents

    text = args.image
    if not target.layout and not text.startswith("docker://"):
        text = f"docker://{text}"
    elif target.layout and not text.startswith("oci:"):
        text = f"oci:{text}"
    by_digest = {e.digest: e for e in target.entries}
    out: list[tuple[list[Any], Any]] = []
    for doc in documents(text, settings=registry_settings(args)):
        entry = by_digest.get(doc.manifest_digest)
        if entry is None:  # cannot be: the documents were made from this image
            raise SpecError(f"{args.image}: the SBOM of {doc.manifest_digest} names no image of the target")
        out.append(([entry], json.loads(doc.data(formats[ptype]))))
    return out


def cmd_verify_attestation(args: argparse.Namespace) -> int:
    from distill.sign import dsse, image

    ptype = dsse.predicate_type(args.type) if args.type else None
    key = _public(args.key)
    with image.open_target(args.image, registry_settings(args)) as target:
        statements = image.verify_attestations(target, key, predicate_type=ptype)
        for st in statements:
            if args.output:
                sys.stdout.write(st.body.decode() + "\n")
            else:
                print(f"verified attestation {st.predicate_type} about {target.digest}")
        if not args.output:
            print(target.pin())
    return 0
