"""Slack's Web API through the official ``slack_sdk.WebClient``, its retries made short.

The client retries a 429 (after ``Retry-After``) and a 500/503 at most twice in all, then
the activity fails with ``NotifyFailed`` and Temporal's retry policy owns the rest. Network
errors are not retried by the client: a ``chat.postMessage`` whose answer was lost may have
posted, and the activity's heartbeat (see ``activities.notify.activities``) is what makes a
Temporal retry edit that message instead of posting a second one.
"""

from __future__ import annotations

import re
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.web import SlackResponse
from temporalio.exceptions import ApplicationError

from activities.errors import NOTIFY_FAILED, NOTIFY_REJECTED, failure
from activities.notify.models import SlackMessage

DEFAULT_API_URL = "https://slack.com/api/"
MAX_RETRIES = 2
TIMEOUT_S = 10
# Error codes Slack documents as transient; everything else is the request's own fault.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
MESSAGE_NOT_FOUND = "message_not_found"
METADATA_EVENT = "deployflow_notice"
LOOKUP_LIMIT = 200  # messages (channels) read back per page when looking for a post
LIST_PAGES = 10  # pages of conversations.list read to find a channel named in a spec
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{8,}$")


def web_client(token: str, api_url: str = DEFAULT_API_URL) -> WebClient:
    """A ``WebClient`` with bounded retries and a timeout."""
    return WebClient(
        token=token,
        base_url=api_url,
        timeout=TIMEOUT_S,
        retry_handlers=[
            RateLimitErrorRetryHandler(max_retry_count=MAX_RETRIES),
            ServerErrorRetryHandler(max_retry_count=MAX_RETRIES),
        ],
    )


def post(
    client: WebClient, channel: str, text: str, thread_ts: str | None, key: str | None = None
) -> SlackMessage:
    """``chat.postMessage``, as a reply in ``thread_ts`` if given, carrying ``key`` as
    metadata if given."""
    data = _data(
        client.chat_postMessage(
            channel=channel, text=text, thread_ts=thread_ts, metadata=_metadata(key)
        )
    )
    return SlackMessage(channel=str(data["channel"]), ts=str(data["ts"]), thread_ts=thread_ts)


def find_keyed(
    client: WebClient, channel: str, key: str, thread_ts: str | None, oldest: float
) -> SlackMessage | None:
    """The message an earlier attempt posted with metadata ``key``: among the replies of
    ``thread_ts``, or the channel's messages since ``oldest`` (needs ``channels:history``)."""
    found_id = channel_id(client, channel)
    if found_id is None:
        return None
    if thread_ts is not None:
        response = client.conversations_replies(
            channel=found_id, ts=thread_ts, include_all_metadata=True, limit=LOOKUP_LIMIT
        )
    else:
        response = client.conversations_history(
            channel=found_id, oldest=f"{oldest:.6f}", include_all_metadata=True, limit=LOOKUP_LIMIT
        )
    for message in _data(response).get("messages") or []:
        metadata = message.get("metadata") or {}
        payload = metadata.get("event_payload") or {}
        if metadata.get("event_type") == METADATA_EVENT and payload.get("key") == key:
            return SlackMessage(channel=found_id, ts=str(message["ts"]), thread_ts=thread_ts)
    return None


def channel_id(client: WebClient, channel: str) -> str | None:
    """``channel`` if it is an id, else the id of the channel so named (``conversations.list``,
    needs ``channels:read``; the history methods take ids only), or None if none is."""
    if CHANNEL_ID.match(channel):
        return channel
    name, cursor = channel.removeprefix("#"), None
    for _ in range(LIST_PAGES):
        data = _data(
            client.conversations_list(
                types="public_channel,private_channel", limit=LOOKUP_LIMIT, cursor=cursor
            )
        )
        for found in data.get("channels") or []:
            if found.get("name") == name:
                return str(found["id"])
        cursor = (data.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            break
    return None


def _metadata(key: str | None) -> dict[str, Any] | None:
    return None if key is None else {"event_type": METADATA_EVENT, "event_payload": {"key": key}}


def update(
    client: WebClient, channel: str, ts: str, text: str, thread_ts: str | None
) -> SlackMessage:
    """``chat.update`` of the message ``ts`` in ``channel``."""
    data = _data(client.chat_update(channel=channel, ts=ts, text=text))
    return SlackMessage(channel=str(data["channel"]), ts=str(data["ts"]), thread_ts=thread_ts)


def error_code(error: SlackApiError) -> str:
    """Slack's ``error`` field (``invalid_auth``), or ``http_<status>`` without one."""
    data = error.response.data
    code = data.get("error") if isinstance(data, dict) else None
    return str(code) if code else f"http_{error.response.status_code}"


def classify(error: Exception, call: str, channel: str) -> ApplicationError:
    """The ``ApplicationError`` for an error from ``call`` (``chat.postMessage``). Messages
    name Slack's error code, never the token (Slack does not echo it either)."""
    what = f"Slack {call} to {channel!r}"
    if isinstance(error, SlackApiError):
        status = error.response.status_code
        code = error_code(error)
        if status == 429 or status >= 500 or code in TRANSIENT_ERRORS:
            return failure(NOTIFY_FAILED, f"{what}: {code[:100]} (HTTP {status}) after retries")
        return failure(NOTIFY_REJECTED, f"{what}: {code[:100]}")
    reason = str(error)[:200] or type(error).__name__
    return failure(NOTIFY_FAILED, f"{what}: could not reach Slack: {reason}")


def _data(response: SlackResponse) -> dict[str, Any]:
    data = response.data
    return data if isinstance(data, dict) else {}
