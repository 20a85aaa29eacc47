"""Signatures, attestations and provenance (docs/signing.md).

Unit tests of the formats (cosign's key file, the simple-signing payload, DSSE), then
distill against a real registry (Debian's docker-registry on 127.0.0.1: no referrers
API, so the tag-schema fallback is what is used), and the interop matrix against real
clients: Debian 13's skopeo 1.18 and podman 5.4 (Debian 12's are built with sigstore
disabled), built here as a distill image and run in podman — skopeo copies and podman
pulls under a ``sigstoreSigned`` policy, for amd64 and arm64; skopeo signs with a key
distill made, and makes a key distill signs with.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from distill.errors import SigningError, VerificationError
from distill.oci import attach
from distill.oci.attach import Layer, RegistryStore
from distill.oci.registry import Registry as Client
from distill.sign import dsse, keys, payload
from hostile import one_error_line
from registries import Registry, sh

PASSWORD = "correct horse"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


def distill(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, password: str | None = PASSWORD
) -> subprocess.CompletedProcess[str]:
    e = dict(env or os.environ)
    e.pop("COSIGN_PASSWORD", None)
    e.pop("DISTILL_PASSWORD", None)
    if password is not None:
        e["DISTILL_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "distill", *args],
        env=e, cwd=cwd, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def ok(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def verify_failed(proc: subprocess.CompletedProcess[str]) -> str:
    """The one line of a verification that failed: exit status 1, no traceback."""
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("distill: verification failed: "), proc.stderr
    return lines[0]


# -- key files --------------------------------------------------------------------------


def _json_of(private_pem: bytes) -> dict[str, Any]:
    body = b"".join(private_pem.splitlines()[1:-1])
    return json.loads(base64.b64decode(body))  # type: ignore[no-any-return]


def _with_json(private_pem: bytes, doc: dict[str, Any], label: bytes = keys.SIGSTORE_PRIVATE) -> bytes:
    return keys._pem(label, json.dumps(doc).encode())


def test_key_pair_round_trip_in_cosign_format() -> None:
    pair = keys.key_pair(b"pw")
    lines = pair.private_pem.splitlines()
    assert lines[0] == b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"
    assert lines[-1] == b"-----END ENCRYPTED SIGSTORE PRIVATE KEY-----"
    assert all(len(line) <= 64 for line in lines[1:-1]) and len(lines[1]) == 64
    doc = _json_of(pair.private_pem)
    # go-securesystemslib's encrypted format, as cosign generate-key-pair writes it.
    assert list(doc) == ["kdf", "cipher", "ciphertext"]
    assert doc["kdf"]["name"] == "scrypt" and doc["kdf"]["params"] == {"N": 65536, "r": 8, "p": 1}
    assert len(base64.b64decode(doc["kdf"]["salt"])) == 32
    assert doc["cipher"]["name"] == "nacl/secretbox" and len(base64.b64decode(doc["cipher"]["nonce"])) == 24
    key = keys.decrypt_private(pair.private_pem, b"pw", "k")
    public = keys.load_public(pair.public_pem, "p")
    assert public.public_numbers() == key.public_key().public_numbers()
    assert pair.public_pem.startswith(b"-----BEGIN PUBLIC KEY-----\n")
    # The plaintext is PKCS#8; the signature DER ECDSA over SHA-256 (what cryptography checks).
    sig = keys.sign(key, b"data")
    public.verify(sig, b"data", ec.ECDSA(hashes.SHA256()))  # raises if not
    assert keys.verify(public, sig, b"data") and not keys.verify(public, sig, b"other")
    assert not keys.verify(public, b"\x30\x02junk", b"data")  # a malformed signature is just invalid
    # The other two parameter sets, and cosign's older block name, are read too.
    for n in (32768, 131072):
        other = keys.encrypt_private(key, b"", n)
        assert keys.decrypt_private(other, b"", "k").private_numbers() == key.private_numbers()
    older = pair.private_pem.replace(b"SIGSTORE", b"COSIGN")
    assert keys.decrypt_private(older, b"pw", "k").private_numbers() == key.private_numbers()


def test_bad_key_files_are_one_line_each() -> None:
    pair = keys.key_pair(b"pw")
    doc = _json_of(pair.private_pem)

    def refused(data: bytes, password: bytes = b"pw") -> str:
        with pytest.raises(SigningError) as exc:
            keys.decrypt_private(data, password, "key file k")
        return exc.value.one_line()

    assert "wrong password" in refused(pair.private_pem, b"nope")
    flipped = dict(doc, ciphertext=base64.b64encode(bytes([base64.b64decode(doc["ciphertext"])[0] ^ 1])
                                                    + base64.b64decode(doc["ciphertext"])[1:]).decode())  # fmt: skip
    assert "wrong password" in refused(_with_json(pair.private_pem, flipped))  # the MAC fails
    # Parameters are input: N = 2^20 would take a GiB; refused before any work.
    started = time.monotonic()
    huge = dict(doc, kdf=dict(doc["kdf"], params={"N": 1 << 20, "r": 8, "p": 1}))
    assert "unsupported scrypt parameters" in refused(_with_json(pair.private_pem, huge))
    assert time.monotonic() - started < 1
    assert "not a key file" in refused(b"hello")
    assert "not a key file" in refused(pair.public_pem)
    assert "not valid base64" in refused(
        b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nabc\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
    )
    assert "not valid JSON" in refused(keys._pem(keys.SIGSTORE_PRIVATE, b"{"))
    assert "nacl/secretbox" in refused(_with_json(pair.private_pem, dict(doc, cipher={"name": "aes"})))
    short = dict(doc, cipher=dict(doc["cipher"], nonce=base64.b64encode(b"x" * 12).decode()))
    assert "nonce" in refused(_with_json(pair.private_pem, short))
    # A key of another kind: P-384 (cosign can make one) and RSA are not what distill signs with.
    p384 = keys.encrypt_private(ec.generate_private_key(ec.SECP384R1()), b"pw")  # type: ignore[arg-type]
    assert "ECDSA secp384r1" in refused(p384)
    rsa_pub = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = rsa_pub.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    with pytest.raises(SigningError, match="RSA key"):
        keys.load_public(keys._pem(keys.PUBLIC, der), "key file p")
    with pytest.raises(SigningError, match="not a PKIX public key"):
        keys.load_public(keys._pem(keys.PUBLIC, b"\x30\x03abc"), "key file p")


# -- payloads and envelopes ---------------------------------------------------------------

DIGEST = "sha256:" + "ab" * 32


def test_payload_is_cosigns_and_parsed_as_containers_image_does() -> None:
    body = payload.make("127.0.0.1:5000/team/app", DIGEST)
    assert body == (
        b'{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/team/app"},"image":{"docker-manifest-digest":"'
        + DIGEST.encode()
        + b'"},"type":"cosign container image signature"},"optional":null}'
    )
    claims = payload.parse(body, "p")
    assert (claims.identity, claims.digest, claims.optional) == ("127.0.0.1:5000/team/app", DIGEST, None)
    annotated = payload.parse(payload.make("h:1/r", DIGEST, {"team": "a"}), "p")
    assert annotated.optional == {"team": "a"}
    good = json.loads(body)

    def refused(doc: Any) -> str:
        with pytest.raises(VerificationError) as exc:
            payload.parse(json.dumps(doc).encode(), "p")
        return exc.value.message

    assert "missing optional" in refused({"critical": good["critical"]})
    assert "unexpected extra" in refused(dict(good, extra=1))
    assert "unexpected extra" in refused(dict(good, critical=dict(good["critical"], extra=1)))
    assert "critical.type" in refused(dict(good, critical=dict(good["critical"], type="other")))
    bad_digest = dict(good["critical"], image={"docker-manifest-digest": "md5:00"})
    assert "sha256 digest" in refused(dict(good, critical=bad_digest))
    assert "timestamp is not an integer" in refused(dict(good, optional={"timestamp": 1.5}))
    assert payload.parse(json.dumps(dict(good, optional={"timestamp": 1700000000})).encode(), "p")


def test_dsse_pae_and_a_tampered_envelope() -> None:
    # The DSSE specification's example.
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    key, other = keys.generate(), keys.generate()
    body = dsse.statement([("h:1/app", DIGEST)], "https://spdx.dev/Document", {"spdxVersion": "SPDX-2.3"})
    env = dsse.envelope(key, body)
    st = dsse.open_envelope(env, key.public_key(), "e")
    assert st.subjects == [("h:1/app", DIGEST)] and st.predicate == {"spdxVersion": "SPDX-2.3"}
    assert json.loads(body)["_type"] == "https://in-toto.io/Statement/v1"
    doc = json.loads(env)
    changed = body.replace(b"SPDX-2.3", b"SPDX-2.2")
    for tampered in (
        dict(doc, payload=base64.b64encode(changed).decode()),  # the payload
        dict(doc, payloadType="application/json"),  # the type (PAE covers it)
        dict(doc, signatures=[]),
    ):
        with pytest.raises(VerificationError):
            dsse.open_envelope(json.dumps(tampered).encode(), key.public_key(), "e")
    with pytest.raises(VerificationError, match="no signature of the envelope verifies"):
        dsse.open_envelope(env, other.public_key(), "e")
    not_statement = dsse.envelope(key, b'{"hello": 1}')
    with pytest.raises(VerificationError, match="not an in-toto Statement"):
        dsse.open_envelope(not_statement, key.public_key(), "e")


# -- a registry ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cache(test_cache: Path) -> list[str]:
    return ["--cache-dir", str(test_cache)]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("registry"))
    yield reg
    reg.close()


@pytest.fixture(scope="module")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two key pairs made by ``distill keygen``: one.key/.pub and two.key/.pub."""
    d = tmp_path_factory.mktemp("keys")
    for name in ("one", "two"):
        lines = ok(distill("keygen", "--output-prefix", str(d / name)))
        assert lines == [f"wrote {d / name}.key (private, keep it secret) and {d / name}.pub (public)"]
    assert (d / "one.key").stat().st_mode & 0o777 == 0o600
    return d


