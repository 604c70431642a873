"""Webhook signatures (what a receiver checks) and the rollout notice texts."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from temporalio.exceptions import ApplicationError

from activities.errors import NOTIFY_FAILED, NOTIFY_REJECTED
from activities.notify import webhook
from activities.notify.notice import AnalysisNote, Notice, reply_text, root_text, webhook_body
from activities.routing.base import Weights
from tests.fixtures.notify import RUN, rollback_incident
from workers.rollout_incident import rollback_notification
from workflows.notifications.spec import RollbackIncident

SECRET = "whsec-unit"
NOW = 1_764_633_600


def headers_for(body: bytes, stamp: int = NOW, secret: str = SECRET) -> dict[str, str]:
    return {
        "X-Deployflow-Timestamp": str(stamp),
        "X-Deployflow-Signature": webhook.signature(secret, stamp, body),
    }


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    body = b'{"trigger":"on-promoted"}'
    expected = hmac.new(SECRET.encode(), b"1764633600." + body, hashlib.sha256).hexdigest()
    assert webhook.signature(SECRET, NOW, body) == f"sha256={expected}"


def test_a_receiver_accepts_a_fresh_signed_body_with_any_header_case():
    body = b"{}"
    lowered = {k.lower(): v for k, v in headers_for(body).items()}
    assert webhook.verify(SECRET, lowered, body, now=NOW + 10)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"body": b'{"x":2}'}, "a changed body"),
        ({"secret": "other"}, "another secret"),
        ({"now": NOW + 301}, "a replay after five minutes"),
        ({"now": NOW - 301}, "a timestamp from the future"),
        ({"stamp": "soon"}, "a timestamp that is no number"),
    ],
)
def test_a_receiver_refuses(change, why):
    body = b'{"x":1}'
    headers = headers_for(body)
    if "stamp" in change:
        headers["X-Deployflow-Timestamp"] = change["stamp"]
    assert not webhook.verify(
        change.get("secret", SECRET), headers, change.get("body", body), now=change.get("now", NOW)
    ), why


@given(body=st.binary(max_size=200), secret=st.text(min_size=1, max_size=40))
def test_every_signed_body_verifies_and_no_other_body_does(body, secret):
    headers = headers_for(body, secret=secret)
    assert webhook.verify(secret, headers, body, now=NOW)
    assert not webhook.verify(secret, headers, body + b" ", now=NOW)


@pytest.mark.parametrize(
    ("status", "error"), [(500, NOTIFY_FAILED), (429, NOTIFY_FAILED), (404, NOTIFY_REJECTED)]
)
def test_statuses_are_classified_for_temporals_retry_policy(status, error):
    with pytest.raises(ApplicationError) as caught:
        webhook._checked(status, "webhook x")
    assert caught.value.type == error


def test_errors_name_the_host_never_the_path_or_credentials():
    assert (
        webhook._host("https://u:p@hooks.example.com/t/SECRET?k=1") == "https://hooks.example.com"
    )


NOTICE = Notice(
    seq=3,
    trigger="on-paused",
    at=datetime(2026, 12, 2, tzinfo=UTC),
    **RUN,
    phase="Paused",
    message="pause step: waiting until promoted",
    step=1,
    step_count=3,
    weights=Weights(stable=80, canary=20),
    waiting_for="someone with an operate token",
)


def test_the_root_line_shows_phase_step_split_and_the_link():
    text = root_text(NOTICE, "http://ui/r")
    assert text.splitlines() == [
        ":double_vertical_bar: *checkout* v2 → production (canary): *Paused*",
        "pause step: waiting until promoted",
        "step 2/3 · stable 80 % / canary 20 % · <http://ui/r|rollout-checkout-production>",
    ]


def test_replies_say_what_happened_and_who_may_go_on():
    assert reply_text(NOTICE) == (
        "paused: pause step: waiting until promoted\nwaiting for: someone with an operate token"
    )
    failed = NOTICE.model_copy(
        update={
            "trigger": "on-analysis-failed",
            "analysis": AnalysisNote(name="step-1", phase="Failed", message="error-rate: 0.5"),
        }
    )
    assert reply_text(failed).startswith("analysis step-1: *Failed* — error-rate: 0.5")


def test_the_webhook_body_is_camel_case_with_the_delivery_and_link():
    body = webhook_body(NOTICE, "d-1", "http://ui/r")
    assert body["delivery"] == "d-1"
    assert body["rolloutId"] == "rollout-checkout-production"
    assert body["waitingFor"] == "someone with an operate token"
    assert body["url"] == "http://ui/r"
    assert "seq" not in body


def test_a_rollback_incident_is_keyed_by_the_run_and_carries_its_labels():
    request = rollback_incident(
        incident=RollbackIncident(labels={"team": "payments"}, severity="error")
    )
    first = rollback_notification(request, "http://ui/r")
    again = rollback_notification(request, "http://ui/r")
    assert (
        first.group_key == again.group_key == "deployflow-rollback:rollout-checkout-production/r1"
    )
    assert first.labels == {
        "alertname": "RolloutRolledBack",
        "service": "checkout",
        "environment": "production",
        "severity": "error",
        "team": "payments",
    }
    assert first.common_annotations["rollout_url"] == "http://ui/r"
    assert first.alerts[0].generator_url == "http://ui/r"
