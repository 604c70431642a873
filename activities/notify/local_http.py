"""What the local PagerDuty and Slack servers share: a threaded JSON-over-HTTP(S) server
on 127.0.0.1 that records every request, injects faults and holds answers on request.

Every ``LocalServer`` answers ``GET /_received`` (everything, as JSON, in the services'
snake_case) and ``POST /_faults`` (``{"status": 500, "times": 2}``; no ``times`` means until
cleared with ``{"status": null}``), so a test or demo in another process can inspect and
break it. Stdlib only; each request is handled on its own thread.
"""

from __future__ import annotations

import copy
import json
import ssl
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self
from urllib.parse import urlsplit

HOLD_MAX_S = 60.0  # a held answer is sent after this even if never released


@dataclass(frozen=True)
class TlsCert:
    """A self-signed certificate for 127.0.0.1 and localhost; trust ``cert_file`` as a CA."""

    cert_file: Path
    key_file: Path

    @classmethod
    def generate(cls, directory: Path) -> TlsCert:
        """Make one with ``openssl req -x509`` (no Python crypto dependency needed)."""
        directory.mkdir(parents=True, exist_ok=True)
        cert = cls(directory / "notify-local-cert.pem", directory / "notify-local-key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-days", "30", "-subj", "/CN=deployflow local notify servers",
             "-keyout", str(cert.key_file), "-out", str(cert.cert_file),
             "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,digitalSignature,keyCertSign"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        return cert


@dataclass
class Reply:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Hold:
    """A request handled but not yet answered (``LocalServer.hold``)."""

    reached: threading.Event = field(default_factory=threading.Event)
    released: threading.Event = field(default_factory=threading.Event)

    def release(self) -> None:
        self.released.set()


@dataclass
class Fault:
    """An injected answer (``LocalServer.fail``)."""

    status: int
    times: int | None  # None: until cleared
    retry_after: int


class LocalServer:
    """A threaded JSON-over-HTTP(S) server on 127.0.0.1 with recording and faults.

    Subclasses implement :meth:`handle` (called under the lock, so state needs no more
    locking) and :meth:`snapshot` (the ``/_received`` document)."""

    scheme: ClassVar[str] = "http"

    def __init__(self, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self._lock = threading.Lock()
        self._fault: Fault | None = None
        self._requests: list[dict[str, Any]] = []
        self._holds: dict[str, Hold] = {}
        self._httpd = _HTTPServer(("127.0.0.1", port), _handler_for(self))
        if tls is not None:  # handshake in the request's thread, not in the accept loop
            self._httpd.socket = tls.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        port: int = self._httpd.server_address[1]
        return port

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,))
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def fail(self, status: int | None, times: int | None = None, retry_after: int = 0) -> None:
        """Answer the next ``times`` API requests (all, if None) with ``status``; a 429
        carries ``Retry-After: retry_after``. ``status=None`` clears the fault."""
        with self._lock:
            self._fault = None if status is None else Fault(status, times, retry_after)

    def requests(self) -> list[dict[str, Any]]:
        """Every API request so far, faulted ones included: ``path`` and answered ``status``."""
        with self._lock:
            return copy.deepcopy(self._requests)

    def received(self) -> dict[str, Any]:
        """What ``GET /_received`` answers."""
        with self._lock:
            return copy.deepcopy({"requests": self._requests, **self.snapshot()})

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        raise NotImplementedError

    def snapshot(self) -> dict[str, Any]:
        raise NotImplementedError

    def fault_reply(self, fault: Fault) -> Reply:
        headers = {"Retry-After": str(fault.retry_after)} if fault.status == 429 else {}
        return Reply(fault.status, {"message": f"injected {fault.status}"}, headers)

    def dispatch(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Reply:
        if method == "GET" and path == "/_received":
            return Reply(200, self.received())
        if method == "POST" and path == "/_faults":
            spec = json_object(body) or {}
            status, times, retry_after = (spec.get(k) for k in ("status", "times", "retry_after"))
            if not all(v is None or type(v) is int for v in (status, times, retry_after)):
                expected = '{"status": int|null, "times": int|null, "retry_after": int|null}'
                return Reply(400, {"message": f"expected {expected}"})
            self.fail(status, times, retry_after or 0)
            return Reply(200, {"status": status, "times": times})
        if method != "POST":
            return Reply(405, {"message": f"{method} not allowed"})
        with self._lock:
            fault = self._fault
            if fault is not None:
                if fault.times is not None:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._fault = None
                reply = self.fault_reply(fault)
            else:
                reply = self.handle(path, headers, body)
            self._requests.append({"path": path, "status": reply.status})
            hold = self._holds.pop(path, None) if fault is None else None
        if hold is not None:  # handled (the message exists); the answer waits
            hold.reached.set()
            hold.released.wait(HOLD_MAX_S)
        return reply

    def hold(self, path: str) -> Hold:
        """Handle the next request to ``path`` (``/api/chat.postMessage``), then keep its
        answer until ``release()``: the client's process can die with the answer in flight."""
        hold = Hold()
        with self._lock:
            self._holds[path] = hold
        return hold


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError):
            super().handle_error(request, client_address)  # a client refusing our cert is not


def _handler_for(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 10  # seconds a client may take to send a request

        def setup(self) -> None:
            super().setup()
            if isinstance(self.connection, ssl.SSLSocket):
                self.connection.do_handshake()

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = urlsplit(self.path).path
            reply = server.dispatch(self.command, path, headers, body)
            payload = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass  # requests are recorded; stderr stays quiet

    return Handler


def json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body or b"null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def blank(value: object) -> bool:
    return not isinstance(value, str) or not value.strip()
