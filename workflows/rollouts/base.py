"""What every rollout workflow shares: operator verbs, status, timeline, the rollback stop.

Strategies (canary.py, blue_green.py, rolling.py, recreate.py) subclass ``RolloutBase``
and write their own ``run``. The verbs are Updates with validators (a verb that makes no
sense now is rejected and leaves no history) and Signals of the same names (an invalid
signal is noted in the timeline and ignored).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities import errors
    from activities.errors import root_cause
    from activities.routing.base import Weights
    from activities.routing.models import SetWeightInput
    from workflows.analysis.run import AnalysisPhase, AnalysisRun, new_run
    from workflows.analysis.runner import run_analysis
    from workflows.analysis.spec import StepAnalysis
    from workflows.core import retry as retry_policies
    from workflows.core import search_attributes as sa
    from workflows.core import telemetry, timeline
    from workflows.core.durations import format_duration
    from workflows.core.failures import FATAL
    from workflows.core.timeouts import ROUTER_HEARTBEAT, ROUTER_START_TO_CLOSE
    from workflows.core.verbs import OperatorInput
    from workflows.rollouts import database
    from workflows.rollouts.models import DatabaseStatus, RolloutPhase, RolloutResult, RolloutStatus
    from workflows.rollouts.notifier import Notifier
    from workflows.rollouts.spec import Rollout, rollout_problems
    from workflows.rollouts.targets import Side

ROLLBACK_ALWAYS = "rollback-always"
"""Patch: any exception in a rollout's steps rolls back first (not only a ``Stop``); an error
from a step being cancelled is recorded instead of failing the run; a rollback that fails is
retried, with the run left open and saying so, until it finishes."""

ROLLBACK_RETRY_DELAYS = (5, 15, 30, 60, 120, 300)
"""Seconds between attempts of a rollback that failed (then every 300 s until it works)."""

T = TypeVar("T")
"""A router server list; which one is "new" flips from rollout to rollout."""


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


class RolloutBase:
    """State and verbs of a rollout; subclasses call ``_init_state`` from ``__init__``."""

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

    def _begin(self) -> None:
        """Refuse an unsound spec (the UI can start anything), then announce the run."""
        problems = rollout_problems(self._rollout)
        if problems:
            raise ApplicationError(
                "invalid rollout spec:\n" + "\n".join(problems),
                type=errors.INVALID_SPEC,
                non_retryable=True,
            )
        spec = self._rollout.spec
        workflow.upsert_search_attributes(
            [
                sa.DEPLOY_SERVICE.value_set(spec.service),
                sa.DEPLOY_ENVIRONMENT.value_set(spec.environment),
                sa.DEPLOY_STRATEGY.value_set(self._strategy),
                sa.DEPLOY_PHASE.value_set(RolloutPhase.PROGRESSING.value),
            ]
        )
        self._event(
            "started", f"{self._strategy} of {spec.service} {spec.version} in {spec.environment}"
        )
        telemetry.rollout_phase(self._strategy, RolloutPhase.PROGRESSING.value)
        self._set_phase(RolloutPhase.PROGRESSING, "starting")

    async def _before_changes(self, what: str, read: Coroutine[Any, Any, T]) -> T | Stop:
        """A read that comes before any change (the router's split, the hosts' versions):
        if it fails there is nothing to undo, so the run ends Aborted saying why."""
        try:
            return await read
        except Exception as exc:
            if isinstance(exc, FATAL) or not workflow.patched(ROLLBACK_ALWAYS):
                raise
            return Stop(RolloutPhase.ABORTED, f"could not {what}: {root_cause(exc)}")

    def _history_full(self) -> bool:
        """Whether this run should continue as new while it waits (canary overrides)."""
        return False

    async def _continue_as_new(self, in_pause: bool) -> None:
        """Hand the rollout to a fresh run (canary overrides; only called when
        ``_history_full``)."""
        raise NotImplementedError

    async def _pause_step(self, timeout: timedelta | None) -> None:
        self._skip_pause = False
        self._in_pause_step = True
        until = "until promoted" if timeout is None else f"for {timeout} or until promoted"
        self._set_phase(RolloutPhase.PAUSED, f"pause step: waiting {until}")
        self._pause_step_message = self._status.message
        self._pause_until = None if timeout is None else workflow.now() + timeout
        try:
            await workflow.wait_condition(
                lambda: self._skip_pause or self._full or self._history_full(),
                timeout=timeout,
                timeout_summary=None if timeout is None else f"soak {format_duration(timeout)}",
            )
            if not (self._skip_pause or self._full):
                await self._continue_as_new(in_pause=True)
        except TimeoutError:
            assert timeout is not None  # only a timed pause can time out
            self._event("pause", f"pause of {format_duration(timeout)} elapsed")
        finally:
            self._in_pause_step = False
        self._set_phase(RolloutPhase.PROGRESSING, "pause over")

    async def _migrate_up(self) -> None:
        """Record the database's revision, then upgrade it to the spec's target."""
        migrations = self._rollout.spec.migrations
        if migrations is None:
            return
        before = await database.revision(migrations, self._key("db/current"))
        target = await database.revision(migrations, self._key("db/target"), target=True)
        self._status.database = DatabaseStatus(before=before, target=target, now=before)
        self._event("database", f"at {before or 'base'}; migrating to {target or 'base'}")
        try:
            result = await self._uncancellable(
                database.migrate(migrations, target, self._key("db/upgrade"))
            )
        except ActivityError as exc:
            if is_cancelled_exception(exc):
                raise
            raise Stop(RolloutPhase.ROLLED_BACK, f"migration failed: {root_cause(exc)}") from None
        self._status.database.now = result.after
        self._event("database", f"migrated {result.before or 'base'} → {result.after or 'base'}")

    async def _migrate_down(self) -> None:
        """Back to the recorded revision, by name; a failure is recorded, not raised
        (traffic is already back on the old version, which the expanded schema serves)."""
        migrations, status = self._rollout.spec.migrations, self._status.database
        if migrations is None or status is None or status.now == status.before:
            return
        try:
            result = await database.migrate(
                migrations, status.before, self._key("db/downgrade"), down=True
            )
        except ActivityError as exc:
            if is_cancelled_exception(exc):
                raise
            failed = root_cause(exc)
            self._event("database", f"could not return to {status.before or 'base'}: {failed}")
            return
        status.now = result.after
        self._event("database", f"back at {result.after or 'base'}")

    async def _blocking_analysis(self, name: str, analysis: StepAnalysis) -> None:
        """Run an AnalysisRun to its end: Failed/Error stops; Inconclusive holds for a human;
        ``promote_full`` skips it."""
        run = self._new_run(name, analysis)
        self._set_phase(RolloutPhase.PROGRESSING, f"waiting for analysis {name}")
        phase = await self._interruptible(
            run_analysis(self._rollout, run, self._key(name)), lambda: self._full
        )
        if phase is None:
            run.phase, run.message = AnalysisPhase.SUCCESSFUL, "skipped by promote_full"
            return
        stop = self._analysis_finished(run)
        if stop is not None:
            raise stop

    def _analysis_finished(self, run: AnalysisRun) -> Stop | None:
        """Judge a completed AnalysisRun: a stop to roll back, a hold for a human, or None."""
        run.finished_at = workflow.now()
        failing = next((m for m in run.metrics if m.phase is run.phase), None)
        detail = f"{failing.name}: {failing.message}" if failing and failing.message else ""
        self._event("analysis", f"analysis {run.name} {run.phase.value} {detail}".strip())
        if run.phase in (AnalysisPhase.FAILED, AnalysisPhase.ERROR):
            return Stop(
                RolloutPhase.ROLLED_BACK, f"analysis {run.name} {run.phase.value}: {detail}"
            )
        if run.phase is AnalysisPhase.INCONCLUSIVE:
            self._status.paused_reason = f"analysis {run.name} inconclusive: {detail}"
            self._set_phase(RolloutPhase.PAUSED, self._status.paused_reason + "; promote or abort")
        return None

    # -- operator verbs: updates with validators, and signals with the same names --------

    @workflow.update(name="promote", description="Finish the current pause (or hold) and go on.")
    def promote(self, request: OperatorInput) -> str:
        self._event("promote", _by(request, "promoted"))
        self._skip_pause = True
        self._status.paused_reason = None
        return "promoted: moving to the next step"

    @promote.validator
    def _validate_promote(self, request: OperatorInput) -> None:
        self._require_running("promote")
        if not self._in_pause_step and self._status.paused_reason is None:
            raise ValueError(
                f"nothing to promote: step {self._status.current_step} ({self._status.step}) "
                "is not a pause and the rollout is not paused"
            )

    @workflow.update(name="promote_full", description="Skip all remaining steps; go to 100 %.")
    def promote_full(self, request: OperatorInput) -> str:
        self._event("promote_full", _by(request, "full promotion requested"))
        self._full = True
        self._status.paused_reason = None
        return "promoting fully: remaining steps and analysis are skipped"

    @promote_full.validator
    def _validate_promote_full(self, request: OperatorInput) -> None:
        self._require_running("promote_full")
        if self._full:
            raise ValueError("promote_full was already requested")

    @workflow.update(name="pause", description="Hold before the next step until resumed.")
    def pause(self, request: OperatorInput) -> str:
        self._status.paused_reason = _by(request, "paused by operator")
        self._event("pause", self._status.paused_reason)
        self._set_phase(RolloutPhase.PAUSED, self._status.paused_reason + "; resume to continue")
        return "paused: no further step starts until resume"

    @pause.validator
    def _validate_pause(self, request: OperatorInput) -> None:
        self._require_running("pause")
        if self._status.paused_reason is not None:
            raise ValueError(f"already paused: {self._status.paused_reason}")

    @workflow.update(name="resume", description="Continue a rollout held by pause or analysis.")
    def resume(self, request: OperatorInput) -> str:
        self._event("resume", _by(request, "resumed"))
        self._status.paused_reason = None
        if self._in_pause_step:
            self._set_phase(RolloutPhase.PAUSED, self._pause_step_message)
        else:
            self._set_phase(RolloutPhase.PROGRESSING, "resumed")
        return "resumed"

    @resume.validator
    def _validate_resume(self, request: OperatorInput) -> None:
        self._require_running("resume")
        if self._status.paused_reason is None:
            raise ValueError("not paused: nothing to resume")

    @workflow.update(name="abort", description="Stop and send all traffic back to stable.")
    def abort(self, request: OperatorInput) -> str:
        reason = _by(request, "aborted")
        self._event("abort", reason)
        self._request_stop(Stop(RolloutPhase.ABORTED, reason))
        return "aborting: traffic goes back to stable"

    @abort.validator
    def _validate_abort(self, request: OperatorInput) -> None:
        self._require_running("abort")

    @workflow.signal(name="promote", description="Signal form of the promote update.")
    def promote_signal(self, request: OperatorInput) -> None:
        self._signal("promote", self._validate_promote, RolloutBase.promote, request)

    @workflow.signal(name="promote_full", description="Signal form of the promote_full update.")
    def promote_full_signal(self, request: OperatorInput) -> None:
        self._signal("promote_full", self._validate_promote_full, RolloutBase.promote_full, request)

    @workflow.signal(name="pause", description="Signal form of the pause update.")
    def pause_signal(self, request: OperatorInput) -> None:
        self._signal("pause", self._validate_pause, RolloutBase.pause, request)

    @workflow.signal(name="resume", description="Signal form of the resume update.")
    def resume_signal(self, request: OperatorInput) -> None:
        self._signal("resume", self._validate_resume, RolloutBase.resume, request)

    @workflow.signal(name="abort", description="Signal form of the abort update.")
    def abort_signal(self, request: OperatorInput) -> None:
        self._signal("abort", self._validate_abort, RolloutBase.abort, request)

    @workflow.query(name="status", description="Phase, step, weights, analysis and timeline.")
    def status(self) -> RolloutStatus:
        return self._status

    # -- machinery -------------------------------------------------------------------

    def _signal(
        self,
        verb: str,
        validate: Callable[[OperatorInput], None],
        apply: Callable[[RolloutBase, OperatorInput], object],
        request: OperatorInput,
    ) -> None:
        """Signals cannot be rejected like updates: an invalid one is noted and ignored."""
        try:
            validate(request)
        except ValueError as exc:
            self._event("ignored", f"signal {verb} ignored: {exc}")
            return
        apply(self, request)

    def _require_running(self, verb: str) -> None:
        if self._stop is not None or self._status.phase in FINISHING:
            state = self._stop.reason if self._stop else self._status.phase.value
            raise ValueError(f"cannot {verb}: the rollout is finishing ({state})")

    def _request_stop(self, stop: Stop) -> None:
        if self._stop is None:
            self._stop = stop

    async def _guarded(
        self,
        work: Coroutine[Any, Any, None],
        undo: Callable[[str], Coroutine[Any, Any, None]],
        *also_cancel: Callable[[], asyncio.Task[Any] | None],
    ) -> RolloutResult | None:
        """Run ``work`` until it finishes (None) or a stop is requested; on a stop, on an
        unexpected error or on cancellation, cancel it (and ``also_cancel``), ``undo`` and
        finish with the stop's phase. Cancellation is re-raised after the undo so the run
        ends Cancelled; nothing ends the run before ``undo`` has finished."""
        task = asyncio.create_task(work)
        try:
            stop = await self._until_stopped(task)
            if stop is not None:
                raise stop
            return None
        except Stop as stop:
            return await self._stop_and_undo(stop, undo, task, also_cancel)
        except asyncio.CancelledError:
            await self._cancel_steps(task, also_cancel)
            await self._undo_until_done(undo, "the workflow was cancelled")
            self._finish(RolloutPhase.ROLLED_BACK, "the workflow was cancelled")
            raise
        except Exception as exc:
            if isinstance(exc, FATAL) or not workflow.patched(ROLLBACK_ALWAYS):
                raise
            unexpected = Stop(RolloutPhase.ROLLED_BACK, f"failed: {root_cause(exc)}")
            return await self._stop_and_undo(unexpected, undo, task, also_cancel)

    async def _stop_and_undo(
        self,
        stop: Stop,
        undo: Callable[[str], Coroutine[Any, Any, None]],
        task: asyncio.Task[None],
        also_cancel: tuple[Callable[[], asyncio.Task[Any] | None], ...],
    ) -> RolloutResult:
        self._event("stopping", stop.reason)
        await self._cancel_steps(task, also_cancel)
        await self._undo_until_done(undo, stop.reason)
        return self._finish(stop.phase, stop.reason)

    async def _cancel_steps(
        self,
        task: asyncio.Task[None],
        also_cancel: tuple[Callable[[], asyncio.Task[Any] | None], ...],
    ) -> None:
        self._cancelling_steps = True
        try:
            await self._cancel(task, *(get() for get in also_cancel))
        finally:
            self._cancelling_steps = False

    async def _uncancellable(self, activity: Coroutine[Any, Any, T]) -> T:
        """Await an activity that finishes even when cancelled (WAIT_CANCELLATION_COMPLETED:
        a weight change in flight completes before the rollback's). If it completed while the
        steps were being cancelled, its result swallowed the cancellation: raise it again, so
        no further step (a next weight, a next batch) starts after an abort."""
        result = await activity
        if self._cancelling_steps and workflow.patched(ROLLBACK_ALWAYS):
            raise asyncio.CancelledError
        return result

    async def _undo_until_done(
        self, undo: Callable[[str], Coroutine[Any, Any, None]], reason: str
    ) -> None:
        """Run the rollback path to its end: a failed attempt is shown in current details
        and retried after a growing delay, for as long as it takes (never "Failed" with
        traffic split)."""
        attempt = 0
        while True:
            try:
                await undo(reason)
                return
            except Exception as exc:
                if isinstance(exc, FATAL) or not workflow.patched(ROLLBACK_ALWAYS):
                    raise
                delay = ROLLBACK_RETRY_DELAYS[min(attempt, len(ROLLBACK_RETRY_DELAYS) - 1)]
                attempt += 1
                message = (
                    f"rollback attempt {attempt} failed: {root_cause(exc)}; retrying in {delay}s"
                )
                self._event("rollback", message)
                self._set_phase(RolloutPhase.ROLLING_BACK, message)
                await workflow.sleep(delay, summary=f"retry rollback ({attempt} failed)")

    async def _until_stopped(self, steps: asyncio.Task[None]) -> Stop | None:
        """Wait for the steps to finish, or for a stop request, whichever comes first."""
        stopped = asyncio.create_task(workflow.wait_condition(lambda: self._stop is not None))
        await workflow.wait([steps, stopped], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if self._stop is not None:
            return self._stop
        steps.result()
        return None

    async def _interruptible(
        self, coro: Coroutine[Any, Any, T], interrupt: Callable[[], bool]
    ) -> T | None:
        """Run ``coro`` unless ``interrupt()`` becomes true first (then cancel it: ``None``)."""
        task = asyncio.create_task(coro)
        waiter = asyncio.create_task(workflow.wait_condition(interrupt))
        await workflow.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            return task.result()
        await self._cancel(task)
        return None

    async def _with_deadline(self, what: str, coro: Coroutine[Any, Any, None]) -> None:
        """Argo's progressDeadlineSeconds: ``what`` (never a pause) must finish in time."""
        deadline = self._rollout.spec.progress_deadline_seconds
        if deadline is None:
            await coro
            return
        task = asyncio.create_task(coro)
        try:
            await workflow.wait_condition(task.done, timeout=timedelta(seconds=deadline))
        except TimeoutError:
            await self._cancel(task)
            raise Stop(
                RolloutPhase.ROLLED_BACK, f"progress deadline of {deadline}s exceeded at {what}"
            ) from None
        task.result()

    async def _cancel(self, *tasks: asyncio.Task[Any] | None) -> None:
        """Cancel tasks and wait for them (an in-flight weight change finishes first).

        A task may end with an error instead: an activity cancelled before it started
        raises ``ActivityError`` (cancelled), or one failed just as it was cancelled. The
        caller is stopping anyway, so the error is recorded, never raised over the undo."""
        for task in tasks:
            if task is None or task.done():
                continue
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Stop):
                pass
            except Exception as exc:
                if isinstance(exc, FATAL) or not workflow.patched(ROLLBACK_ALWAYS):
                    raise
                if not is_cancelled_exception(exc):
                    self._event("stopping", f"while stopping: {root_cause(exc)}")

    async def _set_weight(
        self, share: int, label: str, retry: RetryPolicy = retry_policies.ROUTER
    ) -> None:
        """Give the new version's side (``_new_side``) ``share`` % of traffic."""
        wanted = (
            Weights.canary_at(share)
            if self._new_side == "canary"
            else Weights(stable=share, canary=100 - share)
        )
        weights = await self._uncancellable(
            workflow.execute_activity(
                "set_weight",
                SetWeightInput(
                    router=self._rollout.spec.router,
                    weights=wanted,
                    key=self._key(label),
                ),
                result_type=Weights,
                start_to_close_timeout=ROUTER_START_TO_CLOSE,
                heartbeat_timeout=ROUTER_HEARTBEAT,
                retry_policy=retry,
                summary=f"set weights {wanted.stable}/{wanted.canary} % stable/canary ({label})",
                # A weight change in flight always finishes before the next one starts.
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        )
        self._status.weights = weights
        self._event("weights", f"stable {weights.stable} % / canary {weights.canary} % ({label})")

    def _new_run(self, name: str, analysis: StepAnalysis) -> AnalysisRun:
        run = new_run(name, analysis, workflow.now())
        self._status.analysis_runs.append(run)
        return run

    def _key(self, label: str) -> str:
        return f"{workflow.info().workflow_id}/{label}"

    def _event(self, kind: str, message: str) -> None:
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


def _by(request: OperatorInput, what: str) -> str:
    who = f" by {request.by}" if request.by else ""
    because = f": {request.reason}" if request.reason else ""
    return f"{what}{who}{because}"
