"""One HTTP exchange on a fresh connection, and network failures said in a few words.

Shared by the HTTP probe and the smoke tests. ``http.client`` rather than a higher-level
client: no redirects are followed, no status raises, nothing retries, and the timeout
bounds the connect and every read.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass

USER_AGENT = "deployflow-health/1"

EXCHANGE_ERRORS = (OSError, http.client.HTTPException)
"""What ``exchange`` raises when the other side, or the network, fails."""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: bytes


def exchange(
    *,
    scheme: str,
    host: str,
    port: int,
    method: str,
    path: str,
    timeout: float,
    headers: Mapping[str, str] | None = None,
    verify_tls: bool = True,
    max_body: int = 0,
) -> HttpAnswer:
    """Send one request and read the status and up to ``max_body`` bytes of the body.

    Raises ``OSError`` (refused, timed out, TLS) or ``http.client.HTTPException``; turn
    them into words with ``describe_error``.
    """
    conn: http.client.HTTPConnection
    if scheme == "https":
        context = ssl.create_default_context()
        if not verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(
            method,
            path,
            headers={"User-Agent": USER_AGENT, "Connection": "close", **(headers or {})},
        )
        response = conn.getresponse()
        body = response.read(max_body) if max_body > 0 else b""
        return HttpAnswer(status=response.status, body=body)
    finally:
        conn.close()


def describe_error(error: Exception, timeout: float) -> str:
    """A short, credential-free description of why an exchange or connect failed."""
    if isinstance(error, TimeoutError):
        return timed_out(timeout)
    if isinstance(error, http.client.RemoteDisconnected):
        return "connection closed without a response"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ConnectionResetError):
        return "connection reset"
    if isinstance(error, socket.gaierror):
        return f"cannot resolve host: {error.strerror}"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS: {error.verify_message or error.reason}"
    if isinstance(error, ssl.SSLError):
        return f"TLS: {error.reason or error}"
    if isinstance(error, http.client.HTTPException):
        return f"bad HTTP response: {type(error).__name__} {error}".rstrip()
    if isinstance(error, OSError) and error.strerror:
        return error.strerror.lower()
    return f"{type(error).__name__}: {error}"


def timed_out(timeout: float) -> str:
    """``timed out after 1s``, ``timed out after 0.2s``."""
    return f"timed out after {timeout:g}s"
