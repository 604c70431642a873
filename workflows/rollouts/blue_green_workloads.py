"""Blue-green on Kubernetes workloads: Argo's blueGreen with deployflow's ownership model.

The preview is the canary Deployment deployflow owns beside the team's (workload_steps.py).
With the Service router the ``previewService`` selects it from the start and the switch
is one change of ``activeService``'s selector:

1. roll the preview Deployment out at the new version (its pods' readiness is the health)
2. prePromotionAnalysis; hold for ``promote`` unless auto-promoted
3. switch all traffic to the preview
4. postPromotionAnalysis — on failure, switch straight back
5. the team's Deployment takes the new pod template, traffic switches back to it
6. after ``scaleDownDelaySeconds``, the preview goes to zero

Until the switch-back, a failure, abort or cancel switches traffic to the team's
Deployment, puts its recorded template back if it was changed, and scales the preview to 0.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.errors import root_cause
    from workflows.core import retry
    from workflows.core.failures import FATAL
    from workflows.rollouts.host_steps import HostSteps
    from workflows.rollouts.models import RolloutPhase, RolloutResult
    from workflows.rollouts.spec import BlueGreenStrategy
    from workflows.rollouts.state import ROLLBACK_ALWAYS
    from workflows.rollouts.workload_steps import WorkloadSteps

BLUE_GREEN_WORKLOADS = "blue-green-on-workloads"
"""Patch: a blue-green spec with platform kubernetes runs on workloads (lint refused it
before, so no recorded run took another path)."""


STEPS = (
    "deploy to the preview pool",
    "health checks and smoke tests",
    "pre-promotion analysis",
    "promotion",
    "switch traffic",
    "post-promotion analysis",
)


class WorkloadBlueGreen(HostSteps, WorkloadSteps):
    _switched = False

    def _step(self, index: int, message: str) -> None:
        self._status.current_step = index
        self._status.step = STEPS[index]
        self._event("step", f"step {index}: {message}")
        self._set_phase(RolloutPhase.PROGRESSING, message)

    async def _run_on_workloads(self) -> RolloutResult:
        strategy = self._rollout.spec.strategy.blue_green
        assert strategy is not None
        refused = await self._read_sides()
        if refused is None and self._new_side == "stable":
            refused = (
                f"all traffic is on {self._deployment().canary_name}: a previous promotion did "
                "not finish; send it back to the stable deployment first"
            )
        if refused is None:
            stop = await self._record_stable()
            refused = stop.reason if stop is not None else None
        if refused is not None:
            return self._finish(RolloutPhase.ABORTED, refused)

        async def undo(reason: str) -> None:
            self._set_phase(RolloutPhase.ROLLING_BACK, f"rolling back: {reason}")
            if self._switched:
                await self._set_weight(0, "switch back", retry.ROLLBACK)
            await self._migrate_down()
            await self._workload_back()
            await self._canary_to_zero(rolling_back=True)

        stopped = await self._guarded(self._promote_workloads(), undo)
        if stopped is not None:
            return stopped
        self._set_phase(RolloutPhase.PROMOTED, f"{self._deployment().name} runs the new version")
        try:
            if delay := strategy.scale_down_delay_seconds:
                self._set_phase(self._status.phase, f"scaling the preview to 0 in {delay}s")
                await workflow.sleep(timedelta(seconds=delay), summary="scaleDownDelaySeconds")
            await self._canary_to_zero()
        except Exception as exc:
            # Traffic is all on the promoted team Deployment: a preview that would not
            # scale down is worth saying, not a reason to fail the rollout.
            if isinstance(exc, FATAL) or not workflow.patched(ROLLBACK_ALWAYS):
                raise
            self._event("scale-down", f"the preview did not scale to 0: {root_cause(exc)}")
        return self._finish(RolloutPhase.PROMOTED, f"{self._deployment().name} is active")

    async def _judge_then_hold(self, strategy: BlueGreenStrategy) -> None:
        """Pre-promotion analysis, then the promotion hold (``promote``, or auto-promotion)."""
        if strategy.pre_promotion_analysis is not None:
            self._step(2, "pre-promotion analysis")
            await self._blocking_analysis("pre-promotion", strategy.pre_promotion_analysis)
            await workflow.wait_condition(lambda: self._status.paused_reason is None or self._full)
        self._step(3, "promotion")
        if not strategy.auto_promotion_enabled:
            await self._pause_step(None)
        elif strategy.auto_promotion_seconds:
            await self._pause_step(timedelta(seconds=strategy.auto_promotion_seconds))
        await workflow.wait_condition(lambda: self._status.paused_reason is None or self._full)

    async def _promote_workloads(self) -> None:
        strategy = self._rollout.spec.strategy.blue_green
        assert strategy is not None
        preview, version = self._deployment().canary_name, self._rollout.spec.version
        await self._migrate_up()
        self._step(0, f"rolling out {preview} at {version} (the preview)")
        await self._with_deadline("deploy to the preview", self._canary_up())
        await self._set_weight(0, "preview")  # previewService selects the preview
        await self._judge_then_hold(strategy)
        self._step(4, f"switching all traffic to {preview}")
        self._switched = True  # a switch in flight finishes before the undo switches back
        await self._set_weight(100, "switch")
        if strategy.post_promotion_analysis is not None:
            self._step(5, "post-promotion analysis")
            await self._blocking_analysis("post-promotion", strategy.post_promotion_analysis)
        # Flagger's promotion: the team's Deployment takes the new template, then the traffic.
        await self._with_deadline("promotion", self._stable_to("promotion"))
        await self._set_weight(0, "back-to-stable")
