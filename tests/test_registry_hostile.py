"""The registry client against hostile registries: small HTTP servers of the tests' own
on 127.0.0.1 that answer as a registry must not (an upload Location on another host,
a 401 from a third party, redirect loops, lying digests and headers, endless bodies,
nested indexes). Every failure must be one RegistryError/ImageError (one line, exit 2
on the command line), never a traceback, a hang, a credential sent off the registry's
host, or a push that reports success for what the registry did not store."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from distill.archive.cache import CorruptEntryError
from distill.errors import ImageError, RegistryError
from distill.oci.image import INDEX as OCI_INDEX
from distill.oci.image import MANIFEST as OCI_MANIFEST
from distill.oci.image import BlobStore
from distill.oci.push import MAX_MANIFESTS, Pusher, plan
from distill.oci.read import read_tree
from distill.oci.ref import parse_reference
from distill.oci.registry import DEFAULT_CHUNK, Registry, RegistrySettings
from distill.oci.source import MAX_NESTING, LayoutSource
from hostile import one_error_line
from ocitools import F, layer_tar, write_layout
from test_apps import HELLO, cc
from test_registry import distill

ZERO = "sha256:" + "0" * 64
CREDS = ("user", "secret")
BASIC = "Basic " + base64.b64encode(b"user:secret").decode()


class Hostile:
    """An HTTP/1.1 server on 127.0.0.1 whose every answer is ``answer(request)``; it
    records (method, path, headers) of each request in ``seen``."""

    def __init__(self, answer: Callable[[Request], None], rate: int | None = None) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while size := int(self.rfile.readline().strip() or b"0", 16):
                        self.rfile.read(size + 2)
                    self.rfile.readline()
                else:
                    while length > 0:  # at ``rate`` bytes a second, when given
                        got = self.rfile.read(min(length, rate // 10 if rate else length))
                        if not got:
                            break
                        length -= len(got)
                        if rate:
                            time.sleep(0.1)
                server.seen.append((self.command, self.path, dict(self.headers)))
                answer(Request(self, server))

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.host = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def authorizations(self) -> list[str]:
        return [h["Authorization"] for _, _, h in self.seen if "Authorization" in h]


class Request:
    def __init__(self, handler: BaseHTTPRequestHandler, server: Hostile) -> None:
        self.handler = handler
        self.server = server
        self.method = handler.command
        self.path = handler.path
        self.headers = handler.headers

    def reply(self, status: int, body: bytes = b"", **headers: str) -> None:
        h = self.handler
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k.replace("_", "-"), v.encode().decode("latin-1"))  # UTF-8 on the wire
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if self.method != "HEAD":
            h.wfile.write(body)


@pytest.fixture
def servers() -> Iterator[Callable[..., Hostile]]:
    made: list[Hostile] = []

    def make(answer: Callable[[Request], None], rate: int | None = None) -> Hostile:
        made.append(Hostile(answer, rate))
        return made[-1]

    yield make
    for s in made:
        s.close()


# -- credentials stay on the registry's host -----------------------------------------------


def test_no_credentials_to_an_upload_location_or_a_401_on_another_host(
    servers: Callable[..., Hostile],
) -> None:
    """A registry's upload Location may name another host (a storage backend, or a
    hostile one): the blob goes there, the user's credentials and tokens do not, and a
    401 from that host is not answered with them (Basic, or a Bearer realm it names)."""

    def third(req: Request) -> None:
        if req.path.startswith("/token"):
            req.reply(200, b'{"token": "stolen"}')
        elif "ask-basic" in req.path:
            req.reply(401, WWW_Authenticate='Basic realm="third"')
        elif "ask-bearer" in req.path and "Authorization" not in req.headers:
            req.reply(401, WWW_Authenticate=f'Bearer realm="http://{req.server.host}/token",service="x"')
        else:
            req.reply(201)

    other = servers(third)
    where = {"path": "/upload"}

    def registry(req: Request) -> None:
        if req.headers.get("Authorization") != BASIC:
            req.reply(401, WWW_Authenticate='Basic realm="registry"')
        elif req.method == "POST":
            req.reply(202, Location=f"http://{other.host}{where['path']}")
        else:
            req.reply(404)

    reg_server = servers(registry)
    reg = Registry(reg_server.host, RegistrySettings(auth=CREDS))
    try:
        location, _ = reg.start_upload("team/app")
        assert location.startswith(f"http://{other.host}/")
        reg.put_blob("team/app", location, ZERO, 3, lambda: b"abc")
        assert [m for m, _, _ in other.seen] == ["PUT"]
        for path in ("/ask-basic", "/ask-bearer"):
            where["path"] = path
            location, _ = reg.start_upload("team/app")
            with pytest.raises(RegistryError, match="not the registry"):
                reg.put_blob("team/app", location, ZERO, 3, lambda: b"abc")
    finally:
        reg.close()
    assert reg_server.authorizations() and set(reg_server.authorizations()) == {BASIC}
    assert other.authorizations() == []  # neither the password nor a token went there
    assert not any(p.startswith("/token") for _, p, _ in other.seen)


# -- every failure is one error, never a traceback -----------------------------------------


def test_redirect_loops_bad_encodings_and_replayed_bodies_are_registry_errors(
    servers: Callable[..., Hostile], tmp_path: Path
) -> None:
    """httpx errors that are not transport errors (too many redirects, a body that does
    not decode as its Content-Encoding says, a streamed upload redirected by a 307,
    which cannot be sent twice) were tracebacks."""
    mode = {"now": ""}

    def answer(req: Request) -> None:
        if mode["now"] == "loop":
            req.reply(302, Location=req.path)
        elif mode["now"] == "gzip":
            req.reply(200, b"not gzip", Content_Encoding="gzip", Content_Type=OCI_MANIFEST)
        elif mode["now"] == "307" and "again" not in req.path:
            req.reply(307, Location="/v2/again")
        else:
            req.reply(201)

    server = servers(answer)
    reg = Registry(server.host)

    def streamed() -> Iterator[bytes]:
        yield b"abc"

    try:
        for now, call in (
            ("loop", lambda: reg.get_manifest("team/app", "1", "app")),
            ("gzip", lambda: reg.get_manifest("team/app", "1", "app")),
            ("307", lambda: reg.put_blob("team/app", f"http://{server.host}/v2/up", ZERO, 3, streamed)),
        ):
            mode["now"] = now
            with pytest.raises(RegistryError):
                call()
    finally:
        reg.close()
    mode["now"] = "loop"
    line = one_error_line(distill("audit", f"docker://{server.host}/team/app:1", cwd=tmp_path))
    assert "redirect" in line, line


def test_numbers_in_headers_that_are_not_numbers(
    servers: Callable[..., Hostile],
) -> None:
    """OCI-Chunk-Min-Length and an upload's Range are the registry's numbers: a digit
    that int() refuses ('²' passes str.isdigit) or 5000 of them (past Python's limit
    for int()) was a ValueError traceback; now such a header counts as absent."""
    value = {"now": ""}

    def answer(req: Request) -> None:
        req.reply(202 if req.method == "POST" else 204, Location="/v2/up", OCI_Chunk_Min_Length=value["now"],
                  Range=f"0-{value['now']}")  # fmt: skip

    server = servers(answer)
    reg = Registry(server.host)
    try:
        for now in ("²", "٣", "9" * 5000, "-5", "1e9"):
            value["now"] = now
            assert reg.start_upload("team/app")[1] == 0, now
            assert reg.upload_offset("team/app", f"http://{server.host}/v2/up") == 0, now
        value["now"] = "1023"
        assert reg.start_upload("team/app")[1] == 1023
        assert reg.upload_offset("team/app", f"http://{server.host}/v2/up") == 1024
    finally:
        reg.close()


# -- a push reports success only for what the registry stored ------------------------------


def test_a_blob_stored_under_another_digest_fails_the_push_and_tags_nothing(
    servers: Callable[..., Hostile], tmp_path: Path
) -> None:
    """The registry answers 201 to a blob's PUT but says (Docker-Content-Digest) it
    stored something else: the push used to go on, write the manifest and the tag, and
    exit 0. Monolithic and chunked uploads, and a mount that claims another blob."""
    write_layout(tmp_path / "img", [layer_tar([F("a", b"a" * 3000)])], gz=False)
    mode = {"mount": False}

    def answer(req: Request) -> None:
        if req.method == "HEAD":
            req.reply(404)
        elif req.method == "POST" and "mount=" in req.path and mode["mount"]:
            req.reply(201, Docker_Content_Digest=ZERO, Location="/v2/team/app/blobs/x")
        elif req.method in ("POST", "PATCH"):
            req.reply(202, Location="/v2/team/app/blobs/uploads/1", Range="0-0")
        elif req.method == "PUT" and "/blobs/" in req.path:
            req.reply(201, Docker_Content_Digest=ZERO)
        else:
            req.reply(201)

    server = servers(answer)
    for chunk in (DEFAULT_CHUNK, 1024):
        with Pusher.to(server.host, RegistrySettings(chunk_size=chunk)) as pusher:
            source = LayoutSource(tmp_path / "img", None, "img")
            with pytest.raises(RegistryError, match=f"stored .* as {ZERO}"):
                pusher.push(source, source.root(), [parse_reference(f"{server.host}/team/app:1")])
    assert not [p for m, p, _ in server.seen if m == "PUT" and "/manifests/" in p]
    # a mount the registry claims for another blob: uploaded instead (and refused as above)
    mode["mount"] = True
    with Pusher.to(server.host, None) as pusher:
        pusher.known = {d: "team/base" for d in plan(source, source.root()).blobs}
        with pytest.raises(RegistryError, match=f"stored .* as {ZERO}"):
            pusher.push(source, source.root(), [parse_reference(f"{server.host}/team/app:1")])
    assert any(m == "POST" and "mount=" in p for m, p, _ in server.seen)
    assert not [p for m, p, _ in server.seen if m == "PUT" and "/manifests/" in p]


# -- what a push reads is bounded ------------------------------------------------------------


def _index(root: Path, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """An index of ``entries``, written as a blob of ``root``'s layout; its descriptor."""
    data = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"mediaType": OCI_INDEX, "digest": f"sha256:{digest}", "size": len(data)}


