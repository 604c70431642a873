"""Alertmanager's version-4 webhook body: what the intake accepts and what an incident gets.

The samples in tests/data/alertmanager/ were captured from a real Alertmanager
(tests/integration/test_alertmanager_webhook.py).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from starters.alertmanager import (
    LABEL_VALUE_MAX,
    MAX_ALERTS,
    NOTIFICATION_BYTES,
    OversizedNotification,
    PayloadError,
    parse_payload,
    to_notification,
)
from workflows.incidents.models import ALERT_LIMIT

DATA = Path(__file__).resolve().parents[1] / "data" / "alertmanager"


def sample(name: str) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return body


def encode(body: Any) -> bytes:
    return json.dumps(body).encode()


def problems(body: Any) -> list[str]:
    with pytest.raises(PayloadError) as caught:
        parse_payload(body if isinstance(body, bytes) else encode(body))
    return caught.value.problems


def alert(name: str, status: str = "firing", **labels: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, **labels},
        "annotations": {},
        "startsAt": "2026-11-22T12:54:44.614Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": "a3d9a4bfa0d26a05",
    }


def test_a_real_firing_notification_becomes_the_groups_notification():
    body = sample("firing")

    notification = to_notification(parse_payload(encode(body)))

    assert notification.status == "firing"
    assert notification.group_key == '{}:{alertname="CheckoutHighErrorRate", service="checkout"}'
    assert notification.labels == {
        "alertname": "CheckoutHighErrorRate",
        "service": "checkout",
        "severity": "critical",
    }
    assert notification.common_annotations["runbook"] == "restart-checkout"
    assert notification.external_url == body["externalURL"]
    [only] = notification.alerts
    assert only.status == "firing"
    assert only.starts_at == datetime.fromisoformat(body["alerts"][0]["startsAt"])
    assert only.starts_at.tzinfo is not None
    assert only.ends_at is None, "Go's zero time means a firing alert has no end yet"
    assert only.fingerprint == body["alerts"][0]["fingerprint"]
    assert only.generator_url == body["alerts"][0]["generatorURL"]


def test_a_real_resolved_notification_keeps_its_end_time():
    body = sample("resolved")

    notification = to_notification(parse_payload(encode(body)))

    assert notification.status == "resolved"
    [only] = notification.alerts
    assert only.status == "resolved"
    assert only.starts_at is not None
    assert only.ends_at == datetime.fromisoformat(body["alerts"][0]["endsAt"])
    assert only.ends_at > only.starts_at


def test_keys_alertmanager_may_add_later_are_ignored():
    body = sample("firing")
    body["newTopLevelField"] = {"anything": [1, 2]}
    body["alerts"][0]["silencedBy"] = ["abc"]

    assert parse_payload(encode(body)).group_key == sample("firing")["groupKey"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"version": "3"}, "version: Input should be '4'"),
        ({"version": 4}, "version: Input should be '4'"),
        ({"status": "pending"}, "status: Input should be 'firing' or 'resolved'"),
        ({"groupKey": ""}, "groupKey: String should have at least 1 character"),
        ({"groupKey": "k" * 4097}, "groupKey: String should have at most 4096 characters"),
        ({"truncatedAlerts": "3"}, "truncatedAlerts: Input should be a valid integer"),
        ({"truncatedAlerts": -1}, "truncatedAlerts: Input should be greater than or equal to 0"),
        (
            {"commonLabels": {"severity": 5}},
            "commonLabels.severity: Input should be a valid string",
        ),
        ({"groupLabels": ["alertname"]}, "groupLabels: Input should be an object"),
        ({"alerts": []}, "alerts: List should have at least 1 item after validation, not 0"),
        ({"alerts": {}}, "alerts: Input should be a valid array"),
    ],
)
def test_a_wrong_field_is_named(change, expected):
    body = sample("firing") | change

    assert expected in problems(body)


@pytest.mark.parametrize("field", ["version", "groupKey", "status", "alerts"])
def test_a_missing_required_field_is_named(field):
    body = sample("firing")
    del body[field]

    assert f"{field}: Field required" in problems(body)


def test_a_wrong_alert_field_is_named_with_its_index():
    body = sample("firing")
    body["alerts"] = [alert("A"), alert("B", status="silenced"), alert("C")]
    body["alerts"][2]["labels"]["service"] = None
    body["alerts"][2]["startsAt"] = "2026-13-01T00:00:00Z"

    assert problems(body) == [
        "alerts[1].status: Input should be 'firing' or 'resolved'",
        "alerts[2].labels.service: Input should be a valid string",
        "alerts[2].startsAt: Input should be a valid datetime or date, month value is outside expected range of 1-12",
    ]


def test_sizes_are_bounded():
    body = sample("firing")
    body["commonLabels"]["huge"] = "x" * (LABEL_VALUE_MAX + 1)
    body["alerts"] = [alert(f"A{i}") for i in range(MAX_ALERTS + 1)]

    assert problems(body) == [
        f"commonLabels.huge: String should have at most {LABEL_VALUE_MAX} characters",
        f"alerts: List should have at most {MAX_ALERTS} items after validation, not {MAX_ALERTS + 1}",
    ]


def test_many_problems_are_cut_short():
    body = sample("firing")
    body["alerts"] = [{"status": "firing"} for _ in range(50)]

    found = problems(body)

    assert len(found) == 21
    assert found[-1] == "... and 30 more"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"", "(top level): Invalid JSON: EOF while parsing a value at line 1 column 0"),
        (b"{", "(top level): Invalid JSON: EOF while parsing an object at line 1 column 1"),
        (
            b"[" * 300 + b"]" * 300,
            "(top level): Invalid JSON: recursion limit exceeded at line 1 column 202",
        ),
        (
            b'{"groupKey": "\\ud800"}',
            "(top level): Invalid JSON: unexpected end of hex escape at line 1 column 21",
        ),
        (b"\xff\xfe{}", "(top level): Invalid JSON: expected value at line 1 column 1"),
        (b"[]", "(top level): Input should be an object"),
    ],
)
def test_bodies_that_are_not_json_objects_are_refused(body, expected):
    assert problems(body) == [expected]


def test_firing_alerts_come_first_and_at_most_the_limit_is_kept():
    body = sample("firing")
    resolved = [alert(f"R{i}", status="resolved") for i in range(10)]
    firing = [alert(f"F{i}") for i in range(ALERT_LIMIT)]
    body["alerts"] = resolved + firing

    notification = to_notification(parse_payload(encode(body)))

    names = [a.labels["alertname"] for a in notification.alerts]
    assert names == [f"F{i}" for i in range(ALERT_LIMIT)]
    assert notification.alerts_left_out == 10


def test_alerts_alertmanager_truncated_are_counted_as_left_out():
    body = sample("firing")
    body["truncatedAlerts"] = 7

    notification = to_notification(parse_payload(encode(body)))

    assert len(notification.alerts) == len(body["alerts"])
    assert notification.alerts_left_out == 7


def test_alerts_are_kept_only_while_the_notification_fits_its_budget():
    body = sample("firing")
    big = {f"note{i}": "x" * 60_000 for i in range(2)}  # ~120 kB per alert
    body["alerts"] = [alert("Big1") | {"annotations": big}, alert("Small"), alert("Big2")]
    body["alerts"][2]["annotations"] = big
    body["alerts"][0]["annotations"] = big | {"more": "x" * 60_000}

    notification = to_notification(parse_payload(encode(body)))

    assert [a.labels["alertname"] for a in notification.alerts] == ["Big1", "Small"]
    assert len(notification.model_dump_json().encode()) <= NOTIFICATION_BYTES


def test_a_group_too_large_for_an_incident_is_refused():
    body = sample("firing")
    body["commonAnnotations"] = {f"note{i}": "x" * 60_000 for i in range(5)}

    with pytest.raises(OversizedNotification, match="commonAnnotations take more than"):
        to_notification(parse_payload(encode(body)))
