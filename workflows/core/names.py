"""Workflow types and ids as plain strings, for clients that must not import workflow code.

A CLI command that only talks to Temporal (`rollout status`, `incident list` …) starts in
~0.3 s only if it imports no workflow or spec module: those pull in the whole spec
vocabulary (every provider's client, CEL, YAML) for ~0.7 s. The names here are the ones
the workflows register (``@workflow.defn(name=...)``) and build their ids with;
``tests/unit/test_cli_imports.py`` checks that they agree.
"""

from __future__ import annotations

from typing import Final

ROLLOUT_WORKFLOW_TYPES: Final = (
    "CanaryRollout",
    "BlueGreenRollout",
    "RollingRollout",
    "RecreateRollout",
)
EMERGENCY_ROLLBACK_WORKFLOW_TYPE: Final = "EmergencyRollback"
INCIDENT_WORKFLOW_TYPE: Final = "IncidentRunbook"


def rollout_workflow_id(service: str, environment: str) -> str:
    return f"rollout-{service}-{environment}"


def pipeline_workflow_id(name: str) -> str:
    return f"pipeline-{name}"


def monitor_schedule_id(name: str) -> str:
    return f"monitor-{name}"


def workflow_url(ui_url: str, namespace: str, workflow_id: str, run_id: str | None = None) -> str:
    """A run's page in the Temporal UI at ``ui_url``."""
    tail = f"/{run_id}" if run_id else ""
    return f"{ui_url}/namespaces/{namespace}/workflows/{workflow_id}{tail}"


def healer_workflow_id(service: str, environment: str) -> str:
    return f"healer-{service}-{environment}"
