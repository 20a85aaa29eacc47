"""Sign, verify and attest an image: a registry reference or an OCI layout.

Signing an index signs the index and every platform manifest in it (podman and
skopeo verify the platform they pull: each needs its own ``.sig``; cosign's
``--recursive``). Verifying checks the same set: each must carry a signature by the
key whose payload names its own digest and the expected repository.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from distill.errors import DistillError, ImageError, VerificationError
from distill.oci import attach
from distill.oci.attach import Layer, LayoutStore, RegistryStore, Store
from distill.oci.image import INDEX, Descriptor
from distill.oci.ref import Reference, parse_reference
from distill.oci.registry import Registry, RegistrySettings
from distill.oci.schema import Index, check
from distill.oci.source import DOCKER_LIST, INDEXES, MANIFESTS, MAX_DOCUMENT, Document, parse_json, split_ref
from distill.sign import dsse, keys, payload

MAX_ENTRIES = 256  # platform manifests of one index that are signed or verified
CONTAINERD_NAME = "io.containerd.image.name"


@dataclass(frozen=True)
class Entry:
    """One manifest that is signed: the top one, or a platform of an index."""

    digest: str
    media_type: str
    size: int
    platform: str | None = None  # os/arch[/variant] of an index entry

    @property
    def label(self) -> str:
        return self.platform or ("index" if self.media_type in INDEXES else "image")


@dataclass
class Target:
    """An image to sign or verify, and where its attachments go."""

    name: str
    store: Store
    top: Document
    identity: str | None  # the repository signatures name (docker-reference)
    layout: bool
    location: str  # HOST/REPO, or the layout as named
    entries: list[Entry] = field(default_factory=list)  # the top one first

    @property
    def digest(self) -> str:
        assert self.top.digest is not None
        return self.top.digest

    def pin(self) -> str:
        """Where the image is, by digest: HOST/REPO@sha256:… (a layout: DIR@sha256:…)."""
        return f"{self.location}@{self.digest}"


def _entries(store: Store, top: Document) -> list[Entry]:
    assert top.digest is not None
    out = [Entry(top.digest, top.media_type, len(top.data))]
    todo = [(top, 0)]
    seen = {top.digest}
    while todo:
        doc, depth = todo.pop(0)
        if doc.media_type not in INDEXES and "manifests" not in parse_json(doc.data, store.name):
            continue
        what = f"{store.name}@{doc.digest}"
        index = check(Index, parse_json(doc.data, what), label=what, error=ImageError)
        for m in index.manifests:
            if m.digest in seen or m.size is None:
                continue
            seen.add(m.digest)
            if len(out) > MAX_ENTRIES:
                raise ImageError(f"{what} lists more than {MAX_ENTRIES} manifests")
            p = m.platform
            plat = "/".join(x for x in (p.os, p.architecture, p.variant) if x) if p is not None else None
            out.append(Entry(m.digest, m.mediaType, m.size, plat or None))
            if m.mediaType in (INDEX, DOCKER_LIST) and depth < 3:
                todo.append((store.document(m.digest), depth + 1))
    return out


def is_registry(text: str) -> bool:
    """Whether ``text`` names a registry image (``docker://…``, or HOST/REPO… that is no path)."""
    if text.startswith("docker://"):
        return True
    if text.startswith("oci:") or Path(split_ref(text)[0]).exists():
        return False
    try:
        parse_reference(text)
    except DistillError:
        return False
    return True


def _layout_top(store: LayoutStore, ref: str | None) -> tuple[Document, str | None]:
    entries = [m for m in store.entries() if not attach.is_attachment(m)]
    if ref is not None:
        entries = [
            m
            for m in entries
            if ref
            in (
                (m.get("annotations") or {}).get(attach.REF_NAME),
                (m.get("annotations") or {}).get(CONTAINERD_NAME),
            )
        ]
    if len(entries) != 1:
        have = "no image" if not entries else f"{len(entries)} images"
        raise ImageError(
            f"{store.name} holds {have}{f' named {ref!r}' if ref else ''}",
            hint="name one: DIR:REF (its org.opencontainers.image.ref.name)",
        )
    entry = entries[0]
    doc = store.document(entry["digest"])
    name = (entry.get("annotations") or {}).get(CONTAINERD_NAME)
    identity = None
    if isinstance(name, str) and name:
        base, sep, tag = name.rpartition(":")
        identity = base if sep and "/" not in tag else name
    return doc, identity


@contextmanager
def open_target(
    text: str, settings: RegistrySettings | None = None, identity: str | None = None
) -> Iterator[Target]:
    """The image ``text`` names: ``[docker://]HOST/REPO[:TAG|@DIGEST]`` or ``[oci:]DIR[:REF]``."""
    if is_registry(text):
        ref: Reference = parse_reference(text, what="an image reference")
        registry = Registry(ref.registry, settings, ref.name)
        try:
            rstore = RegistryStore(registry, ref.repository)
            top = registry.get_manifest(ref.repository, ref.reference, str(ref))
            if top.media_type not in (*INDEXES, *MANIFESTS):
                raise ImageError(f"{ref}: unsupported media type {top.media_type[:80]!r}")
            target = Target(str(ref), rstore, top, identity or ref.name, False, ref.name)
            target.entries = _entries(rstore, top)
            yield target
        finally:
            registry.close()
        return
    path, layout_ref = split_ref(text.removeprefix("oci:"))
    if not path.is_dir():
        raise ImageError(
            f"{text}: no such image layout or registry reference",
            hint="sign HOST[:PORT]/REPO[:TAG] (a registry) or DIR[:REF] (an OCI layout)",
        )
    lstore = LayoutStore(path, text)
    top, own = _layout_top(lstore, layout_ref)
    target = Target(text, lstore, top, identity or own, True, str(path))
    target.entries = _entries(lstore, top)
    yield target


# -- signatures ---------------------------------------------------------------------


@dataclass(frozen=True)
class Signed:
    entry: Entry
    written: bool  # False: a signature by this key over this payload was already there


def _b64sig(layer: Layer) -> bytes | None:
    value = layer.annotations.get(attach.SIGNATURE_ANNOTATION)
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error:
        return None


def _parallel(target: Target, work: Callable[[Entry], Any]) -> list[Any]:
    # A registry answers several requests at once; a layout's index.json is one file.
    if target.layout or len(target.entries) == 1:
        return [work(e) for e in target.entries]
    with ThreadPoolExecutor(max_workers=min(8, len(target.entries))) as pool:
        return list(pool.map(work, target.entries))


def sign(
    target: Target, key: ec.EllipticCurvePrivateKey, annotations: dict[str, str] | None = None
) -> list[Signed]:
    """Sign the top manifest and every platform manifest (cosign's ``--recursive``)."""
    if not target.identity:
        raise ImageError(
            f"{target.name}: the layout names no image, so there is no repository to sign for",
            hint="--identity HOST/REPO (where the image will be pulled from)",
        )
    identity = target.identity
    public = key.public_key()

    def one(entry: Entry) -> Signed:
        body = payload.make(identity, entry.digest, annotations)
        sig = base64.b64encode(keys.sign(key, body)).decode()
        layer = Layer(payload.MEDIA_TYPE, body, {attach.SIGNATURE_ANNOTATION: sig})

        def duplicate(existing: Layer) -> bool:
            raw = _b64sig(existing)
            return existing.data == body and raw is not None and keys.verify(public, raw, body)

        kind = attach.KIND_SIGS if target.layout and entry.digest == target.digest else None
        written = attach.append_layer(
            target.store, attach.tag_of(entry.digest, "sig"), layer, duplicate=duplicate, kind=kind
        )
        return Signed(entry, written)

    done = _parallel(target, one)
    _mark_layout(target)
    return done


def _mark_layout(target: Target) -> None:
    if isinstance(target.store, LayoutStore):
        kind = attach.KIND_INDEX if target.top.media_type in INDEXES else attach.KIND_IMAGE
        with target.store.locked():
            target.store.mark_image(target.digest, kind)


@dataclass(frozen=True)
class Verified:
    entry: Entry
    identity: str
    optional: dict[str, Any] | None


def _check_signature(
    target: Target,
    entry: Entry,
    layers: list[Layer],
    key: ec.EllipticCurvePublicKey,
    identity: str | None,
    annotations: dict[str, str] | None,
) -> Verified:
    where = f"{target.name} ({entry.label} {entry.digest})"
    if not layers:
        raise VerificationError(
            f"{where}: no signature (nothing tagged {attach.tag_of(entry.digest, 'sig')})"
        )
    reasons: list[str] = []
    for layer in layers:
        raw = _b64sig(layer)
        if raw is None or not keys.verify(key, raw, layer.data):
            reasons.append("not signed by this key")
            continue
        try:
            claims = payload.parse(layer.data, where)
        except VerificationError as exc:
            reasons.append(exc.message.removeprefix(f"{where}: "))
            continue
        if claims.digest != entry.digest:
            reasons.append(f"a signature by this key is over another digest ({claims.digest})")
            continue
        if identity is not None and _repository(claims.identity) != identity:
            reasons.append(f"a signature by this key is for another repository ({claims.identity[:200]})")
            continue
        optional = claims.optional or {}
        if annotations and any(str(optional.get(k)) != v for k, v in annotations.items()):
            reasons.append("a signature by this key lacks the annotations asked for")
            continue
        return Verified(entry, claims.identity, claims.optional)
    # The most telling reason: one about a signature by the key, else "not by this key".
    best = next((r for r in reasons if r != "not signed by this key"), reasons[0])
    count = f"{len(layers)} signature{'s' if len(layers) != 1 else ''}"
    raise VerificationError(f"{where}: {count}, none valid: {best}")


def _repository(reference: str) -> str:
    """The repository a signed docker-reference names (skopeo signs HOST/REPO:TAG, cosign
    HOST/REPO; containers/image's matchRepository compares the repositories)."""
    try:
        return parse_reference(reference).name
    except DistillError:
        return reference


def verify(
    target: Target,
    key: ec.EllipticCurvePublicKey,
    *,
    identity: str | None = None,
    annotations: dict[str, str] | None = None,
) -> list[Verified]:
    """Check the signatures of the top manifest and every platform manifest: each one
    needs a signature by ``key`` over its own digest, for ``identity`` (when given)."""

    def one(entry: Entry) -> Verified:
        layers = attach.read_layers(target.store, attach.tag_of(entry.digest, "sig"), payload.MEDIA_TYPE)
        return _check_signature(target, entry, layers, key, identity, annotations)

    return _parallel(target, one)


# -- attestations -------------------------------------------------------------------


@dataclass(frozen=True)
class Attested:
    entry: Entry
    predicate_type: str
    written: bool
    referrer: str | None  # the referrer manifest's digest
    referrers_api: bool  # the registry's referrers API took it (else the fallback tag)


def attest(
    target: Target,
    key: ec.EllipticCurvePrivateKey,
    predicate_type: str,
    predicate: Any,
    *,
    entries: list[Entry] | None = None,
    replace: bool = False,
    referrers: bool = True,
) -> list[Attested]:
    """Attach an in-toto Statement about ``entries`` (default: the top manifest) to each
    of them: cosign's ``.att`` tag and an OCI 1.1 referrer."""
    chosen = entries or target.entries[:1]
    name = target.identity or target.name
    body = dsse.statement([(name, e.digest) for e in chosen], predicate_type, predicate)
    envelope = dsse.envelope(key, body)
    public = key.public_key()
    annotations = {attach.PREDICATE_ANNOTATION: predicate_type, attach.SIGNATURE_ANNOTATION: ""}
    layer = Layer(dsse.MEDIA_TYPE, envelope, annotations)

    def same_statement(existing: Layer) -> bool:
        try:
            st = dsse.open_envelope(existing.data, public, "an attestation")
        except VerificationError:
            return False
        return st.body == body

    def replaced(existing: Layer) -> bool:
        return replace and existing.annotations.get(attach.PREDICATE_ANNOTATION) == predicate_type

    out = []
    for entry in chosen:
        kind = attach.KIND_ATTS if target.layout and entry.digest == target.digest else None
        written = attach.append_layer(
            target.store,
            attach.tag_of(entry.digest, "att"),
            layer,
            duplicate=same_statement,
            replace=replaced,
            kind=kind,
        )
        digest, api = None, False
        if written and referrers:
            subject = Descriptor(entry.media_type, entry.digest, entry.size)
            ref_layer = Layer(dsse.MEDIA_TYPE, envelope, {attach.INTOTO_PREDICATE: predicate_type})
            digest, api = attach.add_referrer(
                target.store,
                subject,
                attach.INTOTO_ARTIFACT,
                ref_layer,
                {attach.INTOTO_PREDICATE: predicate_type},
            )
        out.append(Attested(entry, predicate_type, written, digest, api))
    _mark_layout(target)
    return out


def verify_attestations(
    target: Target,
    key: ec.EllipticCurvePublicKey,
    *,
    predicate_type: str | None = None,
    entry: Entry | None = None,
) -> list[dsse.Statement]:
    """The Statements about ``entry`` (default: the top manifest) signed by ``key``,
    from its ``.att`` tag and its referrers; none valid is a :class:`VerificationError`."""
    entry = entry or target.entries[0]
    where = f"{target.name} ({entry.label} {entry.digest})"
    layers = attach.read_layers(target.store, attach.tag_of(entry.digest, "att"), dsse.MEDIA_TYPE)
    layers += attach.referrer_layers(target.store, entry.digest, attach.INTOTO_ARTIFACT, dsse.MEDIA_TYPE)
    if not layers:
        raise VerificationError(
            f"{where}: no attestation (no {attach.tag_of(entry.digest, 'att')}, no referrer)"
        )
    good: dict[bytes, dsse.Statement] = {}
    reasons: list[str] = []
    for layer in layers:
        try:
            st = dsse.open_envelope(layer.data, key, where)
        except VerificationError as exc:
            reasons.append(exc.message.removeprefix(f"{where}: "))
            continue
        if entry.digest not in {d for _, d in st.subjects}:
            reasons.append("an attestation by this key is about another digest")
            continue
        if predicate_type is not None and st.predicate_type != predicate_type:
            reasons.append(f"no attestation by this key of type {predicate_type}")
            continue
        good.setdefault(st.body, st)
    if not good:
        best = next((r for r in reasons if "verifies with the key" not in r), reasons[0])
        raise VerificationError(f"{where}: {len(layers)} attestation(s), none valid: {best}")
    return list(good.values())


def read_predicate(path: Path) -> Any:
    """A predicate file (JSON: an SBOM that syft or distill wrote, a provenance document)."""
    from distill.limits import read_json

    doc = read_json(path, dsse.MAX_ENVELOPE // 2, error=DistillError, what="predicate")
    return doc


__all__ = [
    "MAX_DOCUMENT",
    "Attested",
    "Entry",
    "Signed",
    "Target",
    "Verified",
    "attest",
    "is_registry",
    "open_target",
    "read_predicate",
    "sign",
    "verify",
    "verify_attestations",
]