@pytest.fixture(scope="module")
def static(tmp_path_factory: pytest.TempPathFactory, cache: list[str]) -> Path:
    """distill's static for amd64 and arm64: an index of two platforms, as a layout."""
    out = tmp_path_factory.mktemp("static") / "static.oci"
    ok(distill("build", "static", "--arch", "amd64", "--arch", "arm64", "-o", str(out), *cache, "-q"))
    return out


def push(layout: Path, ref: str) -> str:
    """Push a layout's image to ``ref``; its digest."""
    pin = ok(distill("push", str(layout), ref, "-q"))[-1]
    return pin.rsplit("@", 1)[1]


def raw(host: str, repo: str, reference: str) -> httpx.Response:
    accept = ", ".join((MANIFEST, INDEX))
    return httpx.get(f"http://{host}/v2/{repo}/manifests/{reference}", headers={"Accept": accept})


def children(host: str, repo: str, digest: str) -> dict[str, str]:
    index = raw(host, repo, digest).json()
    return {m["platform"]["architecture"]: m["digest"] for m in index["manifests"]}


def copy_manifest(host: str, repo: str, src: str, dst: str) -> None:
    r = raw(host, repo, src)
    assert r.status_code == 200, r.text
    put = httpx.put(f"http://{host}/v2/{repo}/manifests/{dst}", content=r.content,
                    headers={"Content-Type": r.headers["content-type"]})  # fmt: skip
    assert put.status_code == 201, put.text


