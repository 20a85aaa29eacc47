"""The registry client: the OCI distribution API, for reading and for pushing.

``HOST[:PORT]/REPO``. HTTPS with the host's CA certificates (plus ``--ca-cert``);
plain HTTP only for loopback hosts (as docker allows) or for hosts the user names
with ``--insecure-registry``. A 401 is answered as its ``WWW-Authenticate`` asks:
Basic with the user's credentials, or Bearer with a token from the realm it names
for the scopes the operation needs (anonymous, or with the credentials). Credentials
come from ``--username`` with ``--password-stdin``, ``DISTILL_REGISTRY_USERNAME`` /
``DISTILL_REGISTRY_PASSWORD``, or the auth files podman and docker write
(``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json``,
``~/.docker/config.json``). Every request runs under distill's total deadline; a
5xx answer or a dropped connection is retried with backoff where that is safe.

:class:`RegistrySource` reads an image (every blob verified while it streams);
:class:`Registry` also writes: blobs (HEAD first, cross-repository mount, monolithic
or chunked upload resumed where the registry allows) and manifests.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from distill import __version__, http
from distill.errors import DistillError, RegistryError
from distill.limits import MiB, load_json, read_json
from distill.oci.ref import Reference, is_loopback, parse_reference
from distill.oci.source import INDEXES, MANIFESTS, MAX_DOCUMENT, Document, Source, Verified, check_digest

MAX_AUTH_FILE = MiB  # podman's or docker's auth file
MAX_TOKEN = MiB  # a token service's JSON answer (a few KiB; as containers/image)
MAX_ERROR_BODY = 64 * 1024  # a registry's error document
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
RETRIES = 4  # attempts for a request that may be repeated
BACKOFF = 0.5  # seconds before the second attempt; doubled each time
DEFAULT_CHUNK = 64 * MiB  # blobs larger than this are uploaded in chunks (PATCH)
ACCEPT = ", ".join((*INDEXES, *MANIFESTS))


@dataclass(frozen=True)
class RegistrySettings:
    """How to reach registries: credentials, hosts allowed over plain HTTP, extra CAs."""

    auth: tuple[str, str] | None = None
    insecure: frozenset[str] = frozenset()
    ca_cert: Path | None = None
    plain_http: bool = False  # every host over HTTP (the audit's --plain-http)
    chunk_size: int = DEFAULT_CHUNK

    def scheme(self, host: str) -> str:
        return "http" if self.plain_http or host in self.insecure or is_loopback(host) else "https"


def stored_credentials(host: str) -> tuple[str, str] | None:
    """Credentials for ``host`` from the environment or podman's / docker's auth files."""
    user, password = os.environ.get("DISTILL_REGISTRY_USERNAME"), os.environ.get("DISTILL_REGISTRY_PASSWORD")
    if user and password is not None:
        return user, password
    files = [os.environ.get("REGISTRY_AUTH_FILE")]
    if os.environ.get("XDG_RUNTIME_DIR"):
        files.append(os.path.join(os.environ["XDG_RUNTIME_DIR"], "containers", "auth.json"))
    files.append(str(Path.home() / ".docker" / "config.json"))
    for f in files:
        if not f or not Path(f).is_file():
            continue
        try:
            doc = read_json(Path(f), MAX_AUTH_FILE)
            auths = doc.get("auths") if isinstance(doc, dict) else None
            entry = auths.get(host) if isinstance(auths, dict) else None
            token = entry.get("auth") if isinstance(entry, dict) else None
            if isinstance(token, str) and token:
                u, _, p = base64.b64decode(token).decode().partition(":")
                return u, p
        except (DistillError, ValueError):  # unreadable or malformed: as if absent
            continue
    return None


def _describe(exc: Exception) -> str:
    if http.expired():
        return f"no complete answer within the total deadline ({http.ENV_TIMEOUT})"
    return f"{type(exc).__name__}: {exc}"


def _error_code(body: bytes) -> str:
    """The distribution error code of an error answer's body, e.g. MANIFEST_INVALID."""
    try:
        doc = load_json(body, label="error", error=RegistryError, limit=MAX_ERROR_BODY)
    except RegistryError:
        return ""
    errors = doc.get("errors") if isinstance(doc, dict) else None
    first = errors[0] if isinstance(errors, list) and errors else None
    code = first.get("code") if isinstance(first, dict) else None
    return code if isinstance(code, str) and re.fullmatch(r"[A-Z_]{1,64}", code) else ""


