"""How PagerDuty and Slack client errors become retryable or non-retryable failures."""

from __future__ import annotations

import ssl
from typing import Any
from urllib.error import URLError

import httpx2
import pagerduty as pagerduty_client
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web import SlackResponse

from activities.errors import (
    NON_RETRYABLE,
    NOTIFIER_NOT_CONFIGURED,
    NOTIFY_FAILED,
    NOTIFY_REJECTED,
)
from activities.notify import PageInput, slack
from activities.notify import pagerduty as pd
from activities.notify.activities import _posted_earlier

TRIGGER = PageInput(action="trigger", dedup_key="checkout/incident-7", summary="down")
ENQUEUE = "https://events.pagerduty.com/v2/enqueue"


def test_the_new_error_types_are_in_the_table():
    assert NOTIFIER_NOT_CONFIGURED in NON_RETRYABLE
    assert NOTIFY_REJECTED in NON_RETRYABLE
    assert NOTIFY_FAILED not in NON_RETRYABLE


def http_error(status: int, body: Any = None) -> pagerduty_client.HttpError:
    request = httpx2.Request("POST", ENQUEUE)
    response = httpx2.Response(status, json=body, request=request)
    # The client's own message shows the routing key's last digits, as it does for a 401.
    error_type = pagerduty_client.ServerHttpError if status >= 500 else pagerduty_client.HttpError
    return error_type("credential (*6789) may be invalid", response)


def test_an_invalid_event_is_rejected_with_pagerdutys_own_words():
    body = {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": ["'payload.source' is missing or blank"],
    }
    error = pd.classify(http_error(400, body), TRIGGER)
    assert error.type == NOTIFY_REJECTED
    assert error.non_retryable
    assert error.message == (
        "PagerDuty trigger for dedup key 'checkout/incident-7': rejected (HTTP 400): "
        "Event object is invalid; 'payload.source' is missing or blank"
    )


def test_a_refused_routing_key_is_rejected_without_showing_any_of_it():
    error = pd.classify(http_error(401, {"message": "Unauthorized"}), TRIGGER)
    assert error.type == NOTIFY_REJECTED
    assert "routing key was refused" in error.message
    assert "6789" not in error.message


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_throttling_and_server_errors_are_retryable(status):
    error = pd.classify(http_error(status, {"status": "throttle event"}), TRIGGER)
    assert error.type == NOTIFY_FAILED
    assert not error.non_retryable
    assert f"HTTP {status} after retries" in error.message


def test_a_malformed_success_is_retryable():
    error = pd.classify(http_error(202, {"status": "success"}), TRIGGER)
    assert error.type == NOTIFY_FAILED


def test_an_unreachable_pagerduty_is_retryable_and_says_why():
    error = pagerduty_client.Error("POST ...: Non-transient network error")
    error.__cause__ = httpx2.ConnectError("[Errno 111] Connection refused")
    failure = pd.classify(error, TRIGGER)
    assert failure.type == NOTIFY_FAILED
    assert failure.message.endswith("could not reach PagerDuty: ConnectError")


def test_an_untrusted_certificate_points_at_the_ca_bundle_setting():
    error = pagerduty_client.Error("POST ...: Non-transient network error")
    error.__cause__ = httpx2.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] self-signed")
    assert "PAGERDUTY_CA_BUNDLE" in pd.classify(error, TRIGGER).message


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://events.pagerduty.com/v2/enqueue", "https://events.pagerduty.com"),
        ("https://events.eu.pagerduty.com/v2/enqueue/", "https://events.eu.pagerduty.com"),
        ("https://gw.example/pd/v2/enqueue", "https://gw.example/pd"),
        ("https://127.0.0.1:8443/v2/enqueue", "https://127.0.0.1:8443"),
    ],
)
def test_the_events_url_is_the_full_enqueue_url(url, base):
    assert pd.base_url(url) == base


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://127.0.0.1:8080/v2/enqueue", "not an https:// URL"),
        ("https://events.pagerduty.com", "does not end with /v2/enqueue"),
        ("https://events.pagerduty.com/v2/enqueue/x", "does not end with /v2/enqueue"),
        ("https:///v2/enqueue", "does not end with /v2/enqueue"),
    ],
)
def test_a_wrong_events_url_says_what_is_wrong(url, complaint):
    with pytest.raises(ValueError, match=complaint):
        pd.base_url(url)


