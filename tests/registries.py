"""Real registries for the tests: Debian's docker-registry on 127.0.0.1 (open, with
htpasswd Basic auth, or with a bearer token service of the tests' own), and a
meddling proxy in front of one (5xx answers, cut connections, rewritten bodies) for
the fault tests. The registry is the real server; only the proxy is the tests'."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sh(*cmd: str, env: dict[str, str] | None = None, timeout: int = 600, stdin: str | None = None) -> str:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, input=stdin)
    assert proc.returncode == 0, f"{' '.join(cmd)}: {proc.stderr}"
    return proc.stdout


class Registry:
    """docker-registry serving a directory of its own on 127.0.0.1:PORT; its access log
    (one line per request) in ``log``, so tests count what a client really sent."""

    def __init__(self, root: Path, auth: dict | None = None, port: int | None = None) -> None:  # type: ignore[type-arg]
        if shutil.which("docker-registry") is None:
            raise AssertionError("docker-registry is missing: run scripts/setup.sh")
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.log = root / "access.log"
        config = {
            "version": 0.1,
            "log": {"level": "error", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
            "http": {"addr": self.host},
        }
        if auth:
            config["auth"] = auth
        (root / "config.yml").write_text(json.dumps(config))  # JSON is YAML
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        log = self.log.open("ab")
        self.proc = subprocess.Popen(
            ["docker-registry", "serve", str(self.root / "config.yml")], stdout=log, stderr=log
        )
        log.close()
        for _ in range(200):
            try:
                httpx.get(f"http://{self.host}/v2/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"docker-registry did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    close = stop

    def requests(self) -> list[tuple[str, str]]:
        """(method, path) of every request the registry logged, in order."""
        out = []
        for line in self.log.read_text(errors="replace").splitlines():
            # combined log format: ... "METHOD /path HTTP/1.1" status ...
            if '"' not in line:
                continue
            request = line.split('"')[1].split(" ")
            if len(request) >= 2 and request[0].isupper():
                out.append((request[0], request[1]))
        return out


class TokenService:
    """Issues registry bearer tokens (RS256 JWTs, x5c header, signed with openssl) to
    user:secret for what it asks, and to anonymous callers for nothing."""

    def __init__(self, root: Path) -> None:
        self.key, self.cert = root / "token.key", root / "token.crt"
        sh(
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(self.key),
            "-out", str(self.cert), "-days", "2", "-subj", "/CN=distill test token issuer",
        )  # fmt: skip
        der = subprocess.run(
            ["openssl", "x509", "-in", str(self.cert), "-outform", "DER"], capture_output=True, check=True
        ).stdout
        self.x5c = base64.b64encode(der).decode()
        self.scopes: list[list[str]] = []  # what each request asked for
        service = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                pass

            def do_GET(self) -> None:
                q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                auth = self.headers.get("Authorization", "")
                user = None
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    if (u, p) != ("user", "secret"):
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = u
                access = []
                service.scopes.append(q.get("scope", []))
                for scope in q.get("scope", []):
                    for one in scope.split(" "):
                        kind, name, actions = one.split(":")
                        if user:
                            access.append({"type": kind, "name": name, "actions": actions.split(",")})
                body = json.dumps({"token": service.token(user or "", q.get("service", [""])[0], access)})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body.encode())

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def auth(self) -> dict:  # type: ignore[type-arg]
        return {
            "token": {
                "realm": f"http://127.0.0.1:{self.port}/token",
                "service": "distill-test-registry",
                "issuer": "distill-test",
                "rootcertbundle": str(self.cert),
            }
        }

    def token(self, sub: str, aud: str, access: list) -> str:  # type: ignore[type-arg]
        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]}
        claims = {
            "iss": "distill-test", "sub": sub, "aud": aud, "exp": now + 600, "nbf": now - 60, "iat": now,
            "jti": hashlib.sha256(os.urandom(8)).hexdigest(), "access": access,
        }  # fmt: skip
        signing = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        sig = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signing.encode(), capture_output=True, check=True,
        ).stdout  # fmt: skip
        return f"{signing}.{b64(sig)}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def basic_auth(root: Path) -> dict:  # type: ignore[type-arg]
    if shutil.which("htpasswd") is None:
        raise AssertionError("htpasswd is missing: run scripts/setup.sh (apache2-utils)")
    htpasswd = root / "htpasswd"
    sh("htpasswd", "-Bbc", str(htpasswd), "user", "secret")
    return {"htpasswd": {"realm": "distill-test", "path": str(htpasswd)}}


# A hook sees (method, path) and returns None (forward) or what to do instead.
Hook = Callable[[str, str], "str | int | None"]


class Proxy:
    """An HTTP proxy on 127.0.0.1 in front of a real registry that misbehaves on cue:
    ``hook(method, path)`` returns None to forward, an int to answer that status,
    ``"cut"`` to close the connection after reading part of the request body, or
    ``"garble"`` to forward and change the answer's body by one byte."""

    def __init__(self, upstream: str, hook: Hook) -> None:
        self.upstream = upstream
        self.hook = hook
        self.seen: list[tuple[str, str, int]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a: object) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    parts = []
                    while True:
                        size = int(self.rfile.readline().strip() or b"0", 16)
                        if size == 0:
                            self.rfile.readline()
                            break
                        parts.append(self.rfile.read(size))
                        self.rfile.readline()
                    return b"".join(parts)
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _handle(self) -> None:
                action = proxy.hook(self.command, self.path)
                if action == "cut":
                    want = int(self.headers.get("Content-Length") or 0)
                    self.rfile.read(min(want // 2, 1 << 20))
                    proxy.seen.append((self.command, self.path, -1))
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                body = self._body()
                if isinstance(action, int):
                    proxy.seen.append((self.command, self.path, action))
                    self.send_response(action)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "transfer-encoding")
                }
                headers["Content-Length"] = str(len(body))
                conn.request(self.command, self.path, body=body, headers=headers)
                r = conn.getresponse()
                data = r.read()
                if action == "garble" and data:
                    data = data.replace(b"{", b"{ ", 1)
                proxy.seen.append((self.command, self.path, r.status))
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() in ("content-length", "transfer-encoding", "connection"):
                        continue
                    if k.lower() == "location":
                        v = v.replace(proxy.upstream, f"127.0.0.1:{proxy.port}")
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