def _header_int(value: str) -> int | None:
    """A header's number: ASCII digits, at most 18 of them (``str.isdigit`` takes '²', which
    ``int()`` refuses, and ``int()`` refuses more than 4300 digits), else None."""
    value = value.strip()
    return int(value) if re.fullmatch(r"[0-9]{1,18}", value) else None


class _Chunks(io.RawIOBase):
    """An iterator of byte chunks as a readable stream."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        super().__init__()
        self.chunks = chunks
        self.buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self.buf:
            try:
                self.buf = next(self.chunks)
            except StopIteration:
                return 0
        n = min(len(buffer), len(self.buf))
        buffer[:n] = self.buf[:n]
        self.buf = self.buf[n:]
        return n


class _Transient(Exception):
    """A failure worth another attempt (5xx, a dropped connection)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Registry:
    """One registry host: authentication (per scope set), retries, TLS."""

    def __init__(self, host: str, settings: RegistrySettings | None = None, name: str | None = None) -> None:
        self.host = host
        self.settings = settings or RegistrySettings()
        self.name = name or host
        self.creds = self.settings.auth or stored_credentials(host)
        self.base = f"{self.settings.scheme(host)}://{host}/v2"
        base = httpx.URL(self.base)
        self._origin = (base.scheme, base.host, base.port)
        self._auth: dict[frozenset[str], str] = {}  # scopes -> Authorization header
        self._basic = False  # the registry asked for Basic: one header for everything
        self._lock = threading.Lock()
        verify: ssl.SSLContext | bool = True
        plain = not self.base.startswith("https")
        if not plain:
            ctx = ssl.create_default_context()  # the host's CAs (and SSL_CERT_FILE)
            if self.settings.ca_cert is not None:
                try:
                    ctx.load_verify_locations(cafile=str(self.settings.ca_cert))
                except (OSError, ssl.SSLError) as exc:
                    raise RegistryError(
                        f"--ca-cert {self.settings.ca_cert}: not a readable PEM file ({exc})"
                    ) from None
            verify = ctx
        self.client = http.client(
            read=60.0,
            connect=15.0,
            follow_redirects=True,
            verify=verify,
            plain_http=plain,
            headers={"User-Agent": f"distill/{__version__}"},
        )

    def close(self) -> None:
        self.client.close()

    # -- authentication ---------------------------------------------------------

    def _own(self, url: str | httpx.URL) -> bool:
        """Whether ``url`` is on the registry's own origin (scheme, host, port): only there
        do credentials and tokens go. An upload Location or a redirect to another host, or
        to plain HTTP, gets none, and a 401 from there is not answered with them."""
        try:
            u = httpx.URL(url)
        except httpx.InvalidURL:
            return False
        return (u.scheme, u.host, u.port) == self._origin

    def _authorization(self, scopes: frozenset[str]) -> str | None:
        with self._lock:
            if self._basic:
                return next(iter(self._auth.values()), None)
            return self._auth.get(scopes)

    def _authenticate(self, response: httpx.Response, scopes: frozenset[str]) -> None:
        header = response.headers.get("www-authenticate", "")
        scheme, _, rest = header.partition(" ")
        params = dict(_CHALLENGE.findall(rest))
        if scheme.lower() == "basic":
            if self.creds is None:
                raise RegistryError(
                    f"{self.name}: the registry wants a user name and password",
                    hint="--username with --password-stdin, DISTILL_REGISTRY_USERNAME/PASSWORD, or podman login",
                )
            basic = base64.b64encode(f"{self.creds[0]}:{self.creds[1]}".encode()).decode()
            with self._lock:
                self._basic = True
                self._auth = {scopes: f"Basic {basic}"}
            return
        if scheme.lower() != "bearer" or "realm" not in params:
            raise RegistryError(
                f"{self.name}: the registry asks for an unsupported authentication ({header[:80] or 'none named'})"
            )
        wanted = sorted(scopes | ({params["scope"]} if params.get("scope") else set()))
        query: list[tuple[str, str | int | float | bool | None]] = [("scope", s) for s in wanted]
        if params.get("service"):
            query.insert(0, ("service", params["service"]))
        try:
            with (
                http.deadline(),
                self.client.stream(
                    "GET",
                    params["realm"],
                    params=query,
                    auth=httpx.BasicAuth(*self.creds) if self.creds else None,
                ) as r,
            ):
                answer = http.read_capped(r, MAX_TOKEN)
        except http.TooLarge:
            raise RegistryError(
                f"{self.name}: the token service's answer is larger than {MAX_TOKEN} bytes"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL: a realm httpx cannot parse
            raise RegistryError(
                f"{self.name}: cannot reach the token service {params['realm'][:200]} ({_describe(exc)})"
            ) from None
        if r.status_code in (401, 403):
            raise RegistryError(
                f"{self.name}: the token service refused {'the credentials' if self.creds else 'anonymous access'} ({r.status_code})",
                hint=None if self.creds else "--username with --password-stdin, or podman login",
            )
        token: str | None = None
        try:
            body = load_json(answer, label="token", error=RegistryError, limit=MAX_TOKEN)
        except RegistryError:
            body = None
        if isinstance(body, dict):
            found = body.get("token") or body.get("access_token")
            token = found if isinstance(found, str) else None
        if r.status_code != 200 or not token:
            raise RegistryError(f"{self.name}: the token service answered {r.status_code} without a token")
        if not re.fullmatch(r"[\x21-\x7e]+", token):  # it goes into a header (never quoted here)
            raise RegistryError(
                f"{self.name}: the token service's token has characters other than printable ASCII"
            )
        with self._lock:
            self._auth[scopes] = f"Bearer {token}"

    # -- requests ---------------------------------------------------------------

    @contextmanager
    def request(
        self,
        method: str,
        url: str,
        *,
        scopes: frozenset[str],
        headers: dict[str, str] | None = None,
        content: Callable[[], Any] | None = None,
        ok: tuple[int, ...] = (200,),
        retry: bool = True,
        what: str = "",
    ) -> Iterator[httpx.Response]:
        """One request, its body streamed by the caller inside the block, under one total
        deadline; 401 answered once, 5xx and dropped connections retried (``retry``).
        ``content`` makes the body anew for each attempt. Answers outside ``ok`` (and
        404, which callers often expect) raise :class:`RegistryError`."""
        if not url.startswith("http"):
            url = f"{self.base}{url}"
        attempts = RETRIES if retry else 1
        delay = BACKOFF
        authenticated = False
        attempt = 0
        yielded = False
        with http.deadline():  # one total deadline: every attempt, and the caller's reading
            while True:
                attempt += 1
                try:
                    h = dict(headers or {})
                    authorization = self._authorization(scopes) if self._own(url) else None
                    if authorization:
                        h["Authorization"] = authorization
                    body = content() if content is not None else None
                    with self.client.stream(method, url, headers=h, content=body) as r:
                        if r.status_code == 401 and not self._own(r.url):
                            raise RegistryError(
                                f"{self.name}: {r.url.netloc.decode('ascii', 'replace')} (not the registry) asks for "
                                f"credentials; distill sends them only to {self.host}"
                            )
                        if r.status_code == 401 and not authenticated:
                            self._authenticate(r, scopes)
                            authenticated = True
                            attempt -= 1
                            continue
                        if r.status_code in ok:
                            yielded = True
                            yield r
                            return
                        self._fail(r, method, url, what)
                except _Transient as exc:
                    if attempt >= attempts or http.expired():
                        raise RegistryError(
                            f"{self.name}: {exc.message}", status=exc.status, transient=True
                        ) from None
                except (httpx.TransportError, httpx.InvalidURL) as exc:
                    if yielded or isinstance(exc, httpx.InvalidURL) or attempt >= attempts or http.expired():
                        raise RegistryError(
                            f"{self.name}: cannot reach {self.host} ({_describe(exc)})",
                            hint="--insecure-registry HOST for a registry without TLS"
                            if "SSL" in str(exc) or "certificate" in str(exc).lower()
                            else None,
                            transient=not isinstance(exc, httpx.InvalidURL),
                        ) from None
                except (httpx.HTTPError, httpx.StreamError) as exc:
                    # not the network: a redirect loop, a body that does not decode as its
                    # Content-Encoding says, an upload redirected (a stream is sent once)
                    path = urllib.parse.urlsplit(url).path.removeprefix("/v2/")
                    raise RegistryError(
                        f"{self.name}: the answer to {method} {path[:200]} cannot be used ({_describe(exc)})"
                    ) from None
                time.sleep(delay)
                delay *= 2

    def _fail(self, r: httpx.Response, method: str, url: str, what: str) -> None:
        path = urllib.parse.urlsplit(url).path.removeprefix("/v2/")
        if r.status_code >= 500 or r.status_code == 429:
            raise _Transient(f"the registry answered {r.status_code} for {method} {path}", r.status_code)
        try:
            body = http.read_capped(r, MAX_ERROR_BODY)
        except (http.TooLarge, httpx.HTTPError):
            body = b""
        code = _error_code(body)
        detail = f" ({code})" if code else ""
        if r.status_code == 401:
            who = "the credentials" if self.creds else "anonymous access"
            raise RegistryError(
                f"{self.name}: the registry refused {who} (401){detail}",
                hint=None if self.creds else "--username with --password-stdin, or podman login",
            )
        if r.status_code == 403:
            raise RegistryError(f"{self.name}: access denied (403){detail} for {method} {path}")
        if r.status_code == 404:
            kind, _, ref = path.rpartition("/")
            raise RegistryError(
                f"{self.name}: not found in the registry ({kind.rsplit('/', 1)[-1]} {ref}){detail}"
            )
        raise RegistryError(
            f"{self.name}: the registry refused {what or method + ' ' + path}: {r.status_code}{detail}"
        )

    # -- reading ----------------------------------------------------------------

    def get_manifest(self, repo: str, reference: str, name: str) -> Document:
        found = self._get_manifest(repo, reference, name, missing_ok=False)
        assert found is not None
        return found

    def find_manifest(self, repo: str, reference: str, name: str) -> Document | None:
        """The manifest a tag or digest names, or None when the registry has none (404)."""
        return self._get_manifest(repo, reference, name, missing_ok=True)

    def _get_manifest(self, repo: str, reference: str, name: str, missing_ok: bool) -> Document | None:
        with self.request(
            "GET",
            f"/{repo}/manifests/{reference}",
            scopes=pull(repo),
            headers={"Accept": ACCEPT},
            ok=(200, 404) if missing_ok else (200,),
        ) as r:
            if r.status_code == 404:
                return None
            declared = r.headers.get("content-length", "")
            if (_header_int(declared) or 0) > MAX_DOCUMENT:
                raise RegistryError(
                    f"{name}: the manifest declares {declared} bytes; refusing more than {MAX_DOCUMENT}"
                )
            try:
                data = http.read_capped(r, MAX_DOCUMENT)
            except http.TooLarge:
                raise RegistryError(f"{name}: the manifest is larger than {MAX_DOCUMENT} bytes") from None
            media = r.headers.get("content-type", "").split(";")[0].strip()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(f"{name}: the registry's manifest does not match {reference}")
        return Document(media, data, digest)

    def manifest_digest(self, repo: str, reference: str) -> str | None:
        """The digest a tag or digest names now (HEAD), or None when there is none."""
        with self.request(
            "HEAD",
            f"/{repo}/manifests/{reference}",
            scopes=pull(repo),
            headers={"Accept": ACCEPT},
            ok=(200, 404),
        ) as r:
            if r.status_code == 404:
                return None
            digest = str(r.headers.get("docker-content-digest", ""))
        if re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            return digest
        return self.get_manifest(repo, reference, self.name).digest  # a registry that does not say

    def has_blob(self, repo: str, digest: str) -> bool:
        with self.request(
            "HEAD", f"/{repo}/blobs/{check_digest(digest)}", scopes=pull(repo), ok=(200, 404)
        ) as r:
            return r.status_code == 200

    # -- writing ----------------------------------------------------------------

    def put_manifest(self, repo: str, reference: str, media_type: str, data: bytes) -> str | None:
        """Store a manifest under a tag or its digest; returns the ``OCI-Subject`` the
        registry answered (it handled the manifest's ``subject``: it has the referrers API)."""
        with self.request(
            "PUT",
            f"/{repo}/manifests/{reference}",
            scopes=push(repo),
            headers={"Content-Type": media_type},
            content=lambda: data,
            ok=(200, 201),
            what=f"the manifest {reference}",
        ) as r:
            self._check_stored(r, "sha256:" + hashlib.sha256(data).hexdigest(), "the manifest")
            subject = r.headers.get("oci-subject")
        return str(subject) if subject else None

    def _check_stored(self, r: httpx.Response, want: str, what: str) -> None:
        """A write the registry answered with the digest of what it stored: that must be
        what was sent (a registry that stores something else fails the push)."""
        got = r.headers.get("docker-content-digest")
        if got and got != want:
            raise RegistryError(f"{self.name}: the registry stored {what} as {got[:80]}, not {want}")

    def referrers(self, repo: str, digest: str) -> bytes | None:
        """The referrers index of ``digest`` (OCI distribution 1.1), or None when the
        registry has no referrers API (a 404 for the endpoint: the tag schema applies)."""
        with self.request(
            "GET",
            f"/{repo}/referrers/{check_digest(digest)}",
            scopes=pull(repo),
            headers={"Accept": INDEXES[0]},
            ok=(200, 404),
        ) as r:
            media = r.headers.get("content-type", "").split(";")[0].strip()
            if r.status_code == 404 or media != INDEXES[0]:
                return None  # distribution 2.8 answers 404 (an unknown route)
            try:
                return http.read_capped(r, MAX_DOCUMENT)
            except http.TooLarge:
                raise RegistryError(
                    f"{self.name}: the referrers of {digest} are larger than {MAX_DOCUMENT} bytes"
                ) from None

    def read_small_blob(self, repo: str, digest: str, limit: int) -> bytes:
        """A blob of at most ``limit`` bytes read whole, checked against its digest."""
        with self.request("GET", f"/{repo}/blobs/{check_digest(digest)}", scopes=pull(repo)) as r:
            try:
                data = http.read_capped(r, limit)
            except http.TooLarge:
                raise RegistryError(f"{self.name}: blob {digest} is larger than {limit} bytes") from None
        if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
            raise RegistryError(f"{self.name}: blob {digest} does not match its digest")
        return data

    def upload(self, repo: str, data: bytes) -> str:
        """A small blob stored in one PUT (unless the repository has it); its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.has_blob(repo, digest):
            location, _ = self.start_upload(repo)
            self.put_blob(repo, location, digest, len(data), lambda: data)
        return digest

    def mount(self, repo: str, digest: str, source_repo: str) -> str | None:
        """Mount a blob from another repository of this registry: None when mounted,
        else the upload location the registry opened instead (or "" when it refused)."""
        query = urllib.parse.urlencode({"mount": digest, "from": source_repo})
        try:
            with self.request(
                "POST",
                f"/{repo}/blobs/uploads/?{query}",
                scopes=push(repo) | pull(source_repo),
                content=lambda: b"",
                ok=(201, 202),
                what="a blob mount",
            ) as r:
                if r.status_code == 201:
                    self._check_stored(r, digest, "a mounted blob")
                    return None
                return self._location(r)
        except RegistryError:
            return ""  # as go-containerregistry: a failed mount is an ordinary upload

    def start_upload(self, repo: str) -> tuple[str, int]:
        """A new upload session: its location and the registry's minimum chunk size."""
        with self.request(
            "POST",
            f"/{repo}/blobs/uploads/",
            scopes=push(repo),
            content=lambda: b"",
            ok=(202,),
            what="an upload",
        ) as r:
            return self._location(r), _header_int(r.headers.get("oci-chunk-min-length", "")) or 0

    def _location(self, r: httpx.Response) -> str:
        location = r.headers.get("location")
        if not location:
            raise RegistryError(f"{self.name}: the registry opened an upload without a Location")
        return str(r.url.join(location))

    def upload_offset(self, repo: str, location: str) -> int | None:
        """How many bytes an upload session holds (GET on it), or None when it is gone."""
        try:
            with self.request("GET", location, scopes=push(repo), ok=(204, 200, 404), retry=False) as r:
                if r.status_code == 404:
                    return None
                got = r.headers.get("range", "")
        except RegistryError:
            return None
        m = re.fullmatch(r"(?:bytes=)?0-([0-9]{1,18})", got.strip())
        return int(m.group(1)) + 1 if m else 0

    def put_blob(self, repo: str, location: str, digest: str, size: int, body: Callable[[], Any]) -> None:
        """The whole blob in one PUT (monolithic upload)."""
        sep = "&" if "?" in location else "?"
        with self.request(
            "PUT",
            f"{location}{sep}digest={digest}",
            scopes=push(repo),
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            content=body,
            ok=(201, 204),
            retry=False,
            what=f"the blob {digest}",
        ) as r:
            self._check_stored(r, digest, "a blob")

    def patch_chunk(self, repo: str, location: str, start: int, data: bytes) -> str:
        """One chunk (PATCH with Content-Range): the location for the next one."""
        with self.request(
            "PATCH",
            location,
            scopes=push(repo),
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{start}-{start + len(data) - 1}",
                "Content-Length": str(len(data)),
            },
            content=lambda: data,
            ok=(202, 204),
            retry=False,
            what="a chunk of an upload",
        ) as r:
            return self._location(r)

    def finish_upload(self, repo: str, location: str, digest: str) -> None:
        sep = "&" if "?" in location else "?"
        with self.request(
            "PUT",
            f"{location}{sep}digest={digest}",
            scopes=push(repo),
            headers={"Content-Length": "0"},
            content=lambda: b"",
            ok=(201, 204),
            retry=False,
            what=f"the blob {digest}",
        ) as r:
            self._check_stored(r, digest, "a blob")