def test_the_client_retries_briefly_and_finitely():
    client = pd.events_client("R" * 32)
    try:
        assert client.retry == dict.fromkeys((429, 500, 502, 503, 504), 1)
        assert client.max_http_attempts == 0  # one retry in all, whatever the statuses
        assert client.max_network_attempts == 1
        assert client.timeout == pd.TIMEOUT_S
        assert client.url == "https://events.pagerduty.com"
    finally:
        client.close()


def test_a_ca_bundle_is_trusted_besides_the_system_store(tmp_path):
    assert pd.tls_context(None) is True
    with pytest.raises(FileNotFoundError):
        pd.tls_context(str(tmp_path / "missing.pem"))
    (tmp_path / "bad.pem").write_text("not a certificate")
    with pytest.raises(ssl.SSLError):
        pd.tls_context(str(tmp_path / "bad.pem"))


def slack_error(status: int, data: dict[str, Any]) -> SlackApiError:
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.com/api/chat.postMessage",
        req_args={},
        data=data,
        headers={},
        status_code=status,
    )
    return SlackApiError("The request to the Slack API failed.", response)


@pytest.mark.parametrize(
    "code",
    ["invalid_auth", "not_authed", "channel_not_found", "token_revoked", "msg_too_long"],
)
def test_slack_refusals_are_not_retried_and_name_the_code(code):
    error = slack.classify(
        slack_error(200, {"ok": False, "error": code}), "chat.postMessage", "#ops"
    )
    assert error.type == NOTIFY_REJECTED
    assert error.non_retryable
    assert error.message == f"Slack chat.postMessage to '#ops': {code}"


@pytest.mark.parametrize(
    ("status", "data", "code"),
    [
        (429, {"ok": False, "error": "ratelimited"}, "ratelimited"),
        (500, {"ok": False, "error": "Received an unexpected response"}, "Received an"),
        (502, {}, "http_502"),
        (200, {"ok": False, "error": "internal_error"}, "internal_error"),
        (200, {"ok": False, "error": "service_unavailable"}, "service_unavailable"),
    ],
)
def test_slack_throttling_and_outages_are_retryable(status, data, code):
    error = slack.classify(slack_error(status, data), "chat.update", "C1")
    assert error.type == NOTIFY_FAILED
    assert not error.non_retryable
    assert code in error.message


def test_an_unreachable_slack_is_retryable():
    error = slack.classify(URLError(ConnectionRefusedError(111, "refused")), "chat.update", "C1")
    assert error.type == NOTIFY_FAILED
    assert "could not reach Slack" in error.message


def test_the_slack_client_retries_rate_limits_and_outages_at_most_twice():
    client = slack.web_client("xoxb-t", "http://127.0.0.1:1/api")
    kinds = {type(h).__name__: h.max_retry_count for h in client.retry_handlers}
    assert kinds == {"RateLimitErrorRetryHandler": 2, "ServerErrorRetryHandler": 2}
    assert client.timeout == slack.TIMEOUT_S
    assert client.base_url == "http://127.0.0.1:1/api/"


@pytest.mark.parametrize(
    ("details", "earlier"),
    [
        ([], None),
        ([""], None),
        ([17], None),
        (["1700000000.000100"], ("1700000000.000100", None)),
        (["1700000000.000100", "C00000001"], ("1700000000.000100", "C00000001")),
        (["1700000000.000100", 3], ("1700000000.000100", None)),
    ],
)
def test_an_earlier_post_is_found_in_the_heartbeat_details(details, earlier):
    assert _posted_earlier(details) == earlier
