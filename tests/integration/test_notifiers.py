"""The page and post_slack activities, with the real pagerduty and slack-sdk clients, against
the local PagerDuty (HTTPS) and Slack servers."""

from __future__ import annotations

import dataclasses
import json
import ssl
import urllib.request
import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.errors import NOTIFY_FAILED, NOTIFY_REJECTED
from activities.notify import Link, PageInput, SlackMessage, SlackPostInput
from activities.notify.activities import page, post_slack
from activities.notify.local_servers import ENV_FILE, STATE_FILE
from activities.notify.local_slack import SlackServer
from tests.fixtures.harness import worker

pytestmark = pytest.mark.integration
# Until tests/conftest.py lists it.

KEY = "checkout/incident-42"
TRIGGER = PageInput(
    action="trigger",
    dedup_key=KEY,
    summary="checkout: 5xx rate 4.2% > 1%",
    severity="error",
    component="checkout-api",
    custom_details={"errorRate": 0.042, "version": "v2.4.1"},
    links=[Link(href="https://grafana.example/d/checkout", text="dashboard")],
)
ACK = PageInput(action="acknowledge", dedup_key=KEY)
RESOLVE = PageInput(action="resolve", dedup_key=KEY)
POST = SlackPostInput(channel="#incidents", text=":rotating_light: checkout is paging")


def failure_of(call: Any, *args: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as e:
        call(*args)
    return e.value


def statuses(server: Any) -> list[int]:
    return [r["status"] for r in server.requests()]


def test_trigger_acknowledge_resolve_is_one_incident(notify_env):
    results = [page(TRIGGER), page(ACK), page(RESOLVE)]

    assert [(r.action, r.dedup_key, r.status) for r in results] == [
        ("trigger", KEY, "success"),
        ("acknowledge", KEY, "success"),
        ("resolve", KEY, "success"),
    ]
    assert results[0].message == "Event processed"
    [incident] = notify_env.pagerduty.incidents()
    assert incident["routing_key"] == notify_env.routing_key
    assert incident["state"] == "resolved"
    assert incident["log"] == ["trigger", "acknowledge", "resolve"]
    assert incident["payload"] == {
        "summary": TRIGGER.summary,
        "source": "deployflow",
        "severity": "error",
        "component": "checkout-api",
        "custom_details": {"errorRate": 0.042, "version": "v2.4.1"},
    }
    assert incident["links"] == [
        {"href": "https://grafana.example/d/checkout", "text": "dashboard"}
    ]


def test_a_repeated_trigger_is_still_one_incident(notify_env):
    page(TRIGGER)
    page(TRIGGER)  # a Temporal retry, or a second alert for the same incident

    [incident] = notify_env.pagerduty.incidents()
    assert (incident["state"], incident["events"]) == ("triggered", 2)
    assert len(notify_env.pagerduty.events()) == 2


def test_a_trigger_after_resolve_opens_a_new_incident(notify_env):
    page(TRIGGER)
    page(RESOLVE)
    page(TRIGGER)
    page(RESOLVE)  # twice: the second finds nothing open and changes nothing
    page(RESOLVE)

    incidents = notify_env.pagerduty.incidents()
    assert [(i["dedup_key"], i["state"]) for i in incidents] == [(KEY, "resolved")] * 2
    assert notify_env.pagerduty.events()[-1]["incident"] is None


def test_a_429_is_retried_by_the_client_once(notify_env):
    notify_env.pagerduty.fail(429, times=1)

    assert page(TRIGGER).status == "success"
    assert statuses(notify_env.pagerduty) == [429, 202]
    assert len(notify_env.pagerduty.incidents()) == 1


def test_an_outage_fails_retryably_after_one_client_retry(notify_env):
    notify_env.pagerduty.fail(500)

    error = failure_of(page, TRIGGER)
    assert error.type == NOTIFY_FAILED
    assert not error.non_retryable
    assert "HTTP 500 after retries" in error.message
    assert statuses(notify_env.pagerduty) == [500, 500]  # then Temporal's policy retries
    assert notify_env.pagerduty.incidents() == []

    notify_env.pagerduty.fail(None)
    page(TRIGGER)  # the next attempt, as Temporal would make it
    assert len(notify_env.pagerduty.incidents()) == 1


def test_an_unreachable_pagerduty_fails_retryably(notify_env, monkeypatch):
    port = notify_env.pagerduty.port
    notify_env.pagerduty.stop()
    monkeypatch.setenv("PAGERDUTY_EVENTS_URL", f"https://127.0.0.1:{port}/v2/enqueue")

    error = failure_of(page, TRIGGER)
    assert error.type == NOTIFY_FAILED
    assert error.message.endswith("could not reach PagerDuty: ConnectError")


def test_an_event_pagerduty_refuses_is_rejected_with_its_reason(notify_env):
    notify_env.pagerduty.routing_keys = frozenset({"the-only-routing-key"})

    error = failure_of(page, TRIGGER)
    assert error.type == NOTIFY_REJECTED
    assert error.non_retryable
    assert error.message == (
        f"PagerDuty trigger for dedup key {KEY!r}: rejected (HTTP 400): "
        "Event object is invalid; 'routing_key' is invalid"
    )
    assert statuses(notify_env.pagerduty) == [400]


def test_the_self_signed_server_is_trusted_only_through_a_ca_setting(notify_env, monkeypatch):
    cert = notify_env.env["PAGERDUTY_CA_BUNDLE"]
    monkeypatch.delenv("PAGERDUTY_CA_BUNDLE")
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    error = failure_of(page, TRIGGER)
    assert error.type == NOTIFY_FAILED
    assert "TLS certificate verification failed" in error.message
    assert notify_env.pagerduty.requests() == []

    monkeypatch.setenv("SSL_CERT_FILE", cert)  # httpx2 honours it, replacing the system store
    assert page(TRIGGER).status == "success"


def test_the_server_validates_events_as_pagerduty_does(pagerduty_server):
    context = ssl.create_default_context(cafile=str(pagerduty_server.cert.cert_file))
    event = {"routing_key": "R", "event_action": "trigger", "payload": {"summary": "s"}}
    request = urllib.request.Request(
        pagerduty_server.events_url, data=json.dumps(event).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, context=context, timeout=5)
    assert e.value.code == 400
    assert json.load(e.value) == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": [
            "'payload.source' is missing or blank",
            "'payload.severity' is invalid (must be one of: critical, error, warning, info)",
        ],
    }
    assert pagerduty_server.incidents() == []