def pull(repo: str) -> frozenset[str]:
    return frozenset({f"repository:{repo}:pull"})


def push(repo: str) -> frozenset[str]:
    return frozenset({f"repository:{repo}:pull,push"})


class RegistrySource(Source):
    """An image in a registry, read through the distribution API."""

    def __init__(
        self,
        reference: Reference,
        name: str,
        settings: RegistrySettings | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.reference = reference
        self.name = name
        self.ref = reference.tag
        self.registry = registry or Registry(reference.registry, settings, name)
        self._own = registry is None

    @classmethod
    def parse(
        cls,
        target: str,
        auth: tuple[str, str] | None = None,
        plain_http: bool = False,
        settings: RegistrySettings | None = None,
    ) -> RegistrySource:
        ref = parse_reference(target, what="a registry reference")
        if settings is None:
            settings = RegistrySettings(auth=auth, plain_http=plain_http)
        elif auth is not None or plain_http:
            settings = RegistrySettings(
                auth=auth or settings.auth,
                insecure=settings.insecure,
                ca_cert=settings.ca_cert,
                plain_http=plain_http or settings.plain_http,
                chunk_size=settings.chunk_size,
            )
        return cls(ref, target, settings)

    def top(self) -> Document:
        return self.registry.get_manifest(self.reference.repository, self.reference.reference, self.name)

    def pinned(self, digest: str) -> Document:
        return self.registry.get_manifest(self.reference.repository, check_digest(digest), self.name)

    def read_manifest(self, digest: str, size: int | None) -> bytes:
        doc = self.registry.get_manifest(self.reference.repository, check_digest(digest), self.name)
        if size is not None and len(doc.data) != size:
            raise RegistryError(f"{self.name}: the manifest {digest} is {len(doc.data)} bytes, not {size}")
        return doc.data

    def current_digest(self) -> str:
        """The digest the reference names now (a tag's current image)."""
        if self.reference.digest:
            return self.reference.digest
        found = self.registry.manifest_digest(self.reference.repository, self.reference.reference)
        if found is None:
            raise RegistryError(
                f"{self.name}: not found in the registry (manifests {self.reference.reference})"
            )
        return found

    @contextmanager
    def open_blob(self, digest: str, size: int | None) -> Iterator[Verified]:
        with self.registry.request(
            "GET",
            f"/{self.reference.repository}/blobs/{check_digest(digest)}",
            scopes=pull(self.reference.repository),
        ) as r:
            yield Verified(_Chunks(r.iter_raw(1 << 20)), digest, f"{self.name}: blob {digest}", size)

    def close(self) -> None:
        if self._own:
            self.registry.close()


@dataclass
class PushStats:
    """What a push did, blob by blob (the report a user and a test read)."""

    uploaded: int = 0
    uploaded_bytes: int = 0
    mounted: int = 0
    existing: int = 0
    manifests: int = 0
    manifests_existing: int = 0
    tags: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, size: int = 0) -> None:
        with self._lock:
            setattr(self, kind, getattr(self, kind) + 1)
            if kind == "uploaded":
                self.uploaded_bytes += size
