"""The routing key and the bot token never appear in logs or in failures, whatever happens.

Runs the activities against the in-process local servers (the package's test doubles)
through success, refusal, outage and misconfiguration, capturing structlog and the
clients' stdlib logging at DEBUG.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from structlog.testing import capture_logs
from temporalio.exceptions import ApplicationError

from activities.errors import NOTIFIER_NOT_CONFIGURED, NOTIFY_FAILED, NOTIFY_REJECTED
from activities.notify import PageInput, SlackPostInput
from activities.notify.activities import page, post_slack
from activities.notify.notice import Notice
from activities.notify.rollout import RolloutNotices
from activities.notify.rollout_models import WebhookNoticeInput
from tests.fixtures.webhooks import WEBHOOK_SECRET, WEBHOOK_SECRET_ENV

# Until tests/conftest.py lists it; importing from it here would defeat assert rewriting.

TRIGGER = PageInput(action="trigger", dedup_key="checkout/incident-1", summary="5xx > 1%")
POST = SlackPostInput(channel="#incidents", text="checkout is paging")


def failure_of(call: Callable[[], object]) -> ApplicationError:
    with pytest.raises(ApplicationError) as e:
        call()
    return e.value


def shown(error: ApplicationError) -> str:
    """Everything of a failure that Temporal records: message, details, cause chain."""
    assert error.__cause__ is None, "a client exception would be sent along as the cause"
    return f"{error.type} {error.message} {error.details!r}"


def test_secrets_never_reach_logs_or_failures(notify_env, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    pd, sl = notify_env.pagerduty, notify_env.slack
    failures: list[ApplicationError] = []
    with capture_logs() as logs:
        page(TRIGGER)
        post_slack(POST)
        pd.fail(401, times=1)  # the pagerduty client's 401 message shows the key's tail
        failures.append(failure_of(lambda: page(TRIGGER)))
        pd.fail(500)
        failures.append(failure_of(lambda: page(TRIGGER)))
        pd.fail(None)
        pd.routing_keys = frozenset({"some-other-routing-key"})
        failures.append(failure_of(lambda: page(TRIGGER)))
        sl.token = "xoxb-the-token-slack-expects"
        failures.append(failure_of(lambda: post_slack(POST)))
        sl.token = notify_env.slack_token
        sl.fail(502)  # not retried by the client, which keeps this test fast
        failures.append(failure_of(lambda: post_slack(POST)))
        monkeypatch.setenv("PAGERDUTY_EVENTS_URL", "http://127.0.0.1:1/v2/enqueue")
        failures.append(failure_of(lambda: page(TRIGGER)))

    assert [f.type for f in failures] == [
        NOTIFY_REJECTED,
        NOTIFY_FAILED,
        NOTIFY_REJECTED,
        NOTIFY_REJECTED,
        NOTIFY_FAILED,
        NOTIFIER_NOT_CONFIGURED,
    ]
    assert [e["event"] for e in logs] == [
        "page",
        "post_slack",
        *["page_failed"] * 3,
        *["post_slack_failed"] * 2,
        "page_failed",
    ]
    seen = "\n".join([repr(logs), caplog.text, *map(shown, failures)])
    assert "invalid_auth" in seen  # the failures do say what went wrong
    key, token = notify_env.routing_key, notify_env.slack_token
    for secret in (key, key[-4:], token, token[-4:]):
        assert secret not in seen


def test_a_missing_secret_names_the_env_var(notify_env, monkeypatch):
    monkeypatch.delenv("PAGERDUTY_ROUTING_KEY")
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    missing_key = failure_of(lambda: page(TRIGGER))
    assert missing_key.type == NOTIFIER_NOT_CONFIGURED
    assert missing_key.non_retryable
    assert (
        missing_key.message
        == "PagerDuty routing key: PAGERDUTY_ROUTING_KEY is not set on the worker"
    )
    monkeypatch.setenv("SLACK_OPS_TOKEN", " ")
    missing_token = failure_of(
        lambda: post_slack(POST.model_copy(update={"token_env": "SLACK_OPS_TOKEN"}))
    )
    assert missing_token.message == "Slack bot token: SLACK_OPS_TOKEN is not set on the worker"
    assert notify_env.pagerduty.requests() == []
    assert notify_env.slack.requests() == []


async def test_the_webhook_secret_never_reaches_logs_or_failures(webhook_receiver):
    notice = Notice.model_validate(
        {"seq": 1, "trigger": "on-promoted", "at": "2026-12-02T00:00:00Z", "rolloutId": "r",
         "runId": "1", "service": "s", "environment": "e", "version": "v", "strategy": "canary",
         "phase": "Promoted", "message": "done"}
    )  # fmt: skip
    request = WebhookNoticeInput(
        url=webhook_receiver.url, secret_env=WEBHOOK_SECRET_ENV, notice=notice, delivery="r/1/1/0"
    )
    notices = RolloutNotices()
    webhook_receiver.answer(403)
    with capture_logs() as logs:
        with pytest.raises(ApplicationError) as refused:
            await notices.notify_webhook(request)
        assert await notices.notify_webhook(request) == 200
    assert refused.value.type == NOTIFY_REJECTED
    assert WEBHOOK_SECRET not in f"{logs!r} {shown(refused.value)}"
    assert [entry["event"] for entry in logs] == ["notify_webhook_failed", "notify_webhook"]
