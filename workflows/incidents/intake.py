"""Hand one alert notification to Temporal: open (or add to) an incident, or resolve it.

A firing group is delivered by signal-with-start, so the first notification starts the
group's IncidentRunbook and every repeat — including the same notification from a second
Alertmanager replica at the same moment — becomes a signal to that one run. A resolution
only signals: with no open incident there is nothing to resolve.

Client-side code, not workflow code: ``deployflow serve`` (the Alertmanager webhook) and the
worker's ``open_incident`` and ``open_rollout_incident`` activities (``workers/``) deliver
with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from workflows.core import search_attributes as sa
from workflows.core.names import workflow_url
from workflows.core.timeouts import WORKFLOW_TASK_TIMEOUT
from workflows.incidents.models import (
    FIRING_SIGNAL,
    RESOLVED_SIGNAL,
    WORKFLOW_TYPE,
    AlertNotification,
    IncidentInput,
    IncidentPhase,
    incident_workflow_id,
)
from workflows.incidents.spec import Runbook, choose

SEARCH_ATTRIBUTE_MAX = 255  # a label longer than this is no service name; Temporal caps at 2 KiB
SUMMARY_MAX = 200

Action = Literal["started-or-signalled", "signalled", "ignored"]


@dataclass(frozen=True)
class Delivery:
    """What became of one notification; ``reason`` is for the sender and the access log."""

    workflow_id: str
    action: Action
    reason: str


def workflow_id(notification: AlertNotification) -> str:
    """The group's incident id. ``alertname`` comes from the group labels only: they are
    fixed for a group, while common labels change as alerts join and leave it."""
    return incident_workflow_id(notification.group_key, notification.group_labels.get("alertname"))


async def deliver(
    client: Client,
    task_queue: str,
    notification: AlertNotification,
    runbooks: list[Runbook],
    ui_base: str | None,
) -> Delivery:
    """Start-or-signal the group's incident (firing) or signal its resolution (resolved)."""
    incident = workflow_id(notification)
    if notification.status == "resolved":
        return await _resolve(client, incident, notification)
    runbook = choose(runbooks, notification.labels)
    if runbook is None:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(notification.labels.items()))
        return Delivery(incident, "ignored", f"no runbook matches labels {{{labels}}}")
    ui_url = None
    if ui_base is not None:
        ui_url = workflow_url(ui_base.rstrip("/"), client.namespace, incident)
    await client.start_workflow(
        WORKFLOW_TYPE,
        IncidentInput(runbook=runbook, notification=notification, ui_url=ui_url),
        id=incident,
        task_queue=task_queue,
        task_timeout=WORKFLOW_TASK_TIMEOUT,
        start_signal=FIRING_SIGNAL,
        start_signal_args=[notification],
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        static_summary=_summary(runbook, notification),
        search_attributes=_search_attributes(runbook, notification),
    )
    return Delivery(incident, "started-or-signalled", f"runbook {runbook.name}")


async def _resolve(client: Client, incident: str, notification: AlertNotification) -> Delivery:
    try:
        await client.get_workflow_handle(incident).signal(RESOLVED_SIGNAL, notification)
    except RPCError as exc:
        # NOT_FOUND also means "already completed": a closed run takes no signals.
        if exc.status == RPCStatusCode.NOT_FOUND:
            return Delivery(incident, "ignored", "no open incident for this alert group")
        raise
    return Delivery(incident, "signalled", "alert group resolved")


def _summary(runbook: Runbook, notification: AlertNotification) -> str:
    labels = notification.labels
    where = " ".join(
        part for part in (_service(runbook, labels), _environment(runbook, labels)) if part
    )
    text = f"incident: {labels.get('alertname', 'alert')}" + (f" on {where}" if where else "")
    text += f" (runbook {runbook.name})"
    return text if len(text) <= SUMMARY_MAX else text[: SUMMARY_MAX - 1] + "…"


def _search_attributes(runbook: Runbook, notification: AlertNotification) -> TypedSearchAttributes:
    pairs = [
        SearchAttributePair(sa.DEPLOY_STRATEGY, "incident"),
        SearchAttributePair(sa.DEPLOY_PHASE, IncidentPhase.TRIGGERED.value),
    ]
    service = _service(runbook, notification.labels)
    if service:
        pairs.append(SearchAttributePair(sa.DEPLOY_SERVICE, service))
    environment = _environment(runbook, notification.labels)
    if environment:
        pairs.append(SearchAttributePair(sa.DEPLOY_ENVIRONMENT, environment))
    return TypedSearchAttributes(pairs)


def _service(runbook: Runbook, labels: dict[str, str]) -> str | None:
    return _keyword(runbook.spec.service or labels.get("service"))


def _environment(runbook: Runbook, labels: dict[str, str]) -> str | None:
    return _keyword(runbook.spec.environment or labels.get("environment"))


def _keyword(value: str | None) -> str | None:
    return value if value and len(value) <= SEARCH_ATTRIBUTE_MAX else None
