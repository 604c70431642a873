"""A rollout's state and how it shows: the status query's model, the timeline, the phase in
the UI (current details, the ``DeployPhase`` search attribute), the notices it sends, the
result at the end.

The layers of a rollout workflow, each a file: ``state.py`` (this), ``verbs.py`` (the
operator verbs), ``stopping.py`` (stop, undo, cancel), ``base.py`` (the steps strategies
share); ``canary.py`` and the other strategies subclass ``base.RolloutBase``.
"""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.core import search_attributes as sa
    from workflows.core import telemetry, timeline
    from workflows.rollouts.models import RolloutPhase, RolloutResult, RolloutStatus
    from workflows.rollouts.notifier import Notifier
    from workflows.rollouts.spec import Rollout
    from workflows.rollouts.targets import Side

ROLLBACK_ALWAYS = "rollback-always"
"""Patch: any exception in a rollout's steps rolls back first (not only a ``Stop``); an error
from a step being cancelled is recorded instead of failing the run; a rollback that fails is
retried, with the run left open and saying so, until it finishes."""


class Stop(Exception):
    """Ends progress; the rollout rolls back with ``phase`` (RolledBack or Aborted)."""

    def __init__(self, phase: RolloutPhase, reason: str) -> None:
        super().__init__(reason)
        self.phase = phase
        self.reason = reason


FINISHING = (
    RolloutPhase.ROLLING_BACK,
    RolloutPhase.PROMOTED,
    RolloutPhase.ROLLED_BACK,
    RolloutPhase.ABORTED,
)


class RolloutState:
    """State of a rollout; strategies call ``_init_state`` from ``__init__``."""

    def _init_state(self, rollout: Rollout, strategy: str, step_count: int) -> None:
        spec = rollout.spec
        self._rollout = rollout
        self._strategy = strategy
        self._status = RolloutStatus(
            service=spec.service,
            environment=spec.environment,
            version=spec.version,
            strategy=strategy,
            step_count=step_count,
        )
        self._stop: Stop | None = None
        # True while the steps are being cancelled (before the undo starts): see _uncancellable.
        self._cancelling_steps = False
        self._skip_pause = False
        self._full = False
        self._in_pause_step = False
        self._pause_step_message = ""
        self._pause_until: datetime | None = None
        # The router list the new version runs on: "canary", or "stable" once roles flipped.
        self._new_side: Side = "canary"
        self._notifier = Notifier(rollout, self._record)

    def _require_running(self, verb: str) -> None:
        if self._stop is not None or self._status.phase in FINISHING:
            state = self._stop.reason if self._stop else self._status.phase.value
            raise ValueError(f"cannot {verb}: the rollout is finishing ({state})")

    def _request_stop(self, stop: Stop) -> None:
        if self._stop is None:
            self._stop = stop

    def _key(self, label: str) -> str:
        return f"{workflow.info().workflow_id}/{label}"

    def _event(self, kind: str, message: str) -> None:
        """On the timeline, and to the notifier (which may send a notice for it)."""
        self._record(kind, message)
        self._notifier.on_event(kind, message, self._status)

    def _record(self, kind: str, message: str) -> None:
        timeline.record(self._status.events, kind, message)

    def _set_phase(self, phase: RolloutPhase, message: str) -> None:
        if self._status.paused_reason is not None and not phase.finished:
            phase = RolloutPhase.PAUSED
            message = f"paused ({self._status.paused_reason}); {message}"
        if phase is not self._status.phase:
            workflow.upsert_search_attributes([sa.DEPLOY_PHASE.value_set(phase.value)])
            telemetry.rollout_phase(self._strategy, phase.value)
        self._status.phase = phase
        self._status.message = message
        step = self._status.current_step
        where = "" if step is None else f"step {step + 1}/{self._status.step_count}, "
        weights = self._status.weights
        split = f"stable {weights.stable} % / canary {weights.canary} % " if weights else ""
        workflow.set_current_details(
            f"**{phase.value}** — {message}\n\n{where}{split}({self._rollout.spec.version})"
        )
        self._notifier.on_phase(self._status, message)

    def _finish(self, phase: RolloutPhase, reason: str) -> RolloutResult:
        self._event("finished", f"{phase.value}: {reason}")
        self._set_phase(phase, reason)
        s = self._status
        return RolloutResult(
            outcome=phase,
            reason=reason,
            service=s.service,
            environment=s.environment,
            version=s.version,
            weights=s.weights,
            analysis_runs=s.analysis_runs,
            events=s.events,
            pools=s.pools,
            batches=s.batches,
            database=s.database,
        )
