"""``open_rollout_incident``: a rollout that rolled back on its own opens an incident.

It takes the Alertmanager path (``deliver`` in ``workflows/incidents/intake.py``): the
runbook is the first of the worker's runbooks (``DEPLOYFLOW_RUNBOOKS``, a file or a
directory, like ``deployflow serve --runbooks``) whose ``match`` labels the spec's
``onRollback.incident.labels`` (plus service, environment and severity) satisfy, and the
group key is the rollout run's, so a retried activity signals the incident it opened
instead of opening a second one. The page links to the rollout: its Temporal UI page is
the alert's source, its id an annotation.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import structlog
from temporalio import activity
from temporalio.client import Client

from activities.errors import NOTIFIER_NOT_CONFIGURED, failure
from workers.runbook_files import load_runbook_path
from workers.usage import UsageError
from workflows.core.names import workflow_url
from workflows.core.spec import SpecError
from workflows.incidents import intake
from workflows.incidents.models import Alert, AlertNotification
from workflows.incidents.spec import Runbook
from workflows.notifications.spec import RollbackIncidentInput

log = structlog.get_logger()

RUNBOOKS_ENV = "DEPLOYFLOW_RUNBOOKS"
DEFAULT_ALERTNAME = "RolloutRolledBack"


def rollback_notification(
    input: RollbackIncidentInput, rollout_url: str | None, now: datetime | None = None
) -> AlertNotification:
    """The firing notification for a rolled-back run, as Alertmanager would send one."""
    incident = input.incident
    labels = {
        "alertname": DEFAULT_ALERTNAME,
        "service": input.service,
        "environment": input.environment,
        "severity": incident.severity,
        **incident.labels,
    }
    summary = incident.summary or (
        f"{input.service} {input.version} rolled back in {input.environment}: {input.reason}"
    )
    annotations = {
        "summary": summary[:1000],
        "description": input.reason[:1000],
        "rollout_id": input.rollout_id,
        "rollout_run_id": input.run_id,
        "rollout_version": input.version,
        "rollout_strategy": input.strategy,
        **({"rollout_url": rollout_url} if rollout_url else {}),
    }
    return AlertNotification(
        status="firing",
        group_key=f"deployflow-rollback:{input.rollout_id}/{input.run_id}",
        group_labels={"alertname": labels["alertname"]},
        common_labels=labels,
        common_annotations=annotations,
        alerts=[
            Alert(
                status="firing",
                labels=labels,
                annotations=annotations,
                starts_at=now or datetime.now(UTC),
                generator_url=rollout_url,
            )
        ],
        source="rollout",
    )


def runbooks_from_env() -> list[Runbook]:
    """The runbooks ``DEPLOYFLOW_RUNBOOKS`` names, read at call time (none when unset)."""
    path = os.environ.get(RUNBOOKS_ENV, "").strip()
    if not path:
        return []
    try:
        return load_runbook_path(Path(path))
    except (SpecError, UsageError) as exc:
        raise failure(NOTIFIER_NOT_CONFIGURED, f"{RUNBOOKS_ENV}: {exc}") from None


class RollbackIncidents:
    """Registered as a bound method; holds the worker's client like ``Remediation``."""

    def __init__(self, client: Client, task_queue: str, ui_base: str | None) -> None:
        self._client = client
        self._task_queue = task_queue
        self._ui_base = ui_base.rstrip("/") if ui_base else None

    def _rollout_url(self, input: RollbackIncidentInput) -> str | None:
        if self._ui_base is None:
            return None
        return workflow_url(self._ui_base, self._client.namespace, input.rollout_id, input.run_id)

    @activity.defn(name="open_rollout_incident")
    async def open_rollout_incident(self, input: RollbackIncidentInput) -> str:
        """Open (or signal) the run's rollback incident; what became of it, for the timeline."""
        runbooks = runbooks_from_env()
        notification = rollback_notification(input, self._rollout_url(input))
        delivery = await intake.deliver(
            self._client, self._task_queue, notification, runbooks, self._ui_base
        )
        log.info(
            "open_rollout_incident",
            rollout_id=input.rollout_id,
            workflow_id=delivery.workflow_id,
            action=delivery.action,
        )
        if delivery.action == "ignored":
            return f"no incident opened: {delivery.reason} (runbooks from ${RUNBOOKS_ENV})"
        return f"incident {delivery.workflow_id} opened for the rollback"
