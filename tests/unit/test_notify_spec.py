"""``spec.notifications`` and ``spec.onRollback``: what is accepted, and bad input named."""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from starters.cli import main
from tests.unit.test_spec import good
from workflows.core.spec import SpecError
from workflows.notifications.spec import ALL_TRIGGERS, ARGO_ALIASES, Notifications, Trigger
from workflows.promotion.spec import Pipeline
from workflows.rollouts.spec import load_rollout

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "rollouts" / "checkout-notify.yaml"


def with_spec(**fields: Any) -> str:
    doc = good()
    doc["spec"].update(fields)
    return yaml.safe_dump(doc)


def problems(**fields: Any) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_rollout(with_spec(**fields))
    return caught.value.problems


SLACK = {"slack": {"channel": "#deploys"}}
HOOK = {"url": "https://ci.example.com/hooks/deploy", "secretEnv": "DEPLOY_WEBHOOK_SECRET"}


def test_the_example_spec_loads_with_its_notifications():
    rollout = load_rollout(EXAMPLE.read_text(), str(EXAMPLE))
    notifications = rollout.spec.notifications
    assert notifications is not None
    assert notifications.slack is not None
    assert notifications.slack.token_env == "SLACK_BOT_TOKEN"
    assert rollout.spec.on_rollback is not None
    assert rollout.spec.on_rollback.incident is not None


def test_slack_and_webhooks_get_every_trigger_unless_they_choose():
    notifications = Notifications.model_validate(
        {**SLACK, "webhooks": [HOOK, {**HOOK, "triggers": ["on-rolled-back"]}]}
    )
    assert notifications.slack_triggers() == frozenset(ALL_TRIGGERS)
    assert notifications.webhook_triggers(notifications.webhooks[0]) == frozenset(ALL_TRIGGERS)
    assert notifications.webhook_triggers(notifications.webhooks[1]) == {Trigger.ROLLED_BACK}


@pytest.mark.parametrize(("argo", "ours"), sorted(ARGO_ALIASES.items()))
def test_argo_trigger_names_mean_the_same_event(argo, ours):
    notifications = Notifications.model_validate({**SLACK, "triggers": [argo]})
    assert notifications.slack_triggers() == {ours}


def test_an_unknown_trigger_is_named_with_its_path():
    [problem] = problems(notifications={**SLACK, "triggers": ["on-rollout-updated"]})
    assert problem.startswith(
        "spec.notifications.triggers[0]: unknown trigger 'on-rollout-updated'"
    )
    assert "on-rolled-back" in problem


@pytest.mark.parametrize(
    ("notifications", "path"),
    [
        ({"slack": {"channel": "#d", "token": "xoxb-123"}}, "spec.notifications.slack.token"),
        ({"webhooks": [{**HOOK, "secret": "hunter2"}]}, "spec.notifications.webhooks[0].secret"),
        (
            {"slack": {"channel": "#d", "tokenEnv": "xoxb-1234-abcd"}},
            "spec.notifications.slack.tokenEnv",
        ),
        (
            {"webhooks": [{**HOOK, "secretEnv": "s3cr3t!"}]},
            "spec.notifications.webhooks[0].secretEnv",
        ),
        (
            {"webhooks": [{**HOOK, "url": "https://ci:hunter2@ci.example.com/h"}]},
            "spec.notifications.webhooks[0].url",
        ),
    ],
)
def test_a_secret_given_inline_is_refused_at_its_field_and_never_echoed(notifications, path):
    [problem] = problems(notifications=notifications)
    assert problem.startswith(f"{path}: ")
    assert not any(secret in problem for secret in ("xoxb", "hunter2", "s3cr3t"))


@pytest.mark.parametrize(
    ("notifications", "expected"),
    [
        ({}, "spec.notifications: set slack or webhooks"),
        ({"slack": {"channel": "#d", "triggers": []}}, "spec.notifications.slack.triggers: empty"),
        (
            {"webhooks": [{**HOOK, "triggers": []}]},
            "spec.notifications.webhooks[0].triggers: empty",
        ),
        ({"webhooks": [{**HOOK, "url": "ftp://x"}]}, "spec.notifications.webhooks[0].url: "),
    ],
)
def test_a_section_that_would_send_nothing_is_named(notifications, expected):
    assert any(p.startswith(expected) for p in problems(notifications=notifications))