def test_a_push_refuses_indexes_nested_without_end_or_too_many_manifests(tmp_path: Path) -> None:
    """Indexes nested 1500 deep made the push's plan a RecursionError traceback (a
    registry or layout can hold such a chain: each index names the next by digest);
    they may nest as deep as an image is read (docs/limits.md), and one push writes at
    most MAX_MANIFESTS manifests (an index of 4 MiB names 20000; each may be another)."""
    manifest = write_layout(tmp_path / "img", [layer_tar([F("a", b"a")])], gz=False)
    data = json.dumps(manifest).encode()
    top = {
        "mediaType": OCI_MANIFEST,
        "digest": f"sha256:{hashlib.sha256(data).hexdigest()}",
        "size": len(data),
    }
    source = LayoutSource(tmp_path / "img", None, "img")
    chain = [top]
    for _ in range(1500):
        chain.append(_index(tmp_path / "img", [chain[-1]]))
    for depth, ok in ((MAX_NESTING - 1, True), (MAX_NESTING, False), (1500, False)):
        doc = source.pinned(chain[depth]["digest"])
        if ok:
            assert len(plan(source, doc).manifests) == depth + 1
        else:
            with pytest.raises(ImageError, match="nested"):
                plan(source, doc)
    # many distinct children (each an index of the one manifest, annotated apart)
    wide = [_index(tmp_path / "img", [{**top, "annotations": {"n": str(i)}}]) for i in range(MAX_MANIFESTS)]
    with pytest.raises(ImageError, match="more than"):
        plan(source, source.pinned(_index(tmp_path / "img", wide)["digest"]))