def test_post_then_reply_in_the_thread_then_edit(notify_env):
    posted = post_slack(POST)
    reply = post_slack(
        SlackPostInput(channel=posted.channel, text="paged on-call", thread_ts=posted.ts)
    )
    edited = post_slack(
        SlackPostInput(channel=posted.channel, text="resolved", update_ts=posted.ts)
    )

    epoch = notify_env.slack.epoch
    assert posted == SlackMessage(channel="C00000001", ts=f"{epoch}.000100")
    assert reply == SlackMessage(channel="C00000001", ts=f"{epoch}.000200", thread_ts=posted.ts)
    assert edited == posted
    parent, child = notify_env.slack.messages("#incidents")
    assert (parent["text"], parent["edits"], parent["replies"]) == (
        "resolved",
        [POST.text],
        [reply.ts],
    )
    assert (child["text"], child["thread_ts"]) == ("paged on-call", posted.ts)


def test_a_retry_after_a_post_edits_that_post_instead_of_posting_again(notify_env):
    first = ActivityEnvironment()
    beats: list[tuple[Any, ...]] = []
    first.on_heartbeat = lambda *details: beats.append(details)
    posted = first.run(post_slack, POST)
    assert beats == [(posted.ts, posted.channel)]

    # The worker died before completing; attempt 2 starts with the heartbeat details.
    second = ActivityEnvironment()
    second.info = dataclasses.replace(second.info, attempt=2, heartbeat_details=[posted.ts])
    retried = second.run(post_slack, POST)

    assert retried == posted
    [message] = notify_env.slack.messages()
    assert message["ts"] == posted.ts
    assert [r["path"] for r in notify_env.slack.requests()] == [
        "/api/chat.postMessage",
        "/api/chat.update",
    ]


def test_a_retry_whose_earlier_post_is_gone_posts_again(notify_env):
    retry = ActivityEnvironment()
    beats: list[tuple[Any, ...]] = []
    retry.on_heartbeat = lambda *details: beats.append(details)
    retry.info = dataclasses.replace(retry.info, attempt=2, heartbeat_details=["1699999999.000100"])

    posted = retry.run(post_slack, POST)
    assert [m["ts"] for m in notify_env.slack.messages()] == [posted.ts]
    assert beats == [(posted.ts, posted.channel)]


