"""Fuzzing every parser of untrusted bytes: each returns a value or raises distill's own
error (DistillError, which the command line prints as one line and exit 2), never
another exception, and within a deadline.

Inputs are the seed corpus in tests/fuzz_corpus/<parser>/ (valid and tricky files, each
run once as it is; the audit's corpus in tests/audit_corpus/ too), those seeds mutated by hypothesis (bytes overwritten, inserted,
cut), and, for the JSON and YAML documents, values hypothesis builds itself.
derandomize=True: the same examples on every run, so CI is reproducible
(DISTILL_FUZZ_SCALE=N runs N times as many).

Not fuzzed here: requirements files and package-lock.json. distill.app has no pure parse
function for them today (both are read as part of installing, from a project directory),
and distill.app is being reworked separately.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from distill.errors import DistillError

CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"
# DISTILL_FUZZ_SCALE=20 runs twenty times the examples (a longer hunt, outside CI).
SCALE = int(os.environ.get("DISTILL_FUZZ_SCALE", "1"))


# The audit's own corpus of Dockerfiles and manifests seeds those two parsers as well.
AUDIT_CORPUS = Path(__file__).resolve().parent / "audit_corpus"
_EXTRA = {
    "dockerfile": lambda p: p.suffix != ".yaml",
    "kube": lambda p: p.suffix == ".yaml",
}


def seed_files(kind: str) -> list[Path]:
    files = sorted(p for p in (CORPUS / kind).iterdir() if p.is_file())
    if kind in _EXTRA:
        files += sorted(p for p in AUDIT_CORPUS.rglob("*") if p.is_file() and _EXTRA[kind](p))
    return files


def seeds(kind: str) -> list[bytes]:
    return [p.read_bytes() for p in seed_files(kind)]


def fuzz(examples: int, seconds: float = 2.0) -> Callable[[Any], Any]:
    return settings(
        max_examples=examples * SCALE,
        deadline=timedelta(seconds=seconds),
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@st.composite
def mutated(draw: st.DrawFn, corpus: list[bytes]) -> bytes:
    """A seed with a few bytes overwritten, inserted or cut."""
    data = bytearray(draw(st.sampled_from(corpus)))
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        op = draw(st.sampled_from(["set", "insert", "cut"]))
        chunk = draw(st.binary(min_size=1, max_size=8))
        if op == "set":
            data[at : at + len(chunk)] = chunk
        elif op == "insert":
            data[at:at] = chunk
        else:
            del data[at : at + draw(st.integers(1, 64))]
    return bytes(data)


def inputs(kind: str) -> st.SearchStrategy[bytes]:
    return st.one_of(mutated(seeds(kind)), st.binary(max_size=512))


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)


@st.composite
def json_edit(draw: st.DrawFn, doc: Any) -> Any:
    """``doc`` with one value somewhere in it replaced by an arbitrary JSON value."""
    doc = json.loads(json.dumps(doc))
    node = doc
    while True:
        keys: list[Any] = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys:
            return draw(JSON)
        key = draw(st.sampled_from(keys))
        child = node[key]
        if isinstance(child, dict | list) and child and draw(st.booleans()):
            node = child
            continue
        node[key] = draw(JSON)
        return doc


def accepts(call: Callable[[], object]) -> None:
    """The property: a value, or a DistillError; any other exception fails the test."""
    with suppress(DistillError):
        call()


@contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="distill-fuzz-") as d:
        yield Path(d)


def _kinds(*kinds: str) -> list[tuple[str, Path]]:
    return [(k, p) for k in kinds for p in seed_files(k)]


# -- the parsers, each from bytes ---------------------------------------------------------


def from_file(name: str, data: bytes, read: Callable[[Path], object]) -> None:
    """``read`` of a file ``name`` holding ``data`` (the parsers that take a path)."""
    with scratch() as d:
        (d / name).write_bytes(data)
        accepts(lambda: read(d / name))


def parse_spec(data: bytes) -> None:
    from distill.spec.load import load_spec

    from_file("spec.yaml", data, load_spec)


def parse_lock(data: bytes) -> None:
    from distill.resolve.lock import read_lock

    from_file("x.lock.json", data, read_lock)


def parse_deb822(data: bytes) -> None:
    from distill.debian.deb822 import paragraph_at, parse_file, scan_index
    from distill.debian.packages import package_from_fields
    from distill.debian.relation import parse_relations
    from distill.debian.release import parse_release
    from distill.debian.version import compare_versions

    def run() -> None:
        for fields in parse_file(data):
            accepts(lambda f=fields: package_from_fields(f, "stable", "main"))
            for value in fields.values():
                accepts(lambda v=value: parse_relations(v))
                accepts(lambda v=value: compare_versions(v, "1.0-1"))
        by_name, _ = scan_index(data)
        for offsets in by_name.values():
            for offset in offsets:
                paragraph_at(data, offset)
        parse_release(data.decode("utf-8", "replace"))

    accepts(run)


def parse_deb(data: bytes) -> None:
    from distill.debian.deb import open_deb

    with scratch() as d:
        (d / "p.deb").write_bytes(data)

        def run() -> None:
            deb = open_deb(d / "p.deb")
            accepts(deb.control)
            accepts(lambda: list(deb.data()))

        accepts(run)


def parse_layer(data: bytes) -> None:
    """A layer of an image, through the audit's scan and the build's read_tree."""
    from distill.audit.image import audit_image
    from distill.oci import read
    from distill.oci.source import LayoutSource
    from ocitools import write_layout

    with scratch() as d:
        write_layout(d / "img", [data], gz=False)
        source = LayoutSource(d / "img", None, "img")
        accepts(lambda: audit_image(source, None))
        accepts(lambda: read.read_tree(source, source.image("amd64")))


def oci_layout(root: Path, index: bytes, manifest: bytes, config: bytes) -> Path:
    """A layout of the three documents; the seeds' placeholder digest "e"*64 names the next one down."""
    import hashlib

    (root / "blobs" / "sha256").mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')

    def blob(data: bytes) -> bytes:
        digest = hashlib.sha256(data).hexdigest()
        (root / "blobs" / "sha256" / digest).write_bytes(data)
        return digest.encode()

    man = blob(manifest.replace(b"e" * 64, blob(config)))
    (root / "index.json").write_bytes(index.replace(b"e" * 64, man))
    return root