def _endless(req: Request) -> None:
    """200 and a chunked body that never ends (until the client hangs up)."""
    h = req.handler
    h.send_response(200)
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    chunk = b"\0" * 65536
    try:
        while True:
            h.wfile.write(b"10000\r\n" + chunk + b"\r\n")
    except OSError:
        pass


def _app_on(root: Path, base: str) -> Path:
    (root / "hello").mkdir(parents=True)
    (root / "hello" / "__main__.py").write_text("print('hello')\n")
    spec = root / "app.yaml"
    spec.write_text(
        f"name: hello\nfrom: {base}\narchs: [amd64]\napp: {{kind: python, entrypoint: [-m, hello]}}\n"
    )
    return spec


def test_fetch_refuses_a_layer_without_a_size_instead_of_filling_the_disk(
    servers: Callable[..., Hostile], tmp_path: Path
) -> None:
    """A manifest whose layer declares no size, and a registry that sends that layer
    without end: 'distill fetch' streamed it into the cache (420 MB in 5 s here) until
    the total deadline; the build refuses such a layer up front, and so does fetch now."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": [ZERO]}}).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ZERO}],
        }
    ).encode()

    def answer(req: Request) -> None:
        if "/manifests/" in req.path:
            req.reply(200, manifest, Content_Type=OCI_MANIFEST)
        elif req.path.endswith(config_digest):
            req.reply(200, config)
        else:
            _endless(req)

    server = servers(answer)
    spec = _app_on(tmp_path / "app", f"docker://{server.host}/team/base:1")
    cache = tmp_path / "cache"
    env = {**os.environ, "DISTILL_HTTP_TIMEOUT": "5"}
    line = one_error_line(distill("fetch", str(spec), "--cache-dir", str(cache), cwd=tmp_path, env=env))
    assert "layers[0].size" in line, line
    assert sum(f.stat().st_size for f in cache.rglob("*") if f.is_file()) < 1 << 20
    assert not list(cache.rglob(".pull.*"))


def test_a_token_that_cannot_be_a_header_is_refused_and_not_quoted(
    servers: Callable[..., Hostile],
) -> None:
    """A token service's token goes into a header: one with a non-ASCII character was a
    UnicodeEncodeError traceback, one with CR/LF or NUL a 'cannot reach' error, retried
    4 times, that quoted the token."""
    token = {"now": ""}

    def answer(req: Request) -> None:
        if req.path.startswith("/token"):
            req.reply(200, json.dumps({"token": token["now"]}).encode())
        elif "Authorization" not in req.headers:
            req.reply(401, WWW_Authenticate=f'Bearer realm="http://{req.server.host}/token",service="r"')
        else:
            req.reply(404)

    server = servers(answer)
    for now in ("tok\u20acs3cr3t", "tok\r\nX-Injected: s3cr3t", "tok\x00s3cr3t", "tok s3cr3t"):
        token["now"] = now
        reg = Registry(server.host)
        try:
            with pytest.raises(RegistryError) as caught:
                reg.get_manifest("team/app", "1", "app")
        finally:
            reg.close()
        assert "token" in caught.value.message and "s3cr3t" not in caught.value.message, caught.value
        assert not caught.value.transient
    assert not any("X-Injected" in h for _, _, h in server.seen)


# -- the cache is input too ------------------------------------------------------------------


def _damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(data))


def test_a_damaged_cached_layer_is_removed_and_pulled_again(tmp_path: Path) -> None:
    """A base layer damaged in the blob cache was read first and blamed on the image
    ('is not a readable tar'), and stayed there: every later build failed the same way.
    It is now found damaged (it does not hash to its name), removed (CorruptEntryError,
    which a build answers by pulling it again) and pulled anew from its source."""
    write_layout(tmp_path / "img", [layer_tar([F("etc/hello", b"hello\n" * 5000)])])
    store = BlobStore(tmp_path / "cache")
    source = LayoutSource(tmp_path / "img", None, "img")
    image = source.image("amd64")
    read_tree(source, image, store)
    cached = store.path(image.layers[0]["digest"])
    _damage(cached)
    with pytest.raises(CorruptEntryError, match="removed") as caught:
        read_tree(source, image, store)
    assert caught.value.needs_network and not cached.exists()
    tree, _, _ = read_tree(source, image, store)
    assert (
        "etc/hello" in tree.nodes
        and cached.read_bytes()
        == (tmp_path / "img" / "blobs" / "sha256" / image.layers[0]["digest"][7:]).read_bytes()
    )
    # an image's own fault is still the image's: the cached blob is whole, it stays
    image.config["rootfs"]["diff_ids"] = [ZERO]
    with pytest.raises(ImageError, match="diff_id") as caught:
        read_tree(source, image, store)
    assert not isinstance(caught.value, CorruptEntryError) and cached.exists()


def test_a_build_on_a_damaged_cached_base_repairs_it(tmp_path: Path) -> None:
    """The same through 'distill build': online it warns and pulls the layer again (the
    same image as before); offline it is one error line that says what to do."""
    manifest = write_layout(tmp_path / "base", [layer_tar([F("etc/hello", b"hello\n" * 5000)])])
    app = tmp_path / "app"
    app.mkdir()
    cc(app, "hello", HELLO, "-static")
    spec = app / "app.yaml"
    spec.write_text(
        f"name: hello\nfrom: oci:{tmp_path / 'base'}\narchs: [amd64]\napp: {{kind: binary, source: hello}}\n"
    )
    cache = ["--cache-dir", str(tmp_path / "cache")]
    assert distill("lock", str(spec), cwd=tmp_path).returncode == 0  # an offline build needs it
    first = distill("build", str(spec), "-o", str(tmp_path / "a.oci"), *cache, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    cached = BlobStore(tmp_path / "cache").path(manifest["layers"][0]["digest"])
    _damage(cached)
    again = distill("build", str(spec), "-o", str(tmp_path / "b.oci"), *cache, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "making it again" in again.stderr
    assert again.stdout.splitlines()[-1] == first.stdout.splitlines()[-1]
    _damage(cached)
    line = one_error_line(
        distill("build", str(spec), "--offline", "-o", str(tmp_path / "c.oci"), *cache, cwd=tmp_path)
    )
    assert "removed" in line and "--offline" in line, line


# -- nothing left behind ---------------------------------------------------------------------


@pytest.mark.podman
def test_sigterm_during_podman_save_leaves_no_temporary_files(env: dict[str, str], tmp_path: Path) -> None:
    """'podman:NAME' is read through 'podman save' into a temporary directory: a SIGTERM
    (or Ctrl-C) while podman ran left that directory behind, and podman, killed, left
    its own temporary files (the size of the image) in $TMPDIR."""
    write_layout(tmp_path / "big", [layer_tar([F("blob", os.urandom(48 << 20))])], gz=False)
    subprocess.run(
        ["skopeo", "copy", "-q", f"oci:{tmp_path / 'big'}", "containers-storage:localhost/distill-sigterm:1"],
        env=env, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "distill", "audit", "podman:localhost/distill-sigterm:1"],
        env={**env, "TMPDIR": str(tmp)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    deadline = time.monotonic() + 60
    while not children.read_text().strip():  # podman save has started
        assert time.monotonic() < deadline and proc.poll() is None, "podman save never started"
        time.sleep(0.01)
    time.sleep(0.3)  # podman is writing
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert list(tmp.iterdir()) == []


def _refusing(refuse: str) -> Callable[[Request], None]:
    """A registry that takes every upload but refuses the PUT of the blob ``refuse`` to
    the repository team/app."""

    def answer(req: Request) -> None:
        if req.method == "HEAD":
            req.reply(404)
        elif req.method == "POST":
            req.reply(202, Location=req.path.split("?")[0] + "1")
        elif req.method == "PUT" and refuse in req.path and req.path.startswith("/v2/team/app/"):
            req.reply(403)
        else:
            req.reply(201)

    return answer


def test_a_failed_or_interrupted_push_stops_its_other_uploads(
    servers: Callable[..., Hostile], tmp_path: Path
) -> None:
    """One blob refused while others upload: the push waited for every other upload to
    end (the results were awaited in order, the largest first) before it said so; a
    SIGTERM waited likewise (19 s for 40 MB to a slow registry here, up to the total
    deadline per blob). The uploads still under way now stop at their next chunk."""
    manifest = write_layout(
        tmp_path / "img", [layer_tar([F("a", os.urandom(8 << 20))]), layer_tar([F("b", os.urandom(8 << 20))])],
        gz=False,
    )  # fmt: skip
    server = servers(_refusing(manifest["config"]["digest"]), 1 << 20)  # reads uploads at 1 MiB/s
    source = LayoutSource(tmp_path / "img", None, "img")
    t0 = time.monotonic()
    with Pusher.to(server.host, None) as pusher, pytest.raises(RegistryError, match="403"):
        pusher.push(source, source.root(), [parse_reference(f"{server.host}/team/app:1")])
    assert time.monotonic() - t0 < 4
    # SIGTERM: distill exits with 143 at once, not once the uploads are done
    proc = subprocess.Popen(
        [sys.executable, "-m", "distill", "push", str(tmp_path / "img"), f"{server.host}/team/other:1", "-q"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while sum(1 for m, p, _ in server.seen if m == "POST" and "/team/other/" in p) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.5)
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    assert time.monotonic() - t0 < 4


def test_a_plain_http_registry_client_still_verifies_https(tmp_path: Path) -> None:
    """The client of a plain-HTTP registry (loopback, --insecure-registry) makes its TLS
    context only when a request goes to https:// (a redirect to storage): that request
    verifies the certificate as any other — a self-signed server is refused."""
    import ssl

    import httpx

    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "k.pem"),
         "-out", str(tmp_path / "c.pem"), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "c.pem", tmp_path / "k.pem")
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    registry = Registry(f"127.0.0.1:{server.server_address[1]}")  # loopback: plain HTTP
    try:
        assert registry.base.startswith("http://")
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            registry.client.get(f"https://127.0.0.1:{server.server_address[1]}/")
        # the server does answer over TLS to a client that trusts it: the refusal was the certificate's
        trusted = httpx.Client(verify=ssl.create_default_context(cafile=str(tmp_path / "c.pem")))
        assert trusted.get(f"https://127.0.0.1:{server.server_address[1]}/").text == "ok"
        trusted.close()
    finally:
        registry.close()
        server.shutdown()
        server.server_close()


def test_a_plain_http_registry_client_keeps_a_configured_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a proxy in the environment httpx mounts its transports: the TLS-on-demand one
    is not put over them (https:// keeps going through the proxy, verified)."""
    from distill.http import _TLSOnDemand

    plain = Registry("127.0.0.1:5000")
    assert any(isinstance(t, _TLSOnDemand) for t in plain.client._mounts.values())
    plain.close()
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    proxied = Registry("127.0.0.1:5000")
    try:
        assert proxied.client._mounts and not any(
            isinstance(t, _TLSOnDemand) for t in proxied.client._mounts.values()
        )
    finally:
        proxied.close()
