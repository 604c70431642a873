"""The local servers' own rules: Events v2 validation, Slack auth and channels, faults."""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from activities.notify.local_pagerduty import event_errors
from activities.notify.local_slack import SlackServer

TRIGGER = {
    "routing_key": "R",
    "event_action": "trigger",
    "dedup_key": "k",
    "payload": {"summary": "down", "source": "deployflow", "severity": "critical"},
}


def with_(event: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {k: v for k, v in {**event, **changes}.items() if v is not None}


@pytest.mark.parametrize(
    ("event", "errors"),
    [
        (TRIGGER, []),
        (with_(TRIGGER, dedup_key=None), []),  # PagerDuty makes one up
        ({"routing_key": "R", "event_action": "resolve", "dedup_key": "k"}, []),
        (with_(TRIGGER, routing_key=" "), ["'routing_key' is missing or blank"]),
        (
            with_(TRIGGER, event_action="escalate"),
            ["'event_action' is invalid (must be one of: trigger, acknowledge, resolve)"],
        ),
        (
            {"routing_key": "R", "event_action": "acknowledge"},
            ["'dedup_key' is missing or blank"],
        ),
        (
            with_(TRIGGER, dedup_key="k" * 256),
            ["'dedup_key' must be a string of at most 255 characters"],
        ),
        (with_(TRIGGER, payload=None), ["'payload' is missing or not an object"]),
        (
            with_(TRIGGER, payload={"severity": "sev1"}),
            [
                "'payload.summary' is missing or blank",
                "'payload.source' is missing or blank",
                "'payload.severity' is invalid (must be one of: critical, error, warning, info)",
            ],
        ),
    ],
)
def test_events_are_validated_as_events_v2_does(event, errors):
    assert event_errors(event) == errors


def test_a_routing_key_list_refuses_other_keys():
    assert event_errors(TRIGGER, frozenset({"R"})) == []
    assert event_errors(TRIGGER, frozenset({"S"})) == ["'routing_key' is invalid"]


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    with SlackServer("xoxb-right", channels=["incidents"], epoch=1_700_000_000) as server:
        yield server


def call(server: SlackServer, path: str, body: Any = None, token: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{server.url}{path}", data=data, headers=headers)
    request.method = "GET" if data is None else "POST"
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


@pytest.mark.parametrize(
    ("token", "error"), [(None, "not_authed"), ("", "not_authed"), ("xoxb-wrong", "invalid_auth")]
)
def test_slack_checks_the_bearer_token(slack, token, error):
    post = {"channel": "#incidents", "text": "hi"}
    assert call(slack, "/api/chat.postMessage", post, token) == (200, {"ok": False, "error": error})
    assert slack.messages() == []


def test_slack_knows_only_listed_channels_by_name_or_id(slack):
    def post(channel: str) -> Any:
        return call(slack, "/api/chat.postMessage", {"channel": channel, "text": "t"}, "xoxb-right")

    assert post("#random") == (200, {"ok": False, "error": "channel_not_found"})
    ids = [post(c)[1]["channel"] for c in ("#incidents", "incidents", "C00000001")]
    assert ids == ["C00000001"] * 3
    assert [m["ts"] for m in slack.messages("#incidents")] == [
        "1700000000.000100",
        "1700000000.000200",
        "1700000000.000300",
    ]


def test_faults_answer_the_next_requests_then_clear(slack):
    slack.fail(429, times=2, retry_after=3)
    post = {"channel": "incidents", "text": "t"}
    answers = [call(slack, "/api/chat.postMessage", post, "xoxb-right") for _ in range(3)]

    assert [status for status, _ in answers] == [429, 429, 200]
    assert answers[0][1] == {"ok": False, "error": "ratelimited"}
    assert [r["status"] for r in slack.requests()] == [429, 429, 200]


def test_faults_can_be_set_and_read_over_http(slack):
    assert call(slack, "/_faults", {"status": 503})[0] == 200
    assert call(slack, "/_faults", {"status": "503"})[0] == 400
    call(slack, "/api/auth.test", {}, "xoxb-right")
    call(slack, "/api/auth.test", {}, "xoxb-right")
    call(slack, "/_faults", {"status": None})
    assert call(slack, "/api/auth.test", {}, "xoxb-right")[1]["ok"] is True

    status, received = call(slack, "/_received")
    assert status == 200
    assert [r["status"] for r in received["requests"]] == [503, 503, 200]
    assert received["channels"] == {"incidents": "C00000001"}


def test_slack_reads_back_history_replies_and_channels_like_slack(slack):
    def api(method: str, body: dict[str, Any]) -> Any:
        return call(slack, f"/api/{method}", body, "xoxb-right")[1]

    metadata = {"event_type": "deployflow_notice", "event_payload": {"key": "k1"}}
    root = api("chat.postMessage", {"channel": "#incidents", "text": "root", "metadata": metadata})
    api("chat.postMessage", {"channel": "C00000001", "text": "reply", "thread_ts": root["ts"]})

    assert api("conversations.history", {"channel": "#incidents"})["error"] == "channel_not_found"
    history = api("conversations.history", {"channel": "C00000001", "include_all_metadata": True})
    assert [(m["text"], m["metadata"]) for m in history["messages"]] == [("root", metadata)]
    plain = api("conversations.history", {"channel": "C00000001"})
    assert "metadata" not in plain["messages"][0]
    later = api("conversations.history", {"channel": "C00000001", "oldest": "1700000001"})
    assert later["messages"] == []
    replies = api("conversations.replies", {"channel": "C00000001", "ts": root["ts"]})
    assert [m["text"] for m in replies["messages"]] == ["root", "reply"]
    channels = api("conversations.list", {"limit": 1})
    assert channels["channels"] == [{"id": "C00000001", "name": "incidents", "is_channel": True}]
    assert channels["response_metadata"] == {"next_cursor": ""}


def test_a_held_answer_is_sent_only_when_released(slack):
    hold = slack.hold("/api/chat.postMessage")
    answers: list[Any] = []
    poster = threading.Thread(
        target=lambda: answers.append(
            call(
                slack, "/api/chat.postMessage", {"channel": "#incidents", "text": "t"}, "xoxb-right"
            )
        )
    )
    poster.start()
    assert hold.reached.wait(10)
    assert [m["text"] for m in slack.messages()] == ["t"]  # posted before it answers
    assert answers == []
    hold.release()
    poster.join(10)
    assert answers[0][1]["ok"] is True
