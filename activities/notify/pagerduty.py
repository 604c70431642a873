"""PagerDuty Events API v2 through the official ``pagerduty`` client, its retries made short.

Out of the box ``EventsApiV2Client`` retries a 429 without limit and a 5xx up to six times
with a doubling 1.5 s cooldown: minutes inside one activity attempt, invisible to Temporal.
Here each of those statuses, and a network error, is retried once after half a second; then
the activity fails with ``NotifyFailed`` and Temporal's retry policy owns the rest. The dedup
key makes every retry land on the same incident, so retrying is safe.

TLS is verified against the system store (``SSL_CERT_FILE`` replaces that store, as httpx2
honours it). A CA bundle given to :func:`events_client` is trusted *in addition*: that is
how the self-signed local server is trusted without distrusting everything else.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx2
import pagerduty
from temporalio.exceptions import ApplicationError

from activities.errors import NOTIFY_FAILED, NOTIFY_REJECTED, failure
from activities.notify.models import PageInput, PageResult

DEFAULT_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
ENQUEUE_PATH = "/v2/enqueue"
RETRIED_STATUSES = (429, 500, 502, 503, 504)
NETWORK_RETRIES = 1
COOLDOWN_S = 0.25  # the client doubles this before each wait: 0.5 s
TIMEOUT_S = 10
DETAIL_MAX = 300  # characters of PagerDuty's own message kept in an error


class EventsClient(pagerduty.EventsApiV2Client):
    """``EventsApiV2Client`` with bounded retries that remembers the last response (the
    client's methods return only the dedup key) and counts HTTP requests sent."""

    def __init__(self, routing_key: str, events_url: str, verify: ssl.SSLContext | bool) -> None:
        super().__init__(routing_key, base_url=base_url(events_url), verify=verify)
        # One retry in all: ``retry`` limits each status, and the client returns the response
        # once the retries made so far exceed ``max_http_attempts`` (0 after the first).
        self.retry = dict.fromkeys(RETRIED_STATUSES, 1)
        self.max_http_attempts = 0
        self.max_network_attempts = NETWORK_RETRIES
        self.sleep_timer = COOLDOWN_S
        self.timeout = TIMEOUT_S
        self.requests = 0
        self.last_response: httpx2.Response | None = None

    def postprocess(self, response: httpx2.Response) -> None:
        self.requests += 1
        self.last_response = response


def base_url(events_url: str) -> str:
    """The client's base URL for a full enqueue URL (``https://host[/prefix]/v2/enqueue``)."""
    if not events_url.startswith("https://"):
        raise ValueError(f"{events_url!r} is not an https:// URL (the client insists on TLS)")
    base, path, rest = events_url.rstrip("/").rpartition(ENQUEUE_PATH)
    if not path or rest or base == "https://":
        raise ValueError(f"{events_url!r} does not end with {ENQUEUE_PATH}")
    return base


def tls_context(ca_bundle: str | None) -> ssl.SSLContext | bool:
    """``True`` (httpx2's default trust) or the system store plus ``ca_bundle``."""
    if ca_bundle is None:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=ca_bundle)
    return context


def events_client(
    routing_key: str, events_url: str = DEFAULT_EVENTS_URL, ca_bundle: str | None = None
) -> EventsClient:
    """A bounded-retry client; raises ValueError/OSError when the URL or CA file is bad."""
    return EventsClient(routing_key, events_url, tls_context(ca_bundle))


def send(client: EventsClient, input: PageInput) -> PageResult:
    """Send one event; raises ``pagerduty.Error`` (see :func:`classify`)."""
    if input.action == "trigger":
        client.trigger(
            input.summary,
            input.source,
            dedup_key=input.dedup_key,
            severity=input.severity,
            payload={"component": input.component} if input.component else None,
            custom_details=input.custom_details or None,
            links=[link.model_dump() for link in input.links] or None,
        )
    elif input.action == "acknowledge":
        client.acknowledge(input.dedup_key)
    else:
        client.resolve(input.dedup_key)
    body = _json(client.last_response)
    return PageResult(
        action=input.action,
        dedup_key=str(body.get("dedup_key", input.dedup_key)),
        status=str(body.get("status", "success")),
        message=_str_or_none(body.get("message")),
    )


def classify(error: pagerduty.Error, input: PageInput) -> ApplicationError:
    """The ``ApplicationError`` for a client error. Messages are built from the status and
    PagerDuty's body only: the client's own messages show the routing key's last digits."""
    what = f"PagerDuty {input.action} for dedup key {input.dedup_key!r}"
    response: httpx2.Response | None = error.response
    if response is None:
        cause = error.__cause__
        reason = type(cause).__name__ if cause else "network error"
        if isinstance(cause, httpx2.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in str(cause):
            reason = "TLS certificate verification failed (is PAGERDUTY_CA_BUNDLE set?)"
        return failure(NOTIFY_FAILED, f"{what}: could not reach PagerDuty: {reason}")
    status = response.status_code
    detail = _detail(response)
    if status == 429 or status >= 500 or status < 400:  # < 400: a malformed 2xx body
        return failure(NOTIFY_FAILED, f"{what}: HTTP {status} after retries{detail}")
    if status in (401, 403):
        detail = f": the routing key was refused{detail}"
    return failure(NOTIFY_REJECTED, f"{what}: rejected (HTTP {status}){detail}")


def _detail(response: httpx2.Response) -> str:
    body = _json(response)
    parts = [str(body["message"])] if body.get("message") else []
    errors = body.get("errors")
    if isinstance(errors, list):
        parts.extend(str(e) for e in errors)
    text = "; ".join(parts)
    return f": {text[:DETAIL_MAX]}" if text else ""


def _json(response: httpx2.Response | None) -> dict[str, Any]:
    try:
        body = response.json() if response is not None else None
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
