"""CanaryRollout: move traffic to a new version step by step, judged by analysis.

Reads like Argo Rollouts' canary: run the steps (``setWeight``, ``pause``, ``analysis``)
with an optional background analysis from ``startingStep``; operators steer with the
``promote``/``promote_full``/``pause``/``resume``/``abort`` updates (also accepted as
signals). Failed or Error analysis, ``abort``, a missed progress deadline or cancellation
send all traffic back to stable before anything else happens.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.errors import root_cause
    from workflows.analysis import AnalysisPhase, AnalysisRun
    from workflows.analysis_runner import run_analysis
    from workflows.host_steps import HostSteps
    from workflows.rollout_base import ROLLBACK_RETRY, Stop
    from workflows.rollout_models import RolloutPhase, RolloutResult
    from workflows.spec import CanaryStep, Rollout


READS_LIVE_SIDE = "canary-reads-live-side"
"""Patch: read the router first, put the new version on the idle list (roles flip after a
promotion), deploy and check it there when the spec has a platform."""


@workflow.defn(name="CanaryRollout")
class CanaryRollout(HostSteps):
    @workflow.init
    def __init__(self, rollout: Rollout) -> None:
        canary = rollout.spec.strategy.canary
        assert canary is not None  # the registry runs this workflow for canary specs only
        self._init_state(rollout, "canary", len(canary.steps))
        self._background: asyncio.Task[None] | None = None
        self._reads_sides = False

    # -- the runbook ---------------------------------------------------------------

    @workflow.run
    async def run(self, rollout: Rollout) -> RolloutResult:
        self._begin()
        # Runs recorded before the canary read the router start on the canary list.
        self._reads_sides = workflow.patched(READS_LIVE_SIDE)
        if self._reads_sides:
            refused = await self._read_sides()
            if refused is not None:
                return self._finish(RolloutPhase.ABORTED, refused)
            hosts = ", ".join(self._servers(self._new_side))
            self._event(
                "sides", f"{self._rollout.spec.version} goes to the {self._new_side} list ({hosts})"
            )
        stopped = await self._guarded(
            self._steps_then_promote(), self._roll_back, lambda: self._background
        )
        return stopped or self._finish(RolloutPhase.PROMOTED, "all steps completed")

    async def _steps_then_promote(self) -> None:
        await self._migrate_up()
        if self._reads_sides and self._rollout.spec.platform is not None:
            hosts = self._servers(self._new_side)
            await self._with_deadline("deploy", self._deploy(hosts, self._rollout.spec.version))
            await self._check(hosts)
        await self._run_steps()
        await self._cancel(self._background)
        await self._set_weight(100, "promoted")

    async def _run_steps(self) -> None:
        canary = self._rollout.spec.strategy.canary
        assert canary is not None
        for index, step in enumerate(canary.steps):
            await workflow.wait_condition(lambda: self._status.paused_reason is None or self._full)
            if self._stop is not None:
                raise self._stop
            if self._full:
                self._event("promote_full", f"skipping steps {index}..{len(canary.steps) - 1}")
                return
            self._status.current_step = index
            self._status.step = step.describe()
            self._event("step", f"step {index}: {step.describe()}")
            if canary.analysis is not None and index == canary.analysis.starting_step:
                run = self._new_run("background", canary.analysis)
                self._background = asyncio.create_task(self._run_background(run))
            try:
                if step.pause is not None:
                    await self._run_step(index, step)
                else:
                    what = f"step {index} ({step.describe()})"
                    await self._with_deadline(what, self._run_step(index, step))
            except ActivityError as exc:
                if is_cancelled_exception(exc):
                    raise
                raise Stop(
                    RolloutPhase.ROLLED_BACK,
                    f"step {index} ({step.describe()}) failed: {root_cause(exc)}",
                ) from None

    async def _run_step(self, index: int, step: CanaryStep) -> None:
        if step.set_weight is not None:
            self._set_phase(RolloutPhase.PROGRESSING, f"setting canary weight to {step.set_weight}")
            await self._set_weight(step.set_weight, f"step-{index}")
        elif step.pause is not None:
            await self._pause_step(step.pause.timeout)
        elif step.analysis is not None:
            await self._blocking_analysis(f"step-{index}", step.analysis)

    async def _run_background(self, run: AnalysisRun) -> None:
        try:
            await run_analysis(self._rollout, run, self._key("background"))
        except asyncio.CancelledError:
            if not run.phase.completed:
                run.phase = AnalysisPhase.SUCCESSFUL
                run.message = "stopped when the rollout finished"
                run.finished_at = workflow.now()
            raise
        stop = self._analysis_finished(run)
        if stop is not None:
            self._request_stop(stop)

    async def _roll_back(self, reason: str) -> None:
        self._set_phase(RolloutPhase.ROLLING_BACK, f"rolling back: {reason}")
        await self._set_weight(0, "rollback", retry=ROLLBACK_RETRY)
        await self._migrate_down()
