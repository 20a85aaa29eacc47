"""Issue 17 D13: every HTTP request has a total deadline and a size cap.

A slow-drip server on 127.0.0.1 sends one byte every 0.1 s, forever: each byte
arrives well within httpx's read timeout, so only a total deadline ends the request.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from debrepo import Key, Server, spec_yaml
from distill import http
from distill.archive.transport import Transport
from distill.errors import ArchiveError, DistillError, NetworkError, RegistryError
from distill.oci.registry import RegistrySource
from hostile import finishes_within, one_error_line
from test_cli import run

LIMIT = 2.0  # DISTILL_HTTP_TIMEOUT in these tests


class Drip:
    """Answers every request on 127.0.0.1 by dribbling: in the body (a declared 1 MB
    of JSON) or, before any body, in an endless header."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            try:
                conn.settimeout(5)
                request = b""
                while b"\r\n\r\n" not in request:
                    data = conn.recv(4096)
                    if not data:
                        return
                    request += data
                if self.where == "body":
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n"
                        b"Content-Type: application/vnd.oci.image.manifest.v1+json\r\n\r\n"
                    )
                else:
                    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Drip: ")
                while not self.stop.is_set():
                    conn.sendall(b"a")
                    time.sleep(0.1)
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture(params=["body", "headers"])
def drip(request: pytest.FixtureRequest) -> Iterator[Drip]:
    server = Drip(request.param)
    yield server
    server.close()


@pytest.fixture
def limit(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setenv(http.ENV_TIMEOUT, str(LIMIT))
    return LIMIT


def run_distill(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    proc = run(*args, cwd=cwd, cache=cwd / ".cache")
    return proc, time.monotonic() - start


# Python's start and the connection come on top of the deadline itself.
SLACK = 3.0


def test_archive_get_ends_at_the_total_deadline(drip: Drip, limit: float) -> None:
    transport = Transport()
    try:
        exc = finishes_within(limit + SLACK, lambda: transport.get(f"{drip.url}/dists/stable/InRelease"))
    finally:
        transport.close()
    assert isinstance(exc, NetworkError), exc
    assert f"no complete answer within {limit:g} s" in str(exc)


def test_archive_download_ends_at_the_total_deadline(drip: Drip, limit: float, tmp_path: Path) -> None:
    transport = Transport()
    try:
        exc = finishes_within(
            limit + SLACK,
            lambda: transport.download(
                f"{drip.url}/pool/a.deb",
                tmp_path / "a.deb",
                sha256="0" * 64,
                size=1_000_000,
                partial=tmp_path / "a.partial",
            ),
        )
    finally:
        transport.close()
    assert isinstance(exc, NetworkError), exc
    assert not (tmp_path / "a.deb").exists()


def test_registry_request_ends_at_the_total_deadline(drip: Drip, limit: float) -> None:
    source = RegistrySource.parse(f"docker://127.0.0.1:{drip.port}/x:y")
    try:
        exc = finishes_within(limit + SLACK, source.top)
    finally:
        source.close()
    assert isinstance(exc, RegistryError), exc
    assert "total deadline" in str(exc)


def test_audit_of_a_slow_drip_registry_is_one_error_line(drip: Drip, limit: float, tmp_path: Path) -> None:
    proc, elapsed = run_distill("audit", f"docker://127.0.0.1:{drip.port}/x:y", cwd=tmp_path)
    line = one_error_line(proc)
    assert "total deadline" in line and f"127.0.0.1:{drip.port}" in line
    assert elapsed < LIMIT + SLACK + 2


def test_lock_against_a_slow_drip_mirror_is_one_error_line(
    drip: Drip, limit: float, key: Key, tmp_path: Path
) -> None:
    (tmp_path / "s.yaml").write_text(spec_yaml(drip.url, key.keyring, ["app"]))
    proc, elapsed = run_distill("lock", "s.yaml", cwd=tmp_path)
    line = one_error_line(proc)
    assert f"no complete answer within {LIMIT:g} s" in line and "InRelease" in line
    assert elapsed < LIMIT + SLACK + 2


def test_bodies_are_capped(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"x" * 5000)
    server = Server(tmp_path)
    transport = Transport(retries=0)
    try:
        with pytest.raises(ArchiveError, match="larger than the limit of 1000 bytes"):
            transport.get(f"{server.url}/big", max_size=1000)
        assert transport.get(f"{server.url}/big", max_size=5000).content == b"x" * 5000
    finally:
        transport.close()
        server.close()


def test_the_deadline_setting_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(http.ENV_TIMEOUT, raising=False)
    assert http.total_timeout() == http.DEFAULT_TOTAL
    for bad in ("soon", "0", "-5", "nan"):
        monkeypatch.setenv(http.ENV_TIMEOUT, bad)
        with pytest.raises(DistillError, match=http.ENV_TIMEOUT):
            http.total_timeout()
    monkeypatch.setenv(http.ENV_TIMEOUT, "2.5")
    assert http.total_timeout() == 2.5
