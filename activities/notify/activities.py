"""Temporal activities that page (PagerDuty Events v2) and post to Slack for incident runbooks.

Sync ``def``: the worker runs them on its thread pool. Secrets stay on the worker: an input
names the environment variable that holds the routing key or bot token, read at call time;
its value is never logged nor put in an error. The worker's environment:

    <routingKeyEnv>        the PagerDuty routing key (default PAGERDUTY_ROUTING_KEY)
    PAGERDUTY_EVENTS_URL   the full enqueue URL (default https://events.pagerduty.com/v2/enqueue)
    PAGERDUTY_CA_BUNDLE    a PEM file trusted besides the system store (the local server's cert)
    <tokenEnv>             the Slack bot token (default SLACK_BOT_TOKEN)
    SLACK_API_URL          the Web API base URL (default https://slack.com/api/)

Retrying. ``page`` is keyed by its dedup key: PagerDuty folds a repeated trigger into the
open incident and acknowledge/resolve are idempotent, so Temporal may retry it freely.
``post_slack`` has no such key, so right after ``chat.postMessage`` succeeds it heartbeats the
message's ts, and an attempt that finds a ts in its heartbeat details edits that message
instead of posting again. A post with a ``key`` also carries it as Slack message metadata:
a retry whose worker died before its heartbeat reached the server (the answer in flight)
looks the key up in the channel or thread and edits what it finds, so it never posts twice.
Without a key, only that window can still post twice.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import pagerduty as pagerduty_client
import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.errors import NOTIFIER_NOT_CONFIGURED, failure
from activities.log_fields import attempt, ms_since
from activities.notify import pagerduty, slack
from activities.notify.models import PageInput, PageResult, SlackMessage, SlackPostInput

log = structlog.get_logger()

PAGERDUTY_EVENTS_URL = "PAGERDUTY_EVENTS_URL"
PAGERDUTY_CA_BUNDLE = "PAGERDUTY_CA_BUNDLE"
SLACK_API_URL = "SLACK_API_URL"
LOOKUP_SLACK_S = 60  # look this far before the first attempt for its post (clock skew)


def secret(env_name: str, what: str) -> str:
    """The value of the worker's variable ``env_name`` (never logged); NotifierNotConfigured
    naming the variable when it is unset."""
    value = os.environ.get(env_name, "").strip()
    if not value:
        raise failure(NOTIFIER_NOT_CONFIGURED, f"{what}: {env_name} is not set on the worker")
    return value


def _events_client(input: PageInput) -> pagerduty.EventsClient:
    routing_key = secret(input.routing_key_env, "PagerDuty routing key")
    url = os.environ.get(PAGERDUTY_EVENTS_URL) or pagerduty.DEFAULT_EVENTS_URL
    ca_bundle = os.environ.get(PAGERDUTY_CA_BUNDLE) or None
    try:
        return pagerduty.events_client(routing_key, url, ca_bundle)
    except ValueError as e:
        raise failure(NOTIFIER_NOT_CONFIGURED, f"{PAGERDUTY_EVENTS_URL}: {e}") from None
    except OSError as e:  # includes ssl.SSLError: not a PEM file
        message = f"{PAGERDUTY_CA_BUNDLE}: cannot load {ca_bundle!r}: {e}"
        raise failure(NOTIFIER_NOT_CONFIGURED, message) from None


def _slack_client(input: SlackPostInput) -> WebClient:
    token = secret(input.token_env, "Slack bot token")
    url = os.environ.get(SLACK_API_URL) or slack.DEFAULT_API_URL
    if not url.startswith(("https://", "http://")):
        raise failure(NOTIFIER_NOT_CONFIGURED, f"{SLACK_API_URL}: {url!r} is not an http(s) URL")
    return slack.web_client(token, url)


@activity.defn(name="page")
def page(input: PageInput) -> PageResult:
    """Trigger, acknowledge or resolve the PagerDuty incident named by ``dedupKey``."""
    started = time.monotonic()
    fields: dict[str, Any] = {
        "dedup_key": input.dedup_key,
        "action": input.action,
        "attempt": attempt(),
    }
    client: pagerduty.EventsClient | None = None
    try:
        client = _events_client(input)
        result = pagerduty.send(client, input)
    except (ApplicationError, pagerduty_client.Error) as e:
        # The client's own messages show the routing key's last digits: never chain them.
        error = e if isinstance(e, ApplicationError) else pagerduty.classify(e, input)
        requests = client.requests if client else 0
        log.warning(
            "page_failed",
            **fields,
            error=error.type,
            message=error.message,
            requests=requests,
            duration_ms=ms_since(started),
        )
        raise error from None
    finally:
        if client is not None:
            client.close()
    log.info(
        "page",
        **fields,
        status=result.status,
        requests=client.requests,
        duration_ms=ms_since(started),
    )
    return result


def _posted_earlier(details: Sequence[Any]) -> tuple[str, str | None] | None:
    """The ``(ts, channel id)`` an earlier attempt heartbeat after posting, if any."""
    if not details or not isinstance(details[0], str) or not details[0]:
        return None
    channel = details[1] if len(details) > 1 and isinstance(details[1], str) else None
    return details[0], channel


def _post_or_update(
    client: WebClient, input: SlackPostInput, fields: dict[str, Any]
) -> SlackMessage:
    if input.update_ts is not None:
        fields["call"] = "chat.update"
        return slack.update(client, input.channel, input.update_ts, input.text, input.thread_ts)
    details = activity.info().heartbeat_details if activity.in_activity() else ()
    if (earlier := _posted_earlier(details)) is not None:
        ts, channel = earlier
        fields.update(call="chat.update", recovered_ts=ts)
        try:
            return slack.update(client, channel or input.channel, ts, input.text, input.thread_ts)
        except SlackApiError as e:
            if slack.error_code(e) != slack.MESSAGE_NOT_FOUND:
                raise
            # Someone deleted the earlier post: the message is still owed.
    if (found := _found_by_key(client, input, fields)) is not None:
        fields.update(call="chat.update", recovered_ts=found.ts)
        return slack.update(client, found.channel, found.ts, input.text, input.thread_ts)
    fields["call"] = "chat.postMessage"
    message = slack.post(client, input.channel, input.text, input.thread_ts, input.key)
    if activity.in_activity():
        activity.heartbeat(message.ts, message.channel)
    return message


def _found_by_key(
    client: WebClient, input: SlackPostInput, fields: dict[str, Any]
) -> SlackMessage | None:
    """On a retry, the message an earlier attempt posted with ``input.key`` but never
    heartbeat (its worker died with the answer in flight). A failed lookup (a channel given
    by name, a token without the history scope) is logged and the message posted."""
    if input.key is None or not activity.in_activity() or activity.info().attempt == 1:
        return None
    oldest = activity.info().scheduled_time.timestamp() - LOOKUP_SLACK_S
    try:
        return slack.find_keyed(client, input.channel, input.key, input.thread_ts, oldest)
    except (SlackApiError, OSError) as e:
        code = slack.error_code(e) if isinstance(e, SlackApiError) else type(e).__name__
        log.warning("post_slack_lookup_failed", **fields, error=code)
        return None


@activity.defn(name="post_slack")
def post_slack(input: SlackPostInput) -> SlackMessage:
    """Post ``text`` to a channel or thread, or edit the message ``updateTs``; a retry after
    a successful post edits that post instead of posting again."""
    started = time.monotonic()
    fields: dict[str, Any] = {
        "channel": input.channel,
        "thread_ts": input.thread_ts,
        "attempt": attempt(),
    }
    try:
        message = _post_or_update(_slack_client(input), input, fields)
    except (ApplicationError, SlackApiError, OSError) as e:
        call = fields.get("call", "chat.postMessage")
        error = e if isinstance(e, ApplicationError) else slack.classify(e, call, input.channel)
        log.warning(
            "post_slack_failed",
            **fields,
            error=error.type,
            message=error.message,
            duration_ms=ms_since(started),
        )
        raise error from None
    log.info("post_slack", **fields, ts=message.ts, duration_ms=ms_since(started))
    return message
