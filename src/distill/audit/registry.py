"""A registry as an audit source: the OCI distribution API, read-only, no daemon.

``docker://HOST[:PORT]/REPO[:TAG|@sha256:…]``. Manifests and blobs are fetched over
HTTPS (plain HTTP for loopback hosts, as docker allows, or with ``--plain-http``);
a 401 is answered as its ``WWW-Authenticate`` asks: Basic with the user's
credentials, or Bearer with a token from the realm it names (anonymous, or with the
credentials when there are some). Credentials come from ``--username`` with ``--password-stdin``,
``DISTILL_REGISTRY_USERNAME``/``DISTILL_REGISTRY_PASSWORD``, or the auth files podman
and docker write (``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json``,
``~/.docker/config.json``). Every blob is verified against its digest and its
declared size while it streams.
"""

from __future__ import annotations

import base64
import hashlib
import io
import ipaddress
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from distill import __version__, http
from distill.audit.sources import INDEXES, MANIFESTS, MAX_DOCUMENT, Source, Verified, check_digest
from distill.errors import AuditError, DistillError
from distill.limits import MiB, load_json, read_json

_REF = re.compile(
    r"^(?P<host>[^/]+)/(?P<repo>[a-z0-9]+(?:[._/-][a-z0-9]+)*)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)
MAX_AUTH_FILE = MiB  # podman's or docker's auth file
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')
MAX_TOKEN = MiB  # a token service's JSON answer (a few KiB; as containers/image)


def _loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0].strip("[]") if not host.startswith("[") else host[1:].split("]")[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


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
        if not f:
            continue
        if not Path(f).is_file():
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


class RegistrySource(Source):
    def __init__(
        self,
        host: str,
        repo: str,
        tag: str | None,
        digest: str | None,
        name: str,
        auth: tuple[str, str] | None = None,
        plain_http: bool = False,
    ) -> None:
        self.host, self.repo, self.tag, self.pinned, self.name = host, repo, tag, digest, name
        self.ref = tag
        self.creds = auth or stored_credentials(host)
        scheme = "http" if plain_http or _loopback(host) else "https"
        self.base = f"{scheme}://{host}/v2/{repo}"
        self.authorization: str | None = None
        self.client = http.client(
            read=60.0,
            connect=15.0,
            follow_redirects=True,
            headers={"User-Agent": f"distill/{__version__}"},
        )

    @classmethod
    def parse(
        cls, target: str, auth: tuple[str, str] | None = None, plain_http: bool = False
    ) -> RegistrySource:
        m = _REF.match(target.removeprefix("docker://"))
        host = m.group("host") if m else ""
        if not m or not ("." in host or ":" in host or host == "localhost"):
            raise AuditError(
                f"{target}: not a registry reference",
                hint="docker://HOST[:PORT]/REPO[:TAG] or docker://HOST/REPO@sha256:…; the registry host is always named",
            )
        tag: str | None = m.group("tag") or (None if m.group("digest") else "latest")
        return cls(host, m.group("repo"), tag, m.group("digest"), target, auth, plain_http)

    # -- HTTP with the challenge-response dance ---------------------------------

    def _authenticate(self, response: httpx.Response) -> None:
        header = response.headers.get("www-authenticate", "")
        scheme, _, rest = header.partition(" ")
        params = dict(_CHALLENGE.findall(rest))
        if scheme.lower() == "basic":
            if self.creds is None:
                raise AuditError(
                    f"{self.name}: the registry wants a user name and password",
                    hint="--username with --password-stdin, DISTILL_REGISTRY_USERNAME/PASSWORD, or podman login",
                )
            basic = base64.b64encode(f"{self.creds[0]}:{self.creds[1]}".encode()).decode()
            self.authorization = f"Basic {basic}"
            return
        if scheme.lower() != "bearer" or "realm" not in params:
            raise AuditError(
                f"{self.name}: the registry asks for an unsupported authentication ({header or 'none named'})"
            )
        query = {
            "service": params.get("service", ""),
            "scope": params.get("scope", f"repository:{self.repo}:pull"),
        }
        try:
            with (
                http.deadline(),
                self.client.stream(
                    "GET",
                    params["realm"],
                    params={k: v for k, v in query.items() if v},
                    auth=httpx.BasicAuth(*self.creds) if self.creds else None,
                ) as r,
            ):
                answer = http.read_capped(r, MAX_TOKEN)
        except http.TooLarge:
            raise AuditError(
                f"{self.name}: the token service's answer is larger than {MAX_TOKEN} bytes"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:  # InvalidURL: a realm or host httpx cannot parse
            raise AuditError(
                f"{self.name}: cannot reach the token service {params['realm']} ({_describe(exc)})"
            ) from None
        if r.status_code in (401, 403):
            raise AuditError(
                f"{self.name}: the token service refused {'the credentials' if self.creds else 'anonymous access'} ({r.status_code})",
                hint=None if self.creds else "--username with --password-stdin, or podman login",
            )
        token: str | None = None
        try:
            body = load_json(answer, label="token", error=AuditError, limit=MAX_TOKEN)
        except AuditError:
            body = None
        if isinstance(body, dict):
            found = body.get("token") or body.get("access_token")
            token = found if isinstance(found, str) else None
        if r.status_code != 200 or not token:
            raise AuditError(f"{self.name}: the token service answered {r.status_code} without a token")
        self.authorization = f"Bearer {token}"

    @contextmanager
    def _get(self, url: str, accept: str | None = None) -> Iterator[httpx.Response]:
        # One deadline for the request and the reading of its body by the caller.
        with http.deadline():
            yield from self._get_within_deadline(url, accept)

    def _get_within_deadline(self, url: str, accept: str | None) -> Iterator[httpx.Response]:
        for attempt in range(2):
            headers = {}
            if accept:
                headers["Accept"] = accept
            if self.authorization:
                headers["Authorization"] = self.authorization
            try:
                with self.client.stream("GET", url, headers=headers) as r:
                    if r.status_code == 401 and attempt == 0:
                        self._authenticate(r)
                        continue
                    if r.status_code == 401:
                        who = "the credentials" if self.creds else "anonymous access"
                        raise AuditError(
                            f"{self.name}: the registry refused {who} (401)",
                            hint=None if self.creds else "--username with --password-stdin, or podman login",
                        )
                    if r.status_code == 403:
                        raise AuditError(f"{self.name}: access denied (403)")
                    if r.status_code == 404:
                        raise AuditError(
                            f"{self.name}: not found in the registry ({url.rsplit('/', 2)[-2]} {url.rsplit('/', 1)[-1]})"
                        )
                    if r.status_code != 200:
                        raise AuditError(f"{self.name}: the registry answered {r.status_code} for {url}")
                    yield r
                    return
            except (
                httpx.HTTPError,
                httpx.InvalidURL,
            ) as exc:  # InvalidURL: a realm or host httpx cannot parse
                raise AuditError(
                    f"{self.name}: cannot reach {self.host} ({_describe(exc)})",
                    hint="--plain-http for a registry without TLS" if "SSL" in str(exc) else None,
                ) from None
        raise AuditError(f"{self.name}: authentication failed")  # pragma: no cover

    def top(self) -> tuple[str, bytes, str | None]:
        ref = self.pinned or self.tag or "latest"
        with self._get(f"{self.base}/manifests/{ref}", ", ".join((*INDEXES, *MANIFESTS))) as r:
            declared = int(r.headers.get("content-length") or 0)
            if declared > MAX_DOCUMENT:
                raise AuditError(
                    f"{self.name}: the manifest declares {declared} bytes; refusing more than {MAX_DOCUMENT}"
                )
            data = b""
            for chunk in r.iter_raw():
                data += chunk
                if len(data) > MAX_DOCUMENT:
                    raise AuditError(f"{self.name}: the manifest is larger than {MAX_DOCUMENT} bytes")
            media = r.headers.get("content-type", "").split(";")[0]
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if self.pinned and digest != self.pinned:
            raise AuditError(f"{self.name}: the registry's manifest does not match {self.pinned}")
        return media, data, digest

    @contextmanager
    def open_blob(self, digest: str, size: int | None) -> Iterator[Verified]:
        with self._get(f"{self.base}/blobs/{check_digest(digest)}") as r:
            yield Verified(_Chunks(r.iter_raw(1 << 20)), digest, f"{self.name}: blob {digest}", size)

    def close(self) -> None:
        self.client.close()
