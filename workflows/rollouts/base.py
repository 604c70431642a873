"""What every rollout workflow shares: the steps (start, pause, migrations, analysis,
weights) over the state (``state.py``), the operator verbs (``verbs.py``) and the rollback
stop (``stopping.py``).

Strategies (canary.py, blue_green.py, rolling.py, recreate.py) subclass ``RolloutBase``
and write their own ``run``.
"""

from __future__ import annotations

from collections.abc import Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.errors import root_cause
    from activities.routing.base import Weights
    from activities.routing.models import SetWeightInput
    from workflows.analysis.run import AnalysisPhase, AnalysisRun, new_run
    from workflows.analysis.runner import run_analysis
    from workflows.analysis.spec import StepAnalysis
    from workflows.core import retry as retry_policies
    from workflows.core import search_attributes as sa
    from workflows.core import telemetry
    from workflows.core.durations import format_duration
    from workflows.core.failures import FATAL
    from workflows.core.spec import refuse_problems
    from workflows.core.timeouts import ROUTER_HEARTBEAT, ROUTER_START_TO_CLOSE
    from workflows.rollouts import database, instances
    from workflows.rollouts.models import DatabaseStatus, RolloutPhase
    from workflows.rollouts.spec import rollout_problems
    from workflows.rollouts.state import ROLLBACK_ALWAYS, Stop
    from workflows.rollouts.stopping import Stopping
    from workflows.rollouts.verbs import RolloutVerbs

T = TypeVar("T")


class RolloutBase(RolloutVerbs, Stopping):
    """The steps strategies share: start, pause steps, migrations, analysis, weights."""

    def _begin(self) -> None:
        """Refuse an unsound spec (the UI can start anything), then announce the run."""
        refuse_problems("rollout spec", rollout_problems(self._rollout))
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
            instances.on_router(
                "set_weight",
                self._rollout.spec.router,
                lambda router: SetWeightInput(router=router, weights=wanted, key=self._key(label)),
                Weights,
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
