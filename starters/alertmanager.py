"""Alertmanager's webhook payload (``version: "4"``) and what the intake makes of it.

    {"version": "4", "groupKey": "{}:{alertname=\\"Down\\"}", "truncatedAlerts": 0,
     "status": "firing", "receiver": "deployflow", "groupLabels": {...},
     "commonLabels": {...}, "commonAnnotations": {...}, "externalURL": "http://am:9093",
     "alerts": [{"status": "firing", "labels": {...}, "annotations": {...},
                 "startsAt": "...", "endsAt": "0001-01-01T00:00:00Z",
                 "generatorURL": "...", "fingerprint": "..."}]}

Strict where a mistake would misroute an incident (version, statuses, the group key, labels
are strings), lenient about keys it does not know: Alertmanager adds fields in minor
releases, and rejecting them would drop real alerts (it does not retry a 4xx). Sizes are
bounded so a hostile body cannot make an oversized workflow input.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from workflows.core.spec import validation_problems
from workflows.incidents.models import ALERT_LIMIT, Alert, AlertNotification

MAX_ALERTS: Final = 10_000
MAX_LABELS: Final = 256
LABEL_NAME_MAX: Final = 256
LABEL_VALUE_MAX: Final = 8 * 1024
ANNOTATION_VALUE_MAX: Final = 64 * 1024
URL_MAX: Final = 8 * 1024
GROUP_KEY_MAX: Final = 4096  # AlertNotification.group_key's bound
NOTIFICATION_BYTES: Final = 256 * 1024
"""Budget for one notification as JSON. It travels in a workflow's input and in a signal;
Temporal warns about payloads over 512 KiB and refuses them over 2 MiB."""
MAX_PROBLEMS: Final = 20
PROBLEM_CHARS: Final = 300

LabelName = Annotated[str, Field(min_length=1, max_length=LABEL_NAME_MAX)]
Labels = Annotated[
    dict[LabelName, Annotated[str, Field(max_length=LABEL_VALUE_MAX)]],
    Field(max_length=MAX_LABELS),
]
Annotations = Annotated[
    dict[LabelName, Annotated[str, Field(max_length=ANNOTATION_VALUE_MAX)]],
    Field(max_length=MAX_LABELS),
]
Status = Literal["firing", "resolved"]


class _Wire(BaseModel):
    """Alertmanager's own spelling only; unknown keys are ignored."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class WebhookAlert(_Wire):
    status: Status
    labels: Labels
    annotations: Annotations = Field(default_factory=dict)
    starts_at: datetime | None = Field(default=None, alias="startsAt")
    ends_at: datetime | None = Field(default=None, alias="endsAt")
    generator_url: str | None = Field(default=None, alias="generatorURL", max_length=URL_MAX)
    fingerprint: str | None = Field(default=None, max_length=256)


class WebhookPayload(_Wire):
    version: Literal["4"]
    group_key: str = Field(alias="groupKey", min_length=1, max_length=GROUP_KEY_MAX)
    truncated_alerts: int = Field(default=0, alias="truncatedAlerts", ge=0, strict=True)
    status: Status
    receiver: str = Field(default="", max_length=1024)
    group_labels: Labels = Field(default_factory=dict, alias="groupLabels")
    common_labels: Labels = Field(default_factory=dict, alias="commonLabels")
    common_annotations: Annotations = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str | None = Field(default=None, alias="externalURL", max_length=URL_MAX)
    alerts: list[WebhookAlert] = Field(min_length=1, max_length=MAX_ALERTS)


class PayloadError(ValueError):
    """The body is not an Alertmanager webhook: ``problems`` are ``path: message`` lines."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class OversizedNotification(ValueError):
    """Even without its alerts the group is larger than an incident may carry."""


def parse_payload(body: bytes) -> WebhookPayload:
    """Parse and validate a webhook body; JSON and schema problems both raise PayloadError.

    Pydantic's own JSON parser is used: it bounds nesting depth and number size and rejects
    lone surrogates, which ``json.loads`` would let through to fail later.
    """
    try:
        return WebhookPayload.model_validate_json(body)
    except ValidationError as exc:
        problems = validation_problems(exc)
        shown = [_shorten(p) for p in problems[:MAX_PROBLEMS]]
        if len(problems) > MAX_PROBLEMS:
            shown.append(f"... and {len(problems) - MAX_PROBLEMS} more")
        raise PayloadError(shown) from None


def to_notification(payload: WebhookPayload) -> AlertNotification:
    """The notification an incident gets: firing alerts first, at most ``ALERT_LIMIT`` of
    them, and only as many as fit in ``NOTIFICATION_BYTES``."""
    notification = AlertNotification(
        status=payload.status,
        group_key=payload.group_key,
        group_labels=payload.group_labels,
        common_labels=payload.common_labels,
        common_annotations=payload.common_annotations,
        external_url=payload.external_url,
    )
    budget = NOTIFICATION_BYTES - _size(notification)
    if budget < 0:
        raise OversizedNotification(
            f"groupLabels, commonLabels and commonAnnotations take more than "
            f"{NOTIFICATION_BYTES} bytes"
        )
    kept: list[Alert] = []
    ordered = sorted(payload.alerts, key=lambda a: a.status != "firing")  # stable
    for wire in ordered:
        if len(kept) == ALERT_LIMIT:
            break
        alert = _alert(wire)
        size = _size(alert) + 1  # and a comma
        if size <= budget:
            kept.append(alert)
            budget -= size
    left_out = payload.truncated_alerts + len(payload.alerts) - len(kept)
    return notification.model_copy(update={"alerts": kept, "alerts_left_out": left_out})


def _alert(wire: WebhookAlert) -> Alert:
    return Alert(
        status=wire.status,
        labels=wire.labels,
        annotations=wire.annotations,
        starts_at=_time(wire.starts_at),
        ends_at=_time(wire.ends_at),
        fingerprint=wire.fingerprint,
        generator_url=wire.generator_url or None,
    )


def _time(moment: datetime | None) -> datetime | None:
    """Go's zero time (``0001-01-01T00:00:00Z``, a firing alert's ``endsAt``) means unset."""
    return None if moment is None or moment.year == 1 else moment


def _size(model: BaseModel) -> int:
    return len(model.model_dump_json().encode())


def _shorten(problem: str) -> str:
    return problem if len(problem) <= PROBLEM_CHARS else problem[: PROBLEM_CHARS - 1] + "…"
