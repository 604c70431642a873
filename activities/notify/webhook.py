"""Signed JSON webhooks for rollout notices, and how a receiver checks them.

Each POST carries::

    Content-Type: application/json
    X-Deployflow-Event: on-rolled-back
    X-Deployflow-Delivery: rollout-checkout-production/8f3c.../7/0   (the same on every retry)
    X-Deployflow-Timestamp: 1764633600                              (seconds, when sent)
    X-Deployflow-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

A receiver recomputes the HMAC over the timestamp, a dot and the raw body with the shared
secret, compares in constant time, refuses a timestamp more than five minutes off (a
replayed request), and drops a delivery id it has seen (a retry of one it already handled):
:func:`verify` does the first three. The secret comes from the worker's environment
variable named by the spec's ``secretEnv`` and is never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
from temporalio.exceptions import ApplicationError

from activities.errors import NOTIFY_FAILED, NOTIFY_REJECTED, failure

SIGNATURE: Final = "X-Deployflow-Signature"
TIMESTAMP: Final = "X-Deployflow-Timestamp"
DELIVERY: Final = "X-Deployflow-Delivery"
EVENT: Final = "X-Deployflow-Event"
TOLERANCE_S: Final = 300
TIMEOUT_S: Final = 10
RETRIED_STATUSES: Final = frozenset({408, 425, 429})


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The ``X-Deployflow-Signature`` value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: float | None = None,
    tolerance_s: int = TOLERANCE_S,
) -> bool:
    """Whether a received request is signed with ``secret`` and recent (receivers' side)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    given, stamp = lowered.get(SIGNATURE.lower(), ""), lowered.get(TIMESTAMP.lower(), "")
    if not stamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance_s:
        return False
    return hmac.compare_digest(given, signature(secret, int(stamp), body))


def encode(body: Mapping[str, Any]) -> bytes:
    """The exact bytes signed and sent."""
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


async def send(
    url: str, secret: str, event: str, delivery: str, body: bytes, now: float | None = None
) -> int:
    """POST ``body`` signed; the HTTP status, or an ``ApplicationError`` (see module doc)."""
    stamp = int(time.time() if now is None else now)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "deployflow-webhook/1",
        EVENT: event,
        DELIVERY: delivery,
        TIMESTAMP: str(stamp),
        SIGNATURE: signature(secret, stamp, body),
    }
    what = f"webhook {delivery} to {_host(url)}"
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(url, data=body, headers=headers, allow_redirects=False) as response,
        ):
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as e:
        reason = str(e)[:200] or type(e).__name__
        raise failure(NOTIFY_FAILED, f"{what}: could not deliver: {reason}") from None
    return _checked(status, what)


def _checked(status: int, what: str) -> int:
    if 200 <= status < 300:
        return status
    if status >= 500 or status in RETRIED_STATUSES:
        raise failure(NOTIFY_FAILED, f"{what}: HTTP {status}")
    error: ApplicationError = failure(NOTIFY_REJECTED, f"{what}: refused with HTTP {status}")
    raise error


def _host(url: str) -> str:
    """The URL without path or query (which may carry a receiver's own token)."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].rsplit('@', 1)[-1]}"
