"""CanaryRollout: move traffic to a new version step by step, judged by analysis.

Reads like Argo Rollouts' canary: run the steps (``setWeight``, ``pause``, ``analysis``)
with an optional background analysis from ``startingStep``; operators steer with the
``promote``/``promote_full``/``pause``/``resume``/``abort`` updates (also accepted as
signals). Failed or Error analysis, ``abort``, a missed progress deadline or cancellation
send all traffic back to stable before anything else happens.

On Kubernetes (``platform: kubernetes``) the new version runs in a canary Deployment
deployflow owns beside the team's; a promotion moves the team's Deployment to the new pod
template, sends traffic back to it and scales the canary to zero, and a rollback puts the
recorded template back (workload_steps.py, docs/kubernetes.md).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.errors import root_cause
    from workflows.analysis.run import AnalysisPhase, AnalysisRun
    from workflows.analysis.runner import run_analysis
    from workflows.core import retry
    from workflows.core.failures import FATAL
    from workflows.rollouts.header_routes import HEADER_ROUTES, HeaderRouteSteps
    from workflows.rollouts.host_steps import HostSteps
    from workflows.rollouts.models import CanaryCarry, RolloutPhase, RolloutResult
    from workflows.rollouts.notifier import Notifier, notified
    from workflows.rollouts.spec import CanaryStep, Rollout
    from workflows.rollouts.state import ROLLBACK_ALWAYS, Stop
    from workflows.rollouts.workload_steps import WorkloadSteps


READS_LIVE_SIDE = "canary-reads-live-side"
"""Patch: read the router first, put the new version on the idle list (roles flip after a
promotion), deploy and check it there when the spec has a platform."""
CONTINUES_AS_NEW = "canary-continues-as-new"
"""Patch: a long wait (pause step, hold) continues as new before the history gets large."""


@workflow.defn(name="CanaryRollout")
class CanaryRollout(HostSteps, WorkloadSteps, HeaderRouteSteps):
    HISTORY_EVENTS_PER_RUN = 2_000
    """Continue as new past this many events (or when the server suggests it) while waiting:
    far below the server's 51,200-event limit, and a cold worker replays it in about 1 s
    (``bench/replay_cost.py``), well inside ``WORKFLOW_TASK_TIMEOUT``."""

    @workflow.init
    def __init__(self, rollout: Rollout) -> None:
        canary = rollout.spec.strategy.canary
        assert canary is not None  # the registry runs this workflow for canary specs only
        self._init_state(rollout, "canary", len(canary.steps))
        self._background: asyncio.Task[None] | None = None
        self._reads_sides = False
        self._continues = False
        self._continuing = False
        self._runs = 1
        self._carry = (
            None if rollout.carried is None else CanaryCarry.model_validate(rollout.carried)
        )
        if self._carry is not None:
            self._rollout = rollout.model_copy(update={"carried": None})
            carry = self._carry
            self._status, self._new_side, self._runs = carry.status, carry.new_side, carry.runs + 1
            if carry.notifier is not None:
                self._notifier = Notifier(self._rollout, self._record, carry.notifier)
            self._stable_record = carry.stable
            if carry.header_routes is not None:
                self._header_routes = {r.name: r for r in carry.header_routes}

    # -- the runbook ---------------------------------------------------------------

    @workflow.run
    @notified
    async def run(self, rollout: Rollout) -> RolloutResult:
        if self._carry is not None:  # a long canary continued as new
            return await self._resume(self._carry)
        self._begin()
        # Runs recorded before the canary read the router start on the canary list.
        self._reads_sides = workflow.patched(READS_LIVE_SIDE)
        self._continues = workflow.patched(CONTINUES_AS_NEW)
        if self._reads_sides:
            refused = await self._read_sides()
            if refused is None and self._kubernetes() is not None:
                refused = self._refuse_flipped_workloads()
            if refused is None and self._kubernetes() is not None:
                stop = await self._record_stable()
                refused = stop.reason if stop is not None else None
            if refused is not None:
                return self._finish(RolloutPhase.ABORTED, refused)
            hosts = ", ".join(self._targets(self._new_side))
            self._event(
                "sides", f"{self._rollout.spec.version} goes to the {self._new_side} list ({hosts})"
            )
        stopped = await self._guarded(
            self._steps_then_promote(), self._roll_back, lambda: self._background
        )
        return stopped or self._finish(RolloutPhase.PROMOTED, "all steps completed")

    async def _steps_then_promote(self) -> None:
        await self._migrate_up()
        if self._stable_record is not None:
            await self._with_deadline("deploy", self._canary_up())
        elif self._reads_sides and self._rollout.spec.platform is not None:
            hosts = self._targets(self._new_side)
            await self._with_deadline("deploy", self._deploy(hosts, self._rollout.spec.version))
            await self._check(hosts)
        await self._run_steps()
        await self._promote_fully()

    async def _promote_fully(self) -> None:
        await self._cancel(self._background)
        await self._set_weight(100, "promoted")
        await self._clear_header_routes("promoted", retry.ROUTER)
        if self._stable_record is not None:
            # Flagger's promotion: the team's Deployment takes the new template, gets the
            # traffic back once it has rolled out, and the canary goes to zero.
            await self._with_deadline("promotion", self._stable_to("promotion"))
            await self._set_weight(0, "back-to-stable")
            await self._canary_to_zero()

    def _refuse_flipped_workloads(self) -> str | None:
        """On Kubernetes the canary Deployment never keeps the traffic: all of it there
        means a promotion was cut short."""
        if self._new_side == "stable":
            return (
                f"all traffic is on {self._deployment().canary_name}: a previous promotion did "
                "not finish; send it back to the stable deployment first"
            )
        return None

    async def _resume(self, carry: CanaryCarry) -> RolloutResult:
        """Pick up where the previous run continued as new: same step, same pause deadline,
        the same background analysis with its counts."""
        self._reads_sides = self._continues = True
        self._event("continued", f"run {self._runs} resumes at step {carry.step}")
        self._set_phase(self._status.phase, self._status.message)
        background = next(
            (
                r
                for r in self._status.analysis_runs
                if r.name == "background" and not r.phase.completed
            ),
            None,
        )
        if background is not None:
            self._background = asyncio.create_task(self._run_background(background))

        async def steps() -> None:
            await self._run_steps(carry.step, carry.in_pause, carry.pause_until)
            await self._promote_fully()

        stopped = await self._guarded(steps(), self._roll_back, lambda: self._background)
        return stopped or self._finish(RolloutPhase.PROMOTED, "all steps completed")

    def _history_full(self) -> bool:
        info = workflow.info()
        return self._continues and (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self.HISTORY_EVENTS_PER_RUN
        )

    async def _continue_as_new(self, in_pause: bool) -> None:
        """Stop the background analysis (its counts go along), then continue as new with the
        step, the pause deadline and the status. A stop requested meanwhile wins."""
        if self._stop is not None:
            raise self._stop
        self._continuing = True
        await self._cancel(self._background)
        self._event(
            "continue",
            f"continuing as new after {workflow.info().get_current_history_length()} events",
        )
        step = self._status.current_step or 0
        carry = CanaryCarry(
            status=self._status,
            step=step,
            in_pause=in_pause,
            pause_until=self._pause_until if in_pause else None,
            new_side=self._new_side,
            runs=self._runs,
            notifier=await self._notifier.hand_over(),
            stable=self._stable_record,
            header_routes=(
                None if self._header_routes is None else list(self._header_routes.values())
            ),
        )
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(
            self._rollout.model_copy(update={"carried": carry.model_dump(mode="json")})
        )

    async def _run_steps(
        self, start: int = 0, in_pause: bool = False, pause_until: datetime | None = None
    ) -> None:
        canary = self._rollout.spec.strategy.canary
        assert canary is not None
        for index, step in enumerate(canary.steps):
            if index < start:
                continue
            if index == start and in_pause:
                remaining = (
                    None if pause_until is None else max(pause_until - workflow.now(), timedelta(0))
                )
                await self._pause_step(remaining)
                continue
            await workflow.wait_condition(
                lambda: self._status.paused_reason is None or self._full or self._history_full()
            )
            if self._status.paused_reason is not None and not self._full:
                await self._continue_as_new(in_pause=False)
            if self._stop is not None:
                raise self._stop
            if self._full:
                self._event("promote_full", f"skipping steps {index}..{len(canary.steps) - 1}")
                return
            self._status.current_step = index
            self._status.step = step.describe()
            self._event("step", f"step {index}: {step.describe()}")
            if (
                canary.analysis is not None
                and index == canary.analysis.starting_step
                and self._background is None
            ):
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
        elif step.set_header_route is not None and workflow.patched(HEADER_ROUTES):
            await self._set_header_route(index, step.set_header_route)

    async def _run_background(self, run: AnalysisRun) -> None:
        try:
            await run_analysis(self._rollout, run, self._key("background"))
        except asyncio.CancelledError:
            if not run.phase.completed and not self._continuing:
                run.phase = AnalysisPhase.SUCCESSFUL
                run.message = "stopped when the rollout finished"
                run.finished_at = workflow.now()
            raise
        except Exception as exc:
            # Nobody awaits this task until the end: an error here must stop the rollout.
            if isinstance(exc, FATAL) or not workflow.patched(ROLLBACK_ALWAYS):
                raise
            run.phase, run.message = AnalysisPhase.ERROR, str(root_cause(exc))
            run.finished_at = workflow.now()
            self._request_stop(
                Stop(RolloutPhase.ROLLED_BACK, f"analysis background failed: {run.message}")
            )
            return
        stop = self._analysis_finished(run)
        if stop is not None:
            self._request_stop(stop)

    async def _roll_back(self, reason: str) -> None:
        self._set_phase(RolloutPhase.ROLLING_BACK, f"rolling back: {reason}")
        await self._set_weight(0, "rollback", retry=retry.ROLLBACK)
        await self._clear_header_routes("rollback", retry.ROLLBACK)
        await self._workload_back()
        await self._migrate_down()