def test_a_wrong_token_is_rejected_naming_slacks_error_only(notify_env):
    notify_env.slack.token = "xoxb-a-different-token"

    error = failure_of(post_slack, POST)
    assert error.type == NOTIFY_REJECTED
    assert error.non_retryable
    assert error.message == "Slack chat.postMessage to '#incidents': invalid_auth"
    assert notify_env.slack.messages() == []


def test_an_unknown_channel_is_rejected(notify_env, monkeypatch):
    with SlackServer(notify_env.slack_token, channels=["incidents"]) as slack:
        monkeypatch.setenv("SLACK_API_URL", slack.api_url)
        error = failure_of(post_slack, POST.model_copy(update={"channel": "#random"}))
        assert error.type == NOTIFY_REJECTED
        assert error.message == "Slack chat.postMessage to '#random': channel_not_found"
        assert post_slack(POST).channel == "C00000001"


def test_editing_a_message_that_does_not_exist_is_rejected(notify_env):
    missing = SlackPostInput(channel="#incidents", text="x", update_ts="1699999999.000100")
    error = failure_of(post_slack, missing)
    assert error.type == NOTIFY_REJECTED
    assert error.message == "Slack chat.update to '#incidents': message_not_found"


def test_slack_rate_limiting_is_retried_by_the_client(notify_env):
    notify_env.slack.fail(429, times=1)  # Retry-After: 0

    post_slack(POST)
    assert statuses(notify_env.slack) == [429, 200]
    assert len(notify_env.slack.messages()) == 1


def test_a_slack_outage_fails_retryably_after_two_client_retries(notify_env):
    notify_env.slack.fail(500)

    error = failure_of(post_slack, POST)
    assert error.type == NOTIFY_FAILED
    assert not error.non_retryable
    assert error.message == (
        "Slack chat.postMessage to '#incidents': internal_error (HTTP 500) after retries"
    )
    assert statuses(notify_env.slack) == [500, 500, 500]


def read_json(url: str, context: ssl.SSLContext | None = None, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="GET" if data is None else "POST")
    with urllib.request.urlopen(request, context=context, timeout=5) as response:
        return json.load(response)


def test_the_servers_run_as_a_process_other_processes_can_use(notify_servers_process, monkeypatch):
    env = notify_servers_process.env
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    state = notify_servers_process.state
    env_file = (notify_servers_process.state_dir / ENV_FILE).read_text()
    assert f"SLACK_API_URL={env['SLACK_API_URL']}\n" in env_file

    page(TRIGGER)
    read_json(f"{state['slack']['api_url'].removesuffix('/api/')}/_faults", body={"status": 502})
    assert failure_of(post_slack, POST).type == NOTIFY_FAILED

    ca = ssl.create_default_context(cafile=state["pagerduty"]["ca_file"])
    received = read_json(state["pagerduty"]["received_url"], ca)
    assert [(i["dedup_key"], i["state"]) for i in received["incidents"]] == [(KEY, "triggered")]
    assert read_json(state["slack"]["received_url"])["requests"] == [
        {"path": "/api/chat.postMessage", "status": 502}
    ]

    assert notify_servers_process.stop() == 0
    assert not (notify_servers_process.state_dir / STATE_FILE).exists()
    assert not (notify_servers_process.state_dir / ENV_FILE).exists()


@activity.defn(name="post_slack_then_lose_the_result")
def post_slack_then_lose_the_result(input: SlackPostInput) -> SlackMessage:
    """post_slack, whose first attempt fails after posting (as when the worker dies)."""
    message = post_slack(input)
    if activity.info().attempt == 1:
        raise RuntimeError("worker lost after posting")
    return message


@workflow.defn(sandboxed=False)
class PostToSlack:
    @workflow.run
    async def run(self, input: SlackPostInput) -> SlackMessage:
        return await workflow.execute_activity(
            post_slack_then_lose_the_result,
            input,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=50)),
        )


async def test_temporal_retries_a_lost_post_as_an_edit(temporal_env, notify_env):
    queue = f"notify-{uuid.uuid4().hex[:8]}"
    async with worker(
        temporal_env, [PostToSlack], [post_slack_then_lose_the_result], task_queue=queue
    ):
        message = await temporal_env.client.execute_workflow(
            PostToSlack.run, POST, id=queue, task_queue=queue
        )

    [posted] = notify_env.slack.messages()
    assert message == SlackMessage(channel=posted["channel"], ts=posted["ts"])
    assert [r["path"] for r in notify_env.slack.requests()] == [
        "/api/chat.postMessage",
        "/api/chat.update",
    ]
