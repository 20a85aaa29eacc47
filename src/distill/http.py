"""Time and size limits for every HTTP request distill makes.

httpx has connect and read timeouts, but each read timeout starts again with every
byte: a server that sends one byte a second (in the headers or in the body) keeps a
request alive forever. Every request therefore runs under a *total deadline*
(:func:`deadline`, ``DISTILL_HTTP_TIMEOUT`` seconds, default :data:`DEFAULT_TOTAL`),
enforced where the bytes arrive: clients made by :func:`client` read the socket
through a network backend that gives each read at most the time left, and fails once
none is left. Bodies are read with a size cap (:func:`read_capped`).
"""

from __future__ import annotations

import os
import threading
import time
import typing
from collections.abc import Iterator
from contextlib import contextmanager

import httpcore
import httpx

from distill.errors import DistillError

ENV_TIMEOUT = "DISTILL_HTTP_TIMEOUT"
DEFAULT_TOTAL = 600.0  # seconds for one file, every retry included
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0  # silence between two reads

_state = threading.local()  # the deadline of the request this thread is making


def total_timeout() -> float:
    """The total deadline per request: ``DISTILL_HTTP_TIMEOUT`` or the default."""
    text = os.environ.get(ENV_TIMEOUT, "").strip()
    if not text:
        return DEFAULT_TOTAL
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e7:
        raise DistillError(f"{ENV_TIMEOUT} must be a number of seconds above 0")
    return value


@contextmanager
def deadline(seconds: float | None = None) -> Iterator[float]:
    """Requests made by this thread inside the block end by ``seconds`` from now
    (default :func:`total_timeout`); an enclosing, earlier deadline still holds."""
    outer: float | None = getattr(_state, "deadline", None)
    end = time.monotonic() + (total_timeout() if seconds is None else seconds)
    if outer is not None:
        end = min(end, outer)
    _state.deadline = end
    try:
        yield end
    finally:
        _state.deadline = outer


def expired() -> bool:
    """True when this thread's deadline has passed."""
    end: float | None = getattr(_state, "deadline", None)
    return end is not None and time.monotonic() >= end


def _time_left(timeout: float | None, exc: type[Exception]) -> float | None:
    end: float | None = getattr(_state, "deadline", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise exc("the total deadline of the request passed")
    return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self.inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.inner.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.inner.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self.inner.close()

    def start_tls(
        self,
        ssl_context: typing.Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        left = _time_left(timeout, httpcore.ConnectTimeout)
        return _Stream(self.inner.start_tls(ssl_context, server_hostname, left))

    def get_extra_info(self, info: str) -> typing.Any:
        return self.inner.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self.inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = _time_left(timeout, httpcore.ConnectTimeout)
        return _Stream(self.inner.connect_tcp(host, port, left, local_address, socket_options))

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.NetworkStream:
        left = _time_left(timeout, httpcore.ConnectTimeout)
        return _Stream(self.inner.connect_unix_socket(path, left, socket_options))

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def _wrap(transport: typing.Any) -> None:
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if isinstance(backend, httpcore.NetworkBackend) and not isinstance(backend, _Backend):
        pool._network_backend = _Backend(backend)  # type: ignore[union-attr]


class _TLSOnDemand(httpx.BaseTransport):
    """The https:// transport of a client that talks plain HTTP: made (and its TLS
    context, with the CA store, loaded: ~20 ms) on the first https:// request only —
    a redirect elsewhere. It verifies certificates as any other."""

    def __init__(self, limits: typing.Any) -> None:
        self._limits = limits
        self._inner: httpx.HTTPTransport | None = None
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            if self._inner is None:
                self._inner = httpx.HTTPTransport(verify=True, limits=self._limits)
                _wrap(self._inner)
        return self._inner.handle_request(request)

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()


def client(
    *,
    connect: float = CONNECT_TIMEOUT,
    read: float = READ_TIMEOUT,
    plain_http: bool = False,
    **kwargs: typing.Any,
) -> httpx.Client:
    """An ``httpx.Client`` whose sockets honour :func:`deadline`.

    httpx does not take a network backend, so the one of each connection pool it built
    (the default transport and any proxy's) is wrapped after the fact; the attribute
    names are httpcore's since 0.17. Should they change, the per-chunk checks of
    :func:`read_capped` still bound the body (not the headers).

    ``plain_http``: the client's own origin is http:// (a loopback or --insecure-registry
    registry): its TLS context is made only if a request goes to https:// (unless a
    proxy is configured, which then handles https:// as it would)."""
    if plain_http:
        kwargs["verify"] = False  # the default transport carries http:// only (https:// is mounted)
    c = httpx.Client(timeout=httpx.Timeout(read, connect=connect), **kwargs)
    if plain_http:
        mounts = getattr(c, "_mounts", None)
        pattern = getattr(getattr(httpx, "_utils", None), "URLPattern", None)  # httpx's own, since 0.18
        if isinstance(mounts, dict) and not mounts and pattern is not None:
            mounts[pattern("https://")] = _TLSOnDemand(httpx.Limits())
        else:  # proxies from the environment (or httpx changed): https:// verified at once
            c.close()
            kwargs["verify"] = True
            c = httpx.Client(timeout=httpx.Timeout(read, connect=connect), **kwargs)
    for transport in [getattr(c, "_transport", None), *getattr(c, "_mounts", {}).values()]:
        _wrap(transport)
    return c


class TooLarge(Exception):
    """A body larger than the cap (the caller turns it into its own error)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"larger than the limit of {limit} bytes")
        self.size = size
        self.limit = limit


def read_capped(response: httpx.Response, limit: int) -> bytes:
    """The body of a streamed response, refused (:class:`TooLarge`) past ``limit`` bytes,
    and (:class:`httpx.ReadTimeout`) once the deadline has passed."""
    declared = response.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise TooLarge(int(declared), limit)
    chunks: list[bytes] = []
    total = 0
    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > limit:
            raise TooLarge(total, limit)
        chunks.append(chunk)
        if expired():
            raise httpx.ReadTimeout("the total deadline of the request passed")
    return b"".join(chunks)