def parse_oci(index: bytes, manifest: bytes, config: bytes) -> None:
    """index.json, a manifest and a config, through the layout source (for the build's platform and the audit's default)."""
    from distill.oci.source import LayoutSource

    with scratch() as d:
        root = oci_layout(d / "img", index, manifest, config)
        accepts(lambda: LayoutSource(root, None, "img").image("amd64"))
        accepts(lambda: LayoutSource(root, None, "img").image(None))


def parse_docker_archive(manifest: bytes) -> None:
    """A docker-save archive's manifest.json, through the audit's archive reader and scan."""
    import io
    import tarfile

    from distill.audit.image import audit_image
    from distill.oci.source import ArchiveSource

    with scratch() as d:
        with tarfile.open(d / "image.tar", "w") as tf:
            for name, data in (
                ("manifest.json", manifest),
                ("cfg.json", (CORPUS / "oci" / "docker-config.json").read_bytes()),
                ("layer.tar", (CORPUS / "tar" / "layer.tar").read_bytes()),
            ):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))

        def run() -> None:
            source = ArchiveSource(d / "image.tar", None, "image.tar")
            try:
                audit_image(source, "amd64")
            finally:
                source.close()

        accepts(run)


def parse_dockerfile(data: bytes) -> None:
    from distill.audit.dockerfile import audit_dockerfile

    from_file("Dockerfile", data, audit_dockerfile)


def parse_kube(data: bytes) -> None:
    from distill.audit.kube import audit_manifest

    from_file("m.yaml", data, audit_manifest)


def parse_requirements(data: bytes) -> None:
    from distill.app.pyreq import scan

    from_file("requirements.txt", data, scan)


def parse_package_lock(data: bytes) -> None:
    """The lockfile as `node.install` reads it: entries filtered by os/cpu/libc, their
    places checked, engines compared; offline with an empty cache it stops at the cache."""

    from distill.app.node import install
    from distill.progress import Reporter

    with scratch() as d:
        (d / "package-lock.json").write_bytes(data)
        accepts(lambda: install(d, "amd64", d / "cache", True, Reporter(), "20.19.2"))


PARSERS: dict[str, Callable[[bytes], None]] = {
    "spec": parse_spec,
    "lock": parse_lock,
    "deb822": parse_deb822,
    "deb": parse_deb,
    "tar": parse_layer,
    "dockerfile": parse_dockerfile,
    "kube": parse_kube,
    "requirements": parse_requirements,
    "npm": parse_package_lock,
}