def delete_manifest(host: str, repo: str, digest: str) -> None:
    r = httpx.delete(f"http://{host}/v2/{repo}/manifests/{digest}")
    assert r.status_code == 202, r.text


@pytest.mark.network
def test_sign_and_verify_an_index_on_a_registry(static: Path, registry: Registry, keydir: Path) -> None:
    host = registry.host
    ref = f"{host}/sig/static:1"
    digest = push(static, ref)
    lines = ok(distill("sign", ref, "--key", str(keydir / "one.key")))
    platforms = children(host, "sig/static", digest)
    assert lines[-1] == f"{host}/sig/static@{digest}"
    assert [line.split()[:3] for line in lines[:-1]] == [
        ["signed", "index", digest],
        ["signed", "linux/amd64", platforms["amd64"]],
        ["signed", "linux/arm64/v8", platforms["arm64"]],
    ]
    # Stored as cosign stores them: an OCI manifest tagged sha256-<hex>.sig, one layer per
    # signature holding the payload, the signature in its annotation.
    for d in (digest, *platforms.values()):
        r = raw(host, "sig/static", attach.tag_of(d, "sig"))
        assert r.headers["content-type"] == MANIFEST
        manifest = r.json()
        assert manifest["mediaType"] == MANIFEST
        assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
        (layer,) = manifest["layers"]
        assert layer["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
        blob = httpx.get(f"http://{host}/v2/sig/static/blobs/{layer['digest']}").content
        assert blob == payload.make(f"{host}/sig/static", d)
        sig = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
        public = keys.load_public((keydir / "one.pub").read_bytes(), "p")
        assert keys.verify(public, sig, blob)
    # Signing again adds nothing; a second key appends a layer beside the first.
    again = ok(distill("sign", ref, "--key", str(keydir / "one.key")))
    assert all(line.startswith("already signed:") for line in again[:-1])
    ok(distill("sign", ref, "--key", str(keydir / "two.key")))
    assert len(raw(host, "sig/static", attach.tag_of(digest, "sig")).json()["layers"]) == 2
    for name in ("one", "two"):
        lines = ok(distill("verify", ref, "--key", str(keydir / f"{name}.pub")))
        assert len(lines) == 4 and all(line.endswith(f"(signed for {host}/sig/static)") for line in lines[:3])
    # By digest too; with an identity it was not signed for, refused.
    ok(distill("verify", f"{host}/sig/static@{digest}", "--key", str(keydir / "one.pub")))
    line = verify_failed(
        distill("verify", ref, "--key", str(keydir / "one.pub"), "--identity", f"{host}/other")
    )
    assert "for another repository" in line
    # Every platform must be signed: without arm64's signature the image does not verify.
    arm_sig = raw(host, "sig/static", attach.tag_of(platforms["arm64"], "sig"))
    delete_manifest(host, "sig/static", "sha256:" + hashlib.sha256(arm_sig.content).hexdigest())
    line = verify_failed(distill("verify", ref, "--key", str(keydir / "one.pub")))
    assert f"linux/arm64/v8 {platforms['arm64']}): no signature" in line


@pytest.mark.network
def test_verification_failures_and_bad_input(
    static: Path, registry: Registry, keydir: Path, tmp_path: Path, cache: list[str]
) -> None:
    host = registry.host
    unsigned = f"{host}/bad/unsigned:1"
    digest = push(static, unsigned)
    one_key, one_pub = str(keydir / "one.key"), str(keydir / "one.pub")
    # A reference with no signature: exit 1, one line naming the tag looked for.
    line = verify_failed(distill("verify", unsigned, "--key", one_pub))
    assert f"no signature (nothing tagged {attach.tag_of(digest, 'sig')})" in line
    # Another key's signature.
    signed = f"{host}/bad/signed:1"
    push(static, signed)
    ok(distill("sign", signed, "--key", one_key))
    assert "not signed by this key" in verify_failed(
        distill("verify", signed, "--key", str(keydir / "two.pub"))
    )
    # A signature over another digest: image B carries A's signature manifest.
    build_b = tmp_path / "b.oci"
    ok(
        distill(
            "build", "static", "--arch", "amd64", "--variant", "nonroot", "-o", str(build_b), *cache, "-q"
        )
    )
    other = push(build_b, f"{host}/bad/signed:2")
    copy_manifest(host, "bad/signed", attach.tag_of(children(host, "bad/signed", digest)["amd64"], "sig"),
                  attach.tag_of(other, "sig"))  # fmt: skip
    line = verify_failed(distill("verify", f"{host}/bad/signed:2", "--key", one_pub))
    assert "over another digest" in line
    # Wrong password, a damaged key, a foreign file, no password at all: exit 2, one line.
    assert "wrong password" in one_error_line(distill("sign", signed, "--key", one_key, password="nope"))
    damaged = tmp_path / "damaged.key"
    damaged.write_bytes((keydir / "one.key").read_bytes()[:200])
    assert "not a key file" in one_error_line(distill("sign", signed, "--key", str(damaged)))
    assert "not a key file" in one_error_line(distill("sign", signed, "--key", one_pub))
    assert "not a key file" in one_error_line(distill("verify", signed, "--key", one_key))
    assert "no such file" in one_error_line(distill("verify", signed, "--key", str(tmp_path / "none.pub")))
    line = one_error_line(distill("sign", signed, "--key", one_key, password=None))
    assert "DISTILL_PASSWORD and COSIGN_PASSWORD are unset" in line
    # COSIGN_PASSWORD is read when DISTILL_PASSWORD is not set.
    env = dict(os.environ, COSIGN_PASSWORD=PASSWORD)
    env.pop("DISTILL_PASSWORD", None)
    cosign_env = subprocess.run([sys.executable, "-m", "distill", "sign", signed, "--key", one_key],
                                env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)  # fmt: skip
    assert cosign_env.returncode == 0, cosign_env.stderr
    assert "exists" in one_error_line(distill("keygen", "--output-prefix", str(keydir / "one")))
    assert "no such image layout or registry reference" in one_error_line(
        distill("verify", "nohost/x", "--key", one_pub)
    )
    assert "not found" in one_error_line(distill("sign", f"{host}/bad/none:1", "--key", one_key))


@pytest.mark.network
def test_hostile_signature_manifests(static: Path, registry: Registry, keydir: Path) -> None:
    """What a .sig tag holds is input: the wrong kind of manifest, a signature that is
    not base64, a payload with a key containers/image refuses, a layer larger than it says."""
    host, repo = registry.host, "hostile/static"
    digest = push(static, f"{host}/{repo}:1")
    tag = attach.tag_of(digest, "sig")
    pub = str(keydir / "one.pub")
    # An index under the .sig tag: one error line (exit 2).
    copy_manifest(host, repo, digest, tag)
    assert "not an OCI image manifest" in one_error_line(distill("verify", f"{host}/{repo}:1", "--key", pub))
    httpx.delete(f"http://{host}/v2/{repo}/manifests/{digest}")  # the index and both its tags
    digest = push(static, f"{host}/{repo}:1")
    key = keys.decrypt_private((keydir / "one.key").read_bytes(), PASSWORD.encode(), "one.key")
    client = Client(host)
    store = RegistryStore(client, repo)
    try:
        attach.append_layer(
            store, tag, Layer(payload.MEDIA_TYPE, b"{}", {attach.SIGNATURE_ANNOTATION: "%%%"})
        )
        line = verify_failed(distill("verify", f"{host}/{repo}:1", "--key", pub))
        assert "1 signature, none valid: not signed by this key" in line
        extra = json.loads(payload.make(f"{host}/{repo}", digest))
        extra["critical"]["extra"] = 1
        body = json.dumps(extra).encode()
        sig = base64.b64encode(keys.sign(key, body)).decode()
        attach.append_layer(store, tag, Layer(payload.MEDIA_TYPE, body, {attach.SIGNATURE_ANNOTATION: sig}))
        line = verify_failed(distill("verify", f"{host}/{repo}:1", "--key", pub))
        assert "critical: unexpected extra" in line
    finally:
        client.close()
    # A layer whose blob is larger than the manifest says: refused while reading.
    manifest = raw(host, repo, tag).json()
    manifest["layers"][1]["size"] = 10
    put = httpx.put(f"http://{host}/v2/{repo}/manifests/{tag}", content=json.dumps(manifest).encode(),
                    headers={"Content-Type": MANIFEST})  # fmt: skip
    assert put.status_code == 201
    assert "larger than 10 bytes" in one_error_line(distill("verify", f"{host}/{repo}:1", "--key", pub))


@pytest.mark.network
def test_attest_and_verify_attestation(
    static: Path, registry: Registry, keydir: Path, tmp_path: Path
) -> None:
    host = registry.host
    ref = f"{host}/att/static:1"
    digest = push(static, ref)
    predicate = tmp_path / "sbom.json"
    predicate.write_text(json.dumps({"spdxVersion": "SPDX-2.3", "name": "static"}))
    lines = ok(
        distill(
            "attest", ref, "--key", str(keydir / "one.key"), "--type", "spdx", "--predicate", str(predicate)
        )
    )
    assert f"fallback tag {attach.tag_of(digest, '')}" in lines[0], lines
    # cosign's .att: a DSSE envelope layer with the predicateType annotation.
    att = raw(host, "att/static", attach.tag_of(digest, "att")).json()
    (layer,) = att["layers"]
    assert layer["mediaType"] == "application/vnd.dsse.envelope.v1+json"
    assert layer["annotations"]["predicateType"] == "https://spdx.dev/Document"
    # The OCI 1.1 referrer, listed in the fallback index (distribution 2.8 has no referrers API).
    assert httpx.get(f"http://{host}/v2/att/static/referrers/{digest}").status_code == 404
    fallback = raw(host, "att/static", attach.tag_of(digest, ""))
    assert fallback.headers["content-type"] == INDEX
    (entry,) = fallback.json()["manifests"]
    assert entry["artifactType"] == "application/vnd.in-toto+json"
    assert entry["annotations"] == {"in-toto.io/predicate-type": "https://spdx.dev/Document"}
    referrer = raw(host, "att/static", entry["digest"]).json()
    assert referrer["subject"]["digest"] == digest and referrer["subject"]["mediaType"] == INDEX
    assert referrer["config"]["mediaType"] == "application/vnd.oci.empty.v1+json"
    assert referrer["layers"][0]["digest"] == layer["digest"]  # the same envelope
    lines = ok(distill("verify-attestation", ref, "--key", str(keydir / "one.pub"), "--type", "spdx"))
    assert lines[0] == f"verified attestation https://spdx.dev/Document about {digest}"
    (statement,) = ok(distill("verify-attestation", ref, "--key", str(keydir / "one.pub"), "--output"))
    assert json.loads(statement)["predicate"] == {"spdxVersion": "SPDX-2.3", "name": "static"}
    assert json.loads(statement)["subject"] == [
        {"name": f"{host}/att/static", "digest": {"sha256": digest[7:]}}
    ]
    # The same attestation again: nothing new; another type is not there; another key refused.
    again = ok(
        distill(
            "attest", ref, "--key", str(keydir / "one.key"), "--type", "spdx", "--predicate", str(predicate)
        )
    )
    assert again[0].startswith("already attested:")
    assert "of type https://cyclonedx.org/bom" in verify_failed(
        distill("verify-attestation", ref, "--key", str(keydir / "one.pub"), "--type", "cyclonedx")
    )
    assert "verifies with the key" in verify_failed(
        distill("verify-attestation", ref, "--key", str(keydir / "two.pub"))
    )
    # Without the .att tag, the referrer (found through the fallback tag) still verifies.
    att_raw = raw(host, "att/static", attach.tag_of(digest, "att"))
    delete_manifest(host, "att/static", "sha256:" + hashlib.sha256(att_raw.content).hexdigest())
    ok(distill("verify-attestation", ref, "--key", str(keydir / "one.pub"), "--type", "spdx"))
    # Without --predicate, an SBOM type attests distill's own SBOM of each platform, to
    # that platform's manifest (the index gets none).
    lines = ok(distill("attest", ref, "--key", str(keydir / "one.key"), "--type", "cyclonedx"))
    kids = children(host, "att/static", digest)
    assert len(lines) == 3 and lines[-1] == f"{host}/att/static@{digest}", lines
    for arch, child in kids.items():
        assert any(
            line.startswith(f"attested linux/{arch}") and f" {child}: https://cyclonedx.org/bom" in line
            for line in lines
        )
        (st,) = ok(
            distill("verify-attestation", f"{host}/att/static@{child}", "--key", str(keydir / "one.pub"),
                    "--type", "cyclonedx", "--output")
        )  # fmt: skip
        doc = json.loads(st)
        assert doc["subject"][0]["digest"] == {"sha256": child[7:]}
        bom = doc["predicate"]
        assert bom["bomFormat"] == "CycloneDX" and bom["specVersion"] == "1.6"
        assert bom["metadata"]["component"]["purl"].startswith(f"pkg:oci/static@{child}?arch={arch}")
        purls = [c.get("purl", "") for c in bom["components"]]
        assert any(u.startswith("pkg:deb/debian/tzdata@") and f"arch={'all'}" in u for u in purls), purls
    assert "no attestation by this key of type https://cyclonedx.org/bom" in verify_failed(
        distill("verify-attestation", ref, "--key", str(keydir / "one.pub"), "--type", "cyclonedx")
    )
    # --predicate is needed for a type whose predicate distill does not make itself here.
    assert "--predicate FILE" in one_error_line(
        distill("attest", ref, "--key", str(keydir / "one.key"), "--type", "slsaprovenance")
    )
    assert "neither a known predicate type" in one_error_line(
        distill(
            "attest", ref, "--key", str(keydir / "one.key"), "--type", "sbom!", "--predicate", str(predicate)
        )
    )


@pytest.mark.network
def test_a_tampered_attestation_is_refused(static: Path, registry: Registry, keydir: Path) -> None:
    host = registry.host
    key = keys.decrypt_private((keydir / "one.key").read_bytes(), PASSWORD.encode(), "one.key")
    for n, tamper in enumerate(("payload", "payloadType")):
        repo = f"tamper/{n}"
        digest = push(static, f"{host}/{repo}:1")
        body = dsse.statement([(f"{host}/{repo}", digest)], "https://spdx.dev/Document", {"ok": True})
        doc = json.loads(dsse.envelope(key, body))
        if tamper == "payload":
            doc["payload"] = base64.b64encode(body.replace(b"true", b"false")).decode()
        else:
            doc["payloadType"] = "application/json"
        client = Client(host)
        try:
            layer = Layer(
                dsse.MEDIA_TYPE, json.dumps(doc).encode(), {"predicateType": "https://spdx.dev/Document"}
            )
            attach.append_layer(RegistryStore(client, repo), attach.tag_of(digest, "att"), layer)
        finally:
            client.close()
        line = verify_failed(
            distill("verify-attestation", f"{host}/{repo}:1", "--key", str(keydir / "one.pub"))
        )
        assert "no signature of the envelope verifies with the key" in line


@pytest.mark.network
def test_a_signed_layout_and_its_push(static: Path, registry: Registry, keydir: Path, tmp_path: Path) -> None:
    layout = tmp_path / "static.oci"
    sh("cp", "-a", str(static), str(layout))
    host = registry.host
    identity = f"{host}/lay/static"
    lines = ok(distill("sign", str(layout), "--key", str(keydir / "one.key"), "--identity", identity))
    digest = lines[-1].rsplit("@", 1)[1]
    index = json.loads((layout / "index.json").read_text())
    names = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
    assert names[0] == "latest" and index["manifests"][0]["annotations"]["kind"] == attach.KIND_INDEX
    assert set(names[1:]) == {attach.tag_of(d, "sig") for d in [digest, *_layout_children(layout, digest)]}
    ok(distill("verify", str(layout), "--key", str(keydir / "one.pub"), "--identity", identity))
    verify_failed(distill("verify", str(layout), "--key", str(keydir / "two.pub")))
    # Real readers still find the image by its name; distill's push takes the signatures along.
    info = json.loads(sh("skopeo", "inspect", "--raw", f"oci:{layout}:latest"))
    assert info["mediaType"] == INDEX
    lines = ok(distill("push", str(layout), f"{host}/lay/static:1"))
    assert lines[1].startswith("pushed 3 signature/attestation manifests of the layout"), lines
    ok(distill("verify", f"{host}/lay/static:1", "--key", str(keydir / "one.pub")))


def _layout_children(layout: Path, digest: str) -> list[str]:
    data = (layout / "blobs" / "sha256" / digest[7:]).read_bytes()
    return [m["digest"] for m in json.loads(data)["manifests"]]


@pytest.mark.network
def test_build_push_sign_attaches_slsa_provenance(
    registry: Registry, keydir: Path, cache: list[str], tmp_path: Path
) -> None:
    host = registry.host
    ok(distill("lock", "static", "--arch", "amd64", "--arch", "arm64", *cache, "-q", cwd=tmp_path))
    lock_file = tmp_path / "static.lock.json"
    ref = f"{host}/prov/static:1"
    lines = ok(distill("build", "static", "--arch", "amd64", "--arch", "arm64", "--push", ref, "--sign",
                       "--key", str(keydir / "one.key"), "--provenance", "prov.json", *cache, cwd=tmp_path))  # fmt: skip
    digest = lines[-1].rsplit("@", 1)[1]
    assert any(line.startswith(f"signed {host}/prov/static@{digest}: 3 manifests") for line in lines), lines
    ok(distill("verify", ref, "--key", str(keydir / "one.pub")))
    (text,) = ok(
        distill(
            "verify-attestation",
            ref,
            "--key",
            str(keydir / "one.pub"),
            "--type",
            "slsaprovenance",
            "--output",
        )
    )
    statement = json.loads(text)
    assert statement == {**json.loads((tmp_path / "prov.json").read_text()),
                         "predicate": statement["predicate"]}  # fmt: skip
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    platforms = children(host, "prov/static", digest)
    assert [s["digest"]["sha256"] for s in statement["subject"]] == [
        d[7:] for d in (digest, platforms["amd64"], platforms["arm64"])
    ]
    pred = statement["predicate"]
    assert pred["runDetails"]["builder"]["id"].startswith("pkg:pypi/distill@")
    external = pred["buildDefinition"]["externalParameters"]
    assert external["lock"]["digest"]["sha256"] == hashlib.sha256(lock_file.read_bytes()).hexdigest()
    assert external["spec"]["name"] == "static" and external["archs"] == ["amd64", "arm64"]
    # Every .deb of the lock, with its URL on the lock's mirror and its sha256.
    lock = json.loads(lock_file.read_text())
    urls = {s["suite"]: s["url"] for s in lock["suites"]}
    want = sorted(  # an Architecture: all package is in both sections, listed once
        {
            (f"{urls[p['suite']]}/{p['filename']}", p["sha256"])
            for a in lock["archs"].values()
            for p in a["packages"]
        }
    )
    deps = pred["buildDefinition"]["resolvedDependencies"]
    assert sorted((d["uri"], d["digest"]["sha256"]) for d in deps) == want
    # Each platform's attestation verifies too (the statement is attached to all three),
    # and each platform carries its own SBOMs, SPDX and CycloneDX, as attestations.
    assert any(line.endswith("SPDX and CycloneDX SBOMs (4 attestations)") for line in lines), lines
    ok(
        distill(
            "verify-attestation", f"{host}/prov/static@{platforms['arm64']}", "--key", str(keydir / "one.pub")
        )
    )
    for arch, child in platforms.items():
        for kind, field in (("spdx", "spdxVersion"), ("cyclonedx", "specVersion")):
            (text,) = ok(distill("verify-attestation", f"{host}/prov/static@{child}", "--key",
                                 str(keydir / "one.pub"), "--type", kind, "--output"))  # fmt: skip
            sbom = json.loads(text)["predicate"]
            assert field in sbom, (arch, kind)
            found = json.dumps(sbom)
            assert f"arch={arch}" in found and "pkg:deb/debian/tzdata@" in found, (arch, kind)
    assert "no attestation" in verify_failed(
        distill("verify-attestation", ref, "--key", str(keydir / "one.pub"), "--type", "spdx")
    )  # the index has its provenance, no SBOM
    assert "--sign needs --key" in one_error_line(distill("build", "static", "--push", ref, "--sign", *cache))
    assert "--sign signs a pushed image" in one_error_line(
        distill(
            "build",
            "static",
            "-o",
            str(tmp_path / "x.tar"),
            "--sign",
            "--key",
            str(keydir / "one.key"),
            *cache,
        )
    )


@pytest.mark.network
def test_provenance_lists_an_apps_wheels(cache: list[str], tmp_path: Path) -> None:
    src = tmp_path / "app"
    src.mkdir()
    (src / "main.py").write_text("import six\nprint(six.__version__)\n")
    (src / "requirements.txt").write_text("six==1.16.0\n")
    (src / "app.yaml").write_text(
        "name: svc\nfrom: python3\narchs: [amd64]\napp: {kind: python, source: .}\n"
    )
    out = tmp_path / "svc.oci"
    ok(
        distill(
            "build",
            str(src / "app.yaml"),
            "-o",
            str(out),
            "--provenance",
            str(tmp_path / "p.json"),
            *cache,
            "-q",
        )
    )
    deps = json.loads((tmp_path / "p.json").read_text())["predicate"]["buildDefinition"][
        "resolvedDependencies"
    ]
    (wheel,) = [d for d in deps if d["name"].startswith("pkg:pypi/")]
    assert wheel["name"] == "pkg:pypi/six@1.16.0" and wheel["uri"].endswith(
        "/six-1.16.0-py2.py3-none-any.whl"
    )
    # The digest pip checked, which is the wheel's own: the one its index publishes.
    assert wheel["digest"] == {"sha256": "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254"}
    assert any(d["name"].startswith("pkg:deb/debian/python3") for d in deps)


@pytest.mark.network
def test_provenance_lists_npm_tarballs_and_a_base_image(
    static: Path, registry: Registry, cache: list[str], tmp_path: Path
) -> None:
    from test_apps import node_project

    # A node app: its tarball (a file: URL here) with the lock's sha512 and its own sha256.
    src = tmp_path / "svc"
    node_project(src, {"left-pad": ({"index.js": b"module.exports = 1;\n", "package.json": b"{}"}, {})})
    (src / "app.yaml").write_text("name: svc\nfrom: nodejs\narchs: [amd64]\napp: {kind: node, source: .}\n")
    ok(distill("build", str(src / "app.yaml"), "-o", str(tmp_path / "svc.oci"), "--provenance",
               str(tmp_path / "node.json"), *cache, "-q"))  # fmt: skip
    deps = json.loads((tmp_path / "node.json").read_text())["predicate"]["buildDefinition"][
        "resolvedDependencies"
    ]
    (tarball,) = [d for d in deps if d["name"].startswith("pkg:npm/")]
    data = (src / "vendor" / "left-pad.tgz").read_bytes()
    assert tarball == {
        "name": "pkg:npm/left-pad@1.0.0",
        "uri": "file:vendor/left-pad.tgz",
        "digest": {"sha512": hashlib.sha512(data).hexdigest(), "sha256": hashlib.sha256(data).hexdigest()},
        "annotations": {"archs": "amd64"},
    }
    assert any(d["name"].startswith("pkg:deb/debian/nodejs@") for d in deps)
    # A binary on a registry image: the base by digest (its packages are the base's, not listed).
    base = f"{registry.host}/prov/base:1"
    digest = push(static, base)
    (tmp_path / "hello.c").write_text("int main(void) { return 0; }\n")
    sh("gcc", "-static", "-o", str(tmp_path / "hello"), str(tmp_path / "hello.c"))
    (tmp_path / "hello.yaml").write_text(
        f"name: hello\nfrom: docker://{base}\narchs: [amd64]\napp: {{kind: binary, source: hello}}\n"
    )
    ok(distill("build", str(tmp_path / "hello.yaml"), "-o", str(tmp_path / "hello.oci"), "--provenance",
               str(tmp_path / "bin.json"), *cache, "-q"))  # fmt: skip
    deps = json.loads((tmp_path / "bin.json").read_text())["predicate"]["buildDefinition"][
        "resolvedDependencies"
    ]
    assert deps == [
        {
            "name": base,
            "uri": f"docker://{registry.host}/prov/base@{digest}",
            "digest": {"sha256": digest[7:]},
        }
    ]


# -- real clients: Debian 13's skopeo and podman, in podman ---------------------------------------

CLIENTS_SPEC = """\
name: sigclients
extends: base
distro: debian13
packages: [skopeo, podman]
"""


@pytest.fixture(scope="module")
def clients(
    env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, cache: list[str]
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run Debian 13's skopeo or podman (a distill image, built and loaded once) with a
    directory mounted at /w (read-only) and /out (writable)."""
    d = tmp_path_factory.mktemp("clients")
    (d / "clients.yaml").write_text(CLIENTS_SPEC)
    ok(distill("build", str(d / "clients.yaml"), "--arch", host_arch(), "-o", str(d / "clients.tar"),
               "--tag", "distill-test/sigclients:1", *cache, "-q"))  # fmt: skip
    sh("podman", "load", "-q", "-i", str(d / "clients.tar"), env=env)
    (d / "clients.tar").unlink()

    def run(tool: str, *args: str, w: Path, out: Path | None = None) -> subprocess.CompletedProcess[str]:
        mounts = ["-v", f"{w}:/w:ro", "-v", f"{w / 'registries.d'}:/etc/containers/registries.d:ro"]
        if out is not None:
            mounts += ["-v", f"{out}:/out"]
        if tool == "podman":  # podman pull needs its own storage, and a runtime it never starts
            mounts += ["--privileged", "-e", "CONTAINERS_CONF=/w/containers.conf",
                       "-e", "CONTAINERS_STORAGE_CONF=/w/storage.conf", "-e", "PODMAN_IGNORE_CGROUPSV1_WARNING=1"]  # fmt: skip
        return subprocess.run(
            ["podman", "run", "--rm", "--network", "host", *mounts, "--entrypoint", f"/usr/bin/{tool}",
             "localhost/distill-test/sigclients:1", *args],
            env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip

    return run


def host_arch() -> str:
    from distill.spec.model import host_arch as arch

    return arch()


def policy_dir(root: Path, host: str, pub: Path | None) -> Path:
    """policy.json requiring sigstoreSigned by ``pub`` for ``host`` (insecureAcceptAnything
    when None), registries.d with use-sigstore-attachments, podman's configuration."""
    w = root / "w"
    (w / "registries.d").mkdir(parents=True, exist_ok=True)
    if pub is not None:
        sh("cp", str(pub), str(w / "key.pub"))
        rule = {
            "type": "sigstoreSigned",
            "keyPath": "/w/key.pub",
            "signedIdentity": {"type": "matchRepository"},
        }
    else:
        rule = {"type": "insecureAcceptAnything"}
    policy = {"default": [{"type": "reject"}], "transports": {"docker": {host: [rule]},
              "oci": {"": [{"type": "insecureAcceptAnything"}]}}}  # fmt: skip
    (w / "policy.json").write_text(json.dumps(policy))
    (w / "registries.d" / "test.yaml").write_text(f"docker:\n  {host}:\n    use-sigstore-attachments: true\n")
    (w / "containers.conf").write_text(
        '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "none"\nruntime = "crun"\n'
    )
    (w / "storage.conf").write_text(
        '[storage]\ndriver = "vfs"\nrunroot = "/tmp/run"\ngraphroot = "/tmp/graph"\n'
    )
    return w


def pulls(
    run: Callable[..., subprocess.CompletedProcess[str]], w: Path, ref: str, arch: str
) -> list[tuple[str, bool, str]]:
    """(client, accepted, its last line of stderr) for skopeo copy and podman pull of ``ref``."""
    skopeo = run("skopeo", "--policy", "/w/policy.json", "--registries.d", "/w/registries.d", "copy", "-q",
                 "--remove-signatures", "--override-arch", arch, "--src-tls-verify=false",
                 f"docker://{ref}", "oci:/tmp/copy:x", w=w)  # fmt: skip
    podman = run("podman", "pull", "-q", "--arch", arch, "--tls-verify=false", "--signature-policy",
                 "/w/policy.json", ref, w=w)  # fmt: skip
    return [(name, p.returncode == 0, (p.stderr.strip().splitlines() or [""])[-1]) for name, p in
            (("skopeo", skopeo), ("podman", podman))]  # fmt: skip


@pytest.mark.network
@pytest.mark.podman
def test_podman_and_skopeo_verify_distill_signatures(
    clients: Callable[..., subprocess.CompletedProcess[str]], static: Path, registry: Registry,
    keydir: Path, tmp_path: Path, cache: list[str],
) -> None:  # fmt: skip
    host = registry.host
    w = policy_dir(tmp_path, host, keydir / "one.pub")
    signed, unsigned = f"{host}/real/signed:1", f"{host}/real/unsigned:1"
    digest = push(static, signed)
    push(static, unsigned)
    ok(distill("sign", signed, "--key", str(keydir / "one.key")))
    for arch in ("amd64", "arm64"):
        for client, accepted, why in pulls(clients, w, signed, arch):
            assert accepted, (client, arch, why)
        for client, accepted, why in pulls(clients, w, unsigned, arch):
            assert not accepted and "A signature was required, but no signature exists" in why, (client, why)
    # Signed by another key: refused.
    other = f"{host}/real/other:1"
    push(static, other)
    ok(distill("sign", other, "--key", str(keydir / "two.key")))
    for client, accepted, why in pulls(clients, w, other, "arm64"):
        assert not accepted and "cryptographic signature verification failed" in why, (client, why)
    # Re-tagged: the signed tag now names another image, which carries the first image's
    # signatures (copied to its own .sig tags): its digest differs from the signed one.
    b = tmp_path / "b.oci"
    ok(distill("build", "static", "--arch", "amd64", "--variant", "nonroot", "-o", str(b), *cache, "-q"))
    retagged = push(b, signed)
    assert retagged != digest
    copy_manifest(host, "real/signed", attach.tag_of(children(host, "real/signed", digest)["amd64"], "sig"),
                  attach.tag_of(retagged, "sig"))  # fmt: skip
    for client, accepted, why in pulls(clients, w, signed, "amd64"):
        assert not accepted and "does not match" in why, (client, why)
    # A signed layout pushed with its signatures: pulled under the policy.
    layout = tmp_path / "lay.oci"
    sh("cp", "-a", str(static), str(layout))
    ok(distill("sign", str(layout), "--key", str(keydir / "one.key"), "--identity", f"{host}/real/layout"))
    ok(distill("push", str(layout), f"{host}/real/layout:1"))
    for client, accepted, why in pulls(clients, w, f"{host}/real/layout:1", "arm64"):
        assert accepted, (client, why)


@pytest.mark.network
@pytest.mark.podman
def test_skopeo_signs_with_distills_key_and_distill_with_skopeos(
    clients: Callable[..., subprocess.CompletedProcess[str]], static: Path, registry: Registry,
    keydir: Path, tmp_path: Path,
) -> None:  # fmt: skip
    host = registry.host
    w = policy_dir(tmp_path, host, None)
    sh("cp", str(keydir / "one.key"), str(w / "one.key"))
    (w / "pass").write_text(PASSWORD)
    src = f"{host}/x/src:1"
    push(static, src)
    # skopeo signs (one platform) with a key distill keygen made; distill verifies.
    p = clients("skopeo", "--policy", "/w/policy.json", "--registries.d", "/w/registries.d", "copy", "-q",
                "--override-arch", "arm64", "--src-tls-verify=false", "--dest-tls-verify=false",
                "--sign-by-sigstore-private-key", "/w/one.key", "--sign-passphrase-file", "/w/pass",
                f"docker://{src}", f"docker://{host}/x/byskopeo:1", w=w)  # fmt: skip
    assert p.returncode == 0, p.stderr
    lines = ok(distill("verify", f"{host}/x/byskopeo:1", "--key", str(keydir / "one.pub")))
    assert lines[0].endswith(f"(signed for {host}/x/byskopeo:1)")  # skopeo names the tag too
    verify_failed(distill("verify", f"{host}/x/byskopeo:1", "--key", str(keydir / "two.pub")))
    # skopeo makes a key pair; distill signs with it; skopeo verifies under a policy with its key.
    out = tmp_path / "out"
    out.mkdir()
    p = clients("skopeo", "generate-sigstore-key", "--output-prefix", "/out/sk", "--passphrase-file", "/w/pass",
                w=w, out=out)  # fmt: skip
    assert p.returncode == 0, p.stderr
    assert (out / "sk.private").read_bytes().startswith(b"-----BEGIN ENCRYPTED ")
    ok(distill("sign", src, "--key", str(out / "sk.private")))
    ok(distill("verify", src, "--key", str(out / "sk.pub")))
    w2 = policy_dir(tmp_path / "strict", host, out / "sk.pub")
    for arch in ("amd64", "arm64"):
        for client, accepted, why in pulls(clients, w2, src, arch):
            assert accepted, (client, arch, why)
