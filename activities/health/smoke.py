"""Smoke tests: one request each against the new version's base URL, judged on the status
and, optionally, on a piece of the body.

Messages name the method and path (``GET /checkout: HTTP 500 (expected 200)``) but never a
header value or a query string: both may carry tokens, and messages end up in workflow
history.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from activities.health._http import EXCHANGE_ERRORS, describe_error, exchange
from activities.health.spec import SmokeTest
from activities.model import Model

MAX_BODY = 1 << 20  # bodyContains looks at the first MiB


@dataclass(frozen=True)
class BaseUrl:
    """``http://10.0.0.5:8002/api`` split for ``http.client``; ``prefix`` has no trailing /."""

    scheme: str
    host: str
    port: int
    prefix: str


def parse_base_url(value: str) -> BaseUrl:
    """Split an http(s) base URL; ``ValueError`` says what is wrong with it."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http(s) URL like http://127.0.0.1:8002, got {value!r}")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; pass them in the tests' headers")
    if parts.query or parts.fragment:
        raise ValueError(f"must not carry a query or fragment, got {value!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as e:
        raise ValueError(f"has an invalid port: {value!r}") from e
    return BaseUrl(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))


class SmokeResult(Model):
    """``status`` is ``None`` when no response came back (refused, timed out)."""

    name: str
    passed: bool
    status: int | None
    message: str


def shown_path(path: str) -> str:
    """``path`` without its query string, which may carry a token."""
    return path if "?" not in path else path.split("?", 1)[0] + "?…"


def run_smoke_test(test: SmokeTest, base: BaseUrl) -> SmokeResult:
    """Send ``test``'s request once and judge the answer. Never raises for a failing service."""
    path = base.prefix + test.path
    label = f"{test.method} {shown_path(path)}"
    try:
        answer = exchange(
            scheme=base.scheme,
            host=base.host,
            port=base.port,
            method=test.method,
            path=path,
            timeout=test.timeout_seconds,
            headers=test.headers,
            max_body=MAX_BODY if test.body_contains is not None else 0,
        )
    except EXCHANGE_ERRORS as e:
        message = f"{label}: {describe_error(e, test.timeout_seconds)}"
        return SmokeResult(name=test.name, passed=False, status=None, message=message)

    def result(passed: bool, detail: str) -> SmokeResult:
        return SmokeResult(
            name=test.name, passed=passed, status=answer.status, message=f"{label}: {detail}"
        )

    if answer.status != test.expected_status:
        return result(False, f"HTTP {answer.status} (expected {test.expected_status})")
    if test.body_contains is not None:
        body = answer.body.decode(errors="replace")
        if test.body_contains not in body:
            where = "body" if len(answer.body) < MAX_BODY else "the body's first MiB"
            return result(False, f"{where} does not contain {test.body_contains!r}")
    return result(True, f"HTTP {answer.status}")
