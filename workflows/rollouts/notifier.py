"""A rollout's notifications: one Slack thread per run and signed webhooks, sent durably.

The rollout tells the notifier what happened (``on_event``, ``on_phase``, called from the
timeline and the phase setter); the notifier turns that into notices, which a
``NoticeSender`` task delivers beside the rollout's own work: a slow or broken Slack never
holds a weight change back. ``@notified`` on a strategy's ``run`` sends what is queued
before the run closes (at most ``notice_sender.DRAIN_TIMEOUT``), then opens the incident
``spec.onRollback.incident`` asks for when the run rolled back on its own.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, Concatenate, Protocol, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.errors import root_cause
    from activities.notify.notice import AnalysisNote
    from workflows.analysis.run import AnalysisPhase
    from workflows.core import retry
    from workflows.notifications.sender import NoticeSender
    from workflows.notifications.spec import NotifierState, RollbackIncidentInput, Trigger
    from workflows.rollouts.models import RolloutPhase, RolloutResult, RolloutStatus
    from workflows.rollouts.spec import Rollout

NOTIFICATIONS = "rollout-notifications"
"""Patch: a rollout whose spec has ``notifications`` or ``onRollback`` sends them."""

OPERATOR_EVENTS = ("promote", "promote_full", "resume")
FINAL = {
    RolloutPhase.PROMOTED: Trigger.PROMOTED,
    RolloutPhase.ROLLED_BACK: Trigger.ROLLED_BACK,
    RolloutPhase.ABORTED: Trigger.ABORTED,
}
CANCELLED = "the workflow was cancelled"


class Notifier:
    """Notices of one rollout run (see the module docstring); ``NoticeSender`` delivers."""

    def __init__(
        self,
        rollout: Rollout,
        record: Callable[[str, str], None],
        state: NotifierState | None = None,
    ) -> None:
        self._rollout = rollout
        self._record = record
        self._state = state or NotifierState()
        self._sender: NoticeSender | None = None
        self._enabled: bool | None = None if state is None else True
        self._final_phase: RolloutPhase | None = None
        self._final_reason = ""

    @property
    def state(self) -> NotifierState:
        return self._state

    @property
    def enabled(self) -> bool:
        """Whether this run notifies: decided once, at the first event (a patch marker)."""
        if self._enabled is None:
            spec = self._rollout.spec
            wanted = spec.notifications is not None or spec.on_rollback is not None
            self._enabled = wanted and workflow.patched(NOTIFICATIONS)
        return self._enabled

    def _sending(self) -> NoticeSender | None:
        notifications = self._rollout.spec.notifications
        if not self.enabled or notifications is None:
            return None
        if self._sender is None:
            info = workflow.info()
            run_key = f"{info.workflow_id}/{info.first_execution_run_id}"
            self._sender = NoticeSender(notifications, self._record, self._state, run_key)
        return self._sender

    # -- what happened ---------------------------------------------------------------

    def on_event(self, kind: str, message: str, status: RolloutStatus) -> None:
        """A timeline event: the ones a trigger watches become notices."""
        if self._sending() is None:
            return
        if kind == "started":
            self._add(Trigger.ROLLOUT_STARTED, status, message)
        elif kind == "step":
            self._step_done(status)
            self._state.last_step, self._state.last_step_text = status.current_step, status.step
        elif kind == "analysis":
            self._analysis_done(status, message)
        elif kind in OPERATOR_EVENTS:
            self._add(Trigger.RESUMED, status, message)

    def on_phase(self, status: RolloutStatus, reason: str) -> None:
        """The phase was set: a pause, the end, or a change the root line shows."""
        if not self.enabled:
            return
        sender = self._sending()
        paused = status.phase is RolloutPhase.PAUSED
        final = FINAL.get(status.phase)
        if final is not None and not self._state.final_sent:
            self._state.final_sent = True
            self._final_phase, self._final_reason = status.phase, reason
            if sender is not None:
                if status.phase is RolloutPhase.PROMOTED:
                    self._step_done(status)
                self._add(final, status, reason)
        elif sender is not None and paused and not self._state.paused:
            self._add(Trigger.PAUSED, status, status.message, waiting_for=self._who(status))
        elif sender is not None and sender.shows_differ(status.phase.value, status.current_step):
            self._add(None, status, status.message)
        self._state.paused = paused

    # -- delivery --------------------------------------------------------------------

    async def drain(self) -> None:
        """Send what is queued (bounded by ``DRAIN_TIMEOUT``); then the rollback incident."""
        if not self.enabled:
            return
        if self._sender is not None:
            await self._sender.flush()
        await self._open_incident()

    async def hand_over(self) -> NotifierState | None:
        """Before continuing as new: send what is queued; the state for the next run."""
        if not self.enabled:
            return None
        if self._sender is not None:
            await self._sender.flush()
        return self._state

    def _add(
        self,
        trigger: Trigger | None,
        status: RolloutStatus,
        message: str,
        step: int | None = None,
        step_text: str | None = None,
        analysis: AnalysisNote | None = None,
        waiting_for: str | None = None,
    ) -> None:
        sender = self._sending()
        assert sender is not None
        sender.push(
            trigger,
            service=status.service,
            environment=status.environment,
            version=status.version,
            strategy=status.strategy,
            phase=status.phase.value,
            message=message,
            step=status.current_step if step is None else step,
            step_count=status.step_count,
            step_text=status.step if step_text is None else step_text,
            weights=status.weights,
            analysis=analysis,
            waiting_for=waiting_for,
        )

    async def _open_incident(self) -> None:
        on_rollback = self._rollout.spec.on_rollback
        if (
            on_rollback is None
            or on_rollback.incident is None
            or self._final_phase is not RolloutPhase.ROLLED_BACK
            or self._final_reason == CANCELLED
        ):
            return
        info, spec = workflow.info(), self._rollout.spec
        request = RollbackIncidentInput(
            rollout_id=info.workflow_id,
            run_id=info.first_execution_run_id,
            service=spec.service,
            environment=spec.environment,
            version=spec.version,
            strategy=spec.strategy.name,
            reason=self._final_reason,
            incident=on_rollback.incident,
        )
        try:
            outcome: str = await workflow.execute_activity(
                "open_rollout_incident",
                request,
                result_type=str,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=retry.INTAKE,
                summary="open the rollback incident",
            )
        except ActivityError as exc:
            self._record("incident", f"could not open the rollback incident: {root_cause(exc)}")
            return
        self._record("incident", outcome)

    # -- notice contents -------------------------------------------------------------

    def _step_done(self, status: RolloutStatus) -> None:
        last = self._state.last_step
        finishing = status.phase is RolloutPhase.PROMOTED
        if last is not None and (last != status.current_step or finishing):
            self._add(
                Trigger.STEP_COMPLETED,
                status,
                f"step {last + 1} completed",
                step=last,
                step_text=self._state.last_step_text,
            )
            self._state.last_step = None

    def _analysis_done(self, status: RolloutStatus, message: str) -> None:
        finished = [r for r in status.analysis_runs if r.finished_at is not None]
        if not finished:
            return
        run = max(finished, key=lambda r: r.finished_at or workflow.now())
        failing = next((m for m in run.metrics if m.phase is run.phase), None)
        note = AnalysisNote(
            name=run.name,
            phase=run.phase.value,
            message=f"{failing.name}: {failing.message}" if failing and failing.message else "",
        )
        failed = run.phase in (AnalysisPhase.FAILED, AnalysisPhase.ERROR)
        trigger = Trigger.ANALYSIS_FAILED if failed else Trigger.ANALYSIS_COMPLETED
        self._add(trigger, status, message, analysis=note)

    def _who(self, status: RolloutStatus) -> str:
        spec = self._rollout.spec
        verb = "resume" if status.paused_reason is not None else "promote"
        return (
            f"someone with an operate token: `deployflow rollout {verb} {spec.service} "
            f"--env {spec.environment}` or POST /api/v1/rollouts/{spec.service}/"
            f"{spec.environment}/{verb}"
        )


class _Notifying(Protocol):
    _notifier: Notifier
    _status: RolloutStatus


W = TypeVar("W", bound=_Notifying)
A = TypeVar("A")


def notified(
    run: Callable[Concatenate[W, A, ...], Awaitable[RolloutResult]],
) -> Callable[Concatenate[W, A, ...], Awaitable[RolloutResult]]:
    """Wrap a strategy's ``run``: the queued notices go out (and the rollback incident is
    opened) before the run closes, whether it returns or raises (a cancel rolls back first)."""

    @functools.wraps(run)
    async def wrapper(self: W, arg: A, *args: Any, **kwargs: Any) -> RolloutResult:
        try:
            result = await run(self, arg, *args, **kwargs)
        except (Exception, asyncio.CancelledError):
            await self._notifier.drain()
            raise
        await self._notifier.drain()
        if not self._notifier.enabled:
            return result
        return result.model_copy(update={"events": list(self._status.events)})

    return wrapper
