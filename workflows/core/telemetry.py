"""deployflow's workflow-side metrics: rollout phases and analysis measurements.

They go through ``workflow.metric_meter()``, which records nothing while a workflow
replays: a worker that restarts and replays a run's history does not count its phases or
measurements again. The meter adds ``namespace``, ``task_queue`` and ``workflow_type``; the
worker exports them on its Prometheus endpoint (``workers/telemetry.py``). Recording a
metric is not a command, so adding one needs no ``workflow.patched``.
"""

from __future__ import annotations

from temporalio import workflow

ROLLOUT_PHASES = "deployflow_rollout_phases"
MEASUREMENTS = "deployflow_analysis_measurements"


def rollout_phase(strategy: str, phase: str) -> None:
    """A rollout entered ``phase`` (Progressing at its start, then each change)."""
    workflow.metric_meter().create_counter(
        ROLLOUT_PHASES, "Rollouts entering each phase, by strategy"
    ).add(1, {"strategy": strategy, "phase": phase})


def measurement(provider: str, phase: str) -> None:
    """One analysis measurement was judged ``phase`` (Successful, Failed, ...)."""
    workflow.metric_meter().create_counter(
        MEASUREMENTS, "Analysis measurements taken, by provider and phase"
    ).add(1, {"provider": provider, "phase": phase})
