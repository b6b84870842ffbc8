"""A real git smart-HTTP server on 127.0.0.1 for tests (``git http-backend`` behind CGI).

    with GitHTTPServer(tmp_path / "srv") as server:     # serves every repo under the root
        init_bare(server.root / "fabric.git")
        url = server.url("fabric.git")
        server.token = "s3cret"                          # require basic/bearer auth
        server.fail_next(429, headers={"Retry-After": "7"})
        server.drop_next()                               # close the socket, no answer
        server.latency = 0.5                             # seconds before each answer
        server.before_backend = lambda method, path: ... # e.g. race a push

``GitHTTPServer(root, tls=True)`` serves https with a self-signed certificate for 127.0.0.1
(made with the ``openssl`` CLI); ``server.ca_file`` is what a client must trust (e.g. as
``SSL_CERT_FILE``).

Fetch and push (receive-pack) both work; ``requests`` records (method, path, status).
Use it as a pytest fixture with ``pytest_plugins = ["tests.gitserver"]`` or by importing
``git_http_server``. The git CLI helpers run git with an isolated configuration.
"""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_AUTHOR_NAME": "Other Engineer",
    "GIT_AUTHOR_EMAIL": "other@example.com",
    "GIT_COMMITTER_NAME": "Other Engineer",
    "GIT_COMMITTER_EMAIL": "other@example.com",
    "GIT_TERMINAL_PROMPT": "0",
}


def git(*args: str | Path, cwd: str | Path | None = None, input: bytes | None = None) -> str:
    """Run the git CLI with an isolated configuration; return stdout (raises on failure)."""
    env = {**os.environ, **GIT_ENV}
    proc = subprocess.run(
        ["git", *map(str, args)], cwd=cwd, env=env, input=input, capture_output=True, check=False
    )
    if proc.returncode:
        raise AssertionError(f"git {' '.join(map(str, args))} failed: {proc.stderr.decode()}")
    return proc.stdout.decode("utf-8", "surrogateescape")


def init_bare(path: Path, branch: str = "main") -> Path:
    git("init", "-q", "--bare", "-b", branch, path)
    return path


def seed_repo(
    bare: Path,
    files: dict[str, bytes],
    *,
    branch: str = "main",
    message: str = "seed",
    executable: tuple[str, ...] = (),
    symlinks: dict[str, str] | None = None,
) -> str:
    """Commit ``files`` (and symlinks) on ``branch`` of ``bare`` with the git CLI; return sha."""
    work = bare.parent / f"{bare.name}-seed-{time.monotonic_ns()}"
    git("clone", "-q", bare, work)
    git("checkout", "-q", "-B", branch, cwd=work)
    for rel, data in files.items():
        target = work / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if rel in executable:
            target.chmod(0o755)
    for rel, link_target in (symlinks or {}).items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(link_target, work / rel)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", message, cwd=work)
    git("push", "-q", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
    return git("rev-parse", "HEAD", cwd=work).strip()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._handle()

    def do_POST(self) -> None:  # noqa: N802
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def finish(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # the socket was dropped on purpose
            super().finish()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self) -> None:
        owner = self.server.owner
        body = self._read_body()
        fault = owner._take_fault()
        if owner.latency:
            time.sleep(owner.latency)
        if fault == "drop":
            # RST instead of FIN: the client sees "connection reset by peer".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            owner._record(self.command, self.path, 0)
            return
        if fault is not None:
            status, headers = fault
            return self._reply(status, headers, b"injected failure\n")
        if owner.token is not None and not self._authorized(owner.token):
            return self._reply(401, {"WWW-Authenticate": 'Basic realm="fgd-test"'}, b"denied\n")
        if owner.before_backend is not None:
            owner.before_backend(self.command, self.path)
        self._cgi(body)

    def _authorized(self, token: str) -> bool:
        self.server.owner.auth_headers.append(self.headers.get("Authorization"))
        scheme, _, value = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() == "bearer":
            return value == token
        if scheme.lower() == "basic":
            try:
                _user, _, password = base64.b64decode(value).decode().partition(":")
            except ValueError:
                return False
            return password == token
        return False

    def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.owner._record(self.command, self.path, status)

    def _cgi(self, body: bytes) -> None:
        parts = urlsplit(self.path)
        env = {
            **os.environ,
            **GIT_ENV,
            "GIT_PROJECT_ROOT": str(self.server.owner.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.receivepack",
            "GIT_CONFIG_VALUE_0": "true",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": unquote(parts.path),
            "QUERY_STRING": parts.query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": "fgd-test",
            "REMOTE_ADDR": self.client_address[0],
        }
        for header in ("Git-Protocol", "Content-Encoding"):
            if self.headers.get(header):
                env["HTTP_" + header.upper().replace("-", "_")] = self.headers[header]
        out = subprocess.run(
            ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
        ).stdout
        sep = b"\r\n\r\n" if b"\r\n\r\n" in out else b"\n\n"
        head, _, payload = out.partition(sep)
        status, headers = 200, {}
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers[name] = value.strip()
        self._reply(status, {**headers, **self.server.owner.extra_headers}, payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: GitHTTPServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients that gave up
            super().handle_error(request, client_address)


class GitHTTPServer:
    """Serves every repository under ``root`` at ``http://127.0.0.1:<port>/<name>``."""

    def __init__(self, root: Path, *, token: str | None = None, tls: bool = False) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.token = token
        self.tls = tls
        self.ca_file: Path | None = None
        self.latency = 0.0
        self.before_backend: Callable[[str, str], None] | None = None
        self.requests: list[tuple[str, str, int]] = []
        self.auth_headers: list[str | None] = []
        self.extra_headers: dict[str, str] = {}  # sent with every answer of git itself
        self._faults: list[Any] = []
        self._lock = threading.Lock()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    def url(self, name: str = "") -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/{name}"

    def fail_next(self, status: int, count: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` (and ``headers``)."""
        with self._lock:
            self._faults.extend([(status, dict(headers or {}))] * count)

    def drop_next(self, count: int = 1) -> None:
        """Reset the connection of the next ``count`` requests without answering."""
        with self._lock:
            self._faults.extend(["drop"] * count)

    def _take_fault(self) -> Any:
        with self._lock:
            return self._faults.pop(0) if self._faults else None

    def _record(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((method, path, status))

    def start(self) -> GitHTTPServer:
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        if self.tls:
            self._httpd.socket = self._tls_context().wrap_socket(
                self._httpd.socket, server_side=True
            )
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def _tls_context(self) -> ssl.SSLContext:
        tls_dir = self.root.parent / f"{self.root.name}-tls"
        tls_dir.mkdir(exist_ok=True)
        cert, key = tls_dir / "cert.pem", tls_dir / "key.pem"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
             "-keyout", str(key), "-out", str(cert)],
            check=True, capture_output=True,
        )
        self.ca_file = cert
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        return context

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> GitHTTPServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def git_http_server(tmp_path: Path) -> Iterator[GitHTTPServer]:
    """A started ``GitHTTPServer`` serving ``tmp_path / "srv"``."""
    with GitHTTPServer(tmp_path / "srv") as server:
        yield server