@pytest.mark.parametrize("kind, path", _kinds(*PARSERS), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_every_seed(kind: str, path: Path) -> None:
    PARSERS[kind](path.read_bytes())


def _oci_seed(name: str) -> bytes:
    return (CORPUS / "oci" / name).read_bytes()


def test_oci_seeds() -> None:
    """The seeds are valid: the fuzzing starts from documents both readers accept."""
    from distill.oci.source import LayoutSource

    index, manifest, config = (_oci_seed(n) for n in ("index.json", "manifest.json", "config.json"))
    with scratch() as d:
        root = oci_layout(d / "img", index, manifest, config)
        assert LayoutSource(root, None, "img").image("amd64").config["config"]["User"] == "65532"
        assert LayoutSource(root, None, "img").image(None).config["architecture"] == "amd64"
    parse_oci(_oci_seed("docker-list.json"), manifest, config)


# -- hypothesis ------------------------------------------------------------------------


def _yaml_doc(value: Any) -> bytes:
    flow = len(json.dumps(value)) % 2 == 1  # both styles, deterministically
    return yaml.safe_dump(value, default_flow_style=flow).encode()


@fuzz(300)
@given(st.one_of(inputs("spec"), JSON.map(_yaml_doc)))
def test_fuzz_spec(data: bytes) -> None:
    parse_spec(data)


@fuzz(300)
@given(
    st.one_of(
        inputs("lock"),
        json_edit(json.loads((CORPUS / "lock" / "valid.lock.json").read_bytes())).map(
            lambda v: json.dumps(v).encode()
        ),
    )
)
def test_fuzz_lock(data: bytes) -> None:
    parse_lock(data)


@fuzz(500)
@given(inputs("deb822"))
def test_fuzz_deb822(data: bytes) -> None:
    parse_deb822(data)


@fuzz(300)
@given(inputs("deb"))
def test_fuzz_deb(data: bytes) -> None:
    parse_deb(data)


@fuzz(200, seconds=3)
@given(inputs("tar"))
def test_fuzz_layer_tar(data: bytes) -> None:
    parse_layer(data)


_DOCS = {n: json.loads(_oci_seed(n)) for n in ("index.json", "manifest.json", "config.json")}


@st.composite
def oci_documents(draw: st.DrawFn) -> tuple[bytes, bytes, bytes]:
    """The three documents, one of them edited (a value replaced, or bytes mutated)."""
    docs = [json.dumps(_DOCS[n]).encode() for n in ("index.json", "manifest.json", "config.json")]
    which = draw(st.integers(0, 2))
    name = ("index.json", "manifest.json", "config.json")[which]
    docs[which] = draw(
        st.one_of(
            json_edit(_DOCS[name]).map(lambda v: json.dumps(v).encode()),
            mutated([docs[which]]),
            JSON.map(lambda v: json.dumps(v).encode()),
        )
    )
    return docs[0], docs[1], docs[2]


@fuzz(400)
@given(oci_documents())
def test_fuzz_oci_json(docs: tuple[bytes, bytes, bytes]) -> None:
    parse_oci(*docs)


_DOCKER_MANIFEST = (CORPUS / "oci" / "docker-manifest.json").read_bytes()


def test_docker_archive_seed() -> None:
    parse_docker_archive(_DOCKER_MANIFEST)


@fuzz(200)
@given(
    st.one_of(
        json_edit(json.loads(_DOCKER_MANIFEST)).map(lambda v: json.dumps(v).encode()),
        mutated([_DOCKER_MANIFEST]),
    )
)
def test_fuzz_docker_archive(manifest: bytes) -> None:
    parse_docker_archive(manifest)


@fuzz(300)
@given(inputs("dockerfile"))
def test_fuzz_dockerfile(data: bytes) -> None:
    parse_dockerfile(data)


@fuzz(300)
@given(st.one_of(inputs("kube"), JSON.map(_yaml_doc)))
def test_fuzz_kube(data: bytes) -> None:
    parse_kube(data)


@fuzz(300)
@given(inputs("requirements"))
@example(b"numpy==2.1.0\n-c\x00constraints.txt\n")  # found by this test: a ValueError from the OS path
def test_fuzz_requirements(data: bytes) -> None:
    parse_requirements(data)


_NPM_LOCK = json.loads((CORPUS / "npm" / "package-lock.json").read_bytes())


@fuzz(300)
@given(
    st.one_of(
        json_edit(_NPM_LOCK).map(lambda v: json.dumps(v).encode()),
        inputs("npm"),
    )
)
def test_fuzz_package_lock(data: bytes) -> None:
    parse_package_lock(data)


@fuzz(300)
@given(st.text(max_size=40), st.text(max_size=60))
def test_fuzz_node_ranges(version: str, spec: str) -> None:
    from distill.app.node import satisfies

    assert satisfies(version, spec) in (True, False, None)