def test_an_incident_severity_must_be_pagerdutys():
    [problem] = problems(onRollback={"incident": {"severity": "sev1"}})
    assert problem.startswith("spec.onRollback.incident.severity: ")


def test_lint_exits_2_naming_the_field(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(with_spec(notifications={**SLACK, "triggers": ["on-deployed"]}))
    assert main(["rollout", "lint", str(path)]) == 2
    assert (
        "spec.notifications.triggers[0]: unknown trigger 'on-deployed'" in capsys.readouterr().err
    )


def test_a_pipeline_hands_its_notifications_to_stages_that_set_none():
    stage_rollout = {k: v for k, v in good()["spec"].items() if k not in ("service", "version")}
    own = {**stage_rollout, "notifications": {"slack": {"channel": "#prod-deploys"}}}
    pipeline = Pipeline.model_validate(
        {
            "apiVersion": "deployflow/v1",
            "kind": "Pipeline",
            "metadata": {"name": "checkout"},
            "spec": {
                "service": "checkout",
                "notifications": SLACK,
                "onRollback": {"incident": {"labels": {"team": "payments"}}},
                "stages": [
                    {"environment": "staging", "rollout": stage_rollout},
                    {"environment": "production", "rollout": own},
                ],
            },
        }
    )
    staging, production = (pipeline.stage_rollout(i, "v2").spec for i in (0, 1))
    assert staging.notifications is not None
    assert staging.notifications.slack is not None
    assert staging.notifications.slack.channel == "#deploys"
    assert staging.on_rollback is not None
    assert production.notifications is not None
    assert production.notifications.slack is not None
    assert production.notifications.slack.channel == "#prod-deploys"


# -- properties ---------------------------------------------------------------------

ENV_NAMES = st.text(string.ascii_uppercase + string.digits + "_", min_size=1, max_size=20).filter(
    lambda s: not s[0].isdigit()
)
TRIGGER_NAMES = st.sampled_from([t.value for t in Trigger] + sorted(ARGO_ALIASES))
JUNK = st.one_of(st.text(max_size=30), st.integers(), st.none(), st.lists(st.text(), max_size=3))


@settings(max_examples=150, deadline=None)
@given(
    channel=st.from_regex(r"\A#?[a-z0-9][a-z0-9._-]{0,20}\Z"),
    token_env=ENV_NAMES,
    secret_env=ENV_NAMES,
    triggers=st.none() | st.lists(TRIGGER_NAMES, min_size=1, max_size=5),
)
def test_any_valid_section_round_trips_through_json(channel, token_env, secret_env, triggers):
    section: dict[str, Any] = {
        "slack": {"channel": channel, "tokenEnv": token_env},
        "webhooks": [{**HOOK, "secretEnv": secret_env}],
    }
    if triggers is not None:
        section["triggers"] = triggers
    parsed = Notifications.model_validate(section)
    again = Notifications.model_validate(parsed.model_dump(mode="json"))
    assert again == parsed
    assert again.slack_triggers() <= frozenset(ALL_TRIGGERS)


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(["triggers", "slack", "webhooks", "token", "secret", "sms"]),
    value=JUNK,
    where=st.sampled_from(["section", "slack", "webhook"]),
)
def test_hostile_values_are_problems_naming_a_notifications_path(key, value, where):
    section: dict[str, Any] = {"slack": {"channel": "#d"}, "webhooks": [dict(HOOK)]}
    target = {"section": section, "slack": section["slack"], "webhook": section["webhooks"][0]}[
        where
    ]
    target[key] = value
    found: list[str] = []
    try:
        load_rollout(with_spec(notifications=section))
    except SpecError as error:
        found = error.problems
    assert all(p.startswith("spec.notifications") for p in found), found
