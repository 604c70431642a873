"""The notify contract: PageInput, SlackPostInput and friends validate what runbooks send."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

import activities.notify
from activities.notify import Link, PageInput, PageResult, SlackMessage, SlackPostInput


def test_package_exports_only_the_models():
    assert sorted(activities.notify.__all__) == [
        "Link",
        "PageInput",
        "PageResult",
        "Severity",
        "SlackMessage",
        "SlackPostInput",
    ]


def test_page_input_defaults_name_the_env_var_not_the_key():
    page = PageInput(action="trigger", dedup_key="checkout/incident-1", summary="5xx > 1%")
    assert page.routing_key_env == "PAGERDUTY_ROUTING_KEY"
    assert (page.source, page.severity, page.component) == ("deployflow", "critical", None)
    assert page.custom_details == {}
    assert page.links == []


def test_page_input_reads_and_writes_camel_case():
    wire = {
        "action": "trigger",
        "dedupKey": "k",
        "routingKeyEnv": "PD_CHECKOUT_KEY",
        "summary": "down",
        "customDetails": {"p99": 2.5},
        "links": [{"href": "https://grafana/d/1", "text": "dashboard"}],
    }
    page = PageInput.model_validate(wire)
    assert page.routing_key_env == "PD_CHECKOUT_KEY"
    assert page.links == [Link(href="https://grafana/d/1", text="dashboard")]
    dumped = page.model_dump()
    assert dumped["dedupKey"] == "k"
    assert dumped["routingKeyEnv"] == "PD_CHECKOUT_KEY"
    assert dumped["customDetails"] == {"p99": 2.5}


@pytest.mark.parametrize(
    "name", ["pagerduty_routing_key", "1KEY", "PD-KEY", "PD KEY", "", "KEY$", "KÉY"]
)
def test_page_input_rejects_an_env_var_name_that_cannot_be_one(name):
    with pytest.raises(ValidationError) as e:
        PageInput.model_validate({"action": "resolve", "dedupKey": "k", "routingKeyEnv": name})
    assert e.value.errors()[0]["loc"] == ("routingKeyEnv",)


@pytest.mark.parametrize("name", ["A", "_X", "PAGERDUTY_ROUTING_KEY_2"])
def test_page_input_accepts_env_var_names(name):
    assert PageInput(action="resolve", dedup_key="k", routing_key_env=name).routing_key_env == name


@pytest.mark.parametrize("summary", ["", "   \n"])
def test_a_trigger_needs_a_summary(summary):
    with pytest.raises(ValidationError, match="summary: required when action is trigger"):
        PageInput(action="trigger", dedup_key="k", summary=summary)


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_acknowledge_and_resolve_need_no_summary(action):
    assert PageInput(action=action, dedup_key="k").summary == ""


def test_a_long_summary_is_truncated_to_pagerdutys_limit():
    page = PageInput(action="trigger", dedup_key="k", summary="x" * 5000)
    assert len(page.summary) == 1024


@pytest.mark.parametrize("dedup_key", ["", "k" * 256])
def test_dedup_key_is_1_to_255_characters(dedup_key):
    with pytest.raises(ValidationError) as e:
        PageInput.model_validate({"action": "resolve", "dedupKey": dedup_key})
    assert e.value.errors()[0]["loc"] == ("dedupKey",)
    assert PageInput(action="resolve", dedup_key="k" * 255).dedup_key == "k" * 255


def test_unknown_severity_action_and_fields_are_rejected():
    with pytest.raises(ValidationError, match="severity"):
        PageInput(action="trigger", dedup_key="k", summary="s", severity="sev1")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="action"):
        PageInput.model_validate({"action": "escalate", "dedupKey": "k"})
    with pytest.raises(ValidationError, match="routingKey"):
        PageInput.model_validate({"action": "resolve", "dedupKey": "k", "routingKey": "R0"})


def test_slack_post_input_names_the_token_env_var():
    post = SlackPostInput.model_validate(
        {"channel": "#incidents", "text": "paging", "threadTs": "1.2", "tokenEnv": "SLACK_OPS"}
    )
    assert (post.thread_ts, post.update_ts, post.token_env) == ("1.2", None, "SLACK_OPS")
    assert SlackPostInput(channel="C1", text="t").token_env == "SLACK_BOT_TOKEN"
    with pytest.raises(ValidationError) as e:
        SlackPostInput.model_validate({"channel": "C1", "text": "t", "tokenEnv": "xoxb-123"})
    assert e.value.errors()[0]["loc"] == ("tokenEnv",)


@pytest.mark.parametrize("field", ["channel", "text"])
def test_slack_post_input_needs_a_channel_and_text(field):
    fields = {"channel": "C1", "text": "t", field: ""}
    with pytest.raises(ValidationError) as e:
        SlackPostInput.model_validate(fields)
    assert e.value.errors()[0]["loc"] == (field,)


def test_results_serialise_by_alias():
    result = PageResult(action="trigger", dedup_key="k", status="success")
    assert result.model_dump() == {
        "action": "trigger",
        "dedupKey": "k",
        "status": "success",
        "message": None,
    }
    message = SlackMessage(channel="C1", ts="1700000000.000100", thread_ts=None)
    assert message.model_dump() == {"channel": "C1", "ts": "1700000000.000100", "threadTs": None}
