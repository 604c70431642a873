"""Blue-green on Kubernetes workloads (docs/kubernetes.md): the preview is the canary
Deployment deployflow owns beside the team's, and the switch is the router's (Argo's
``activeService``/``previewService`` Service selectors, or any router at 0/100).

1. record the stable Deployment's pod template; roll out ``<name>-canary`` at the new
   version, as many pods as the stable one; the preview Service selects it
2. prePromotionAnalysis; hold for ``promote`` when ``autoPromotionEnabled: false``
3. switch all traffic to the canary pods; postPromotionAnalysis
4. Flagger's finish: the team's Deployment takes the new pod template and, once rolled
   out, all traffic again; ``scaleDownDelaySeconds`` later the canary goes to zero

Until the team's Deployment has the traffic back any failure switches traffic back to it,
puts the recorded pod template back (if it was changed) and scales the canary to zero
after ``abortScaleDownDelaySeconds``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows import retry
    from workflows.host_steps import HostSteps
    from workflows.rollout_models import RolloutPhase
    from workflows.workload_steps import WorkloadSteps


class WorkloadBlueGreen(HostSteps, WorkloadSteps):
    _switched: bool

    async def _refuse_on_workloads(self) -> str | None:
        """Before anything changes: why this run may not start (None: it may), with the
        stable Deployment's pod template recorded."""
        if self._new_side == "stable":
            return (
                f"all traffic is on {self._deployment().canary_name}: a previous promotion did "
                "not finish; send it back to the stable deployment first"
            )
        stop = await self._record_stable()
        return None if stop is None else stop.reason

    async def _preview_up(self) -> None:
        """The canary Deployment at the new version, rolled out; the router's preview (if it
        has one) selects it, the active side stays where it is."""
        await self._with_deadline("deploy the preview", self._canary_up())
        await self._set_weight(0, "preview")

    async def _finish_on_workloads(self) -> None:
        """Traffic is on the canary pods: move the team's Deployment to the new template,
        then all traffic back to it."""
        await self._with_deadline("promotion", self._stable_to("promotion"))
        await self._set_weight(0, "back-to-stable")
        for pool in self._status.pools:
            pool.role = "active" if pool.name == "stable" else "preview"
            pool.version = self._rollout.spec.version if pool.name == "stable" else None

    async def _scale_down_canary(self, delay: int, rolling_back: bool = False) -> None:
        if delay:
            what = self._deployment().canary_name
            self._set_phase(self._status.phase, f"scaling {what} to 0 in {delay}s")
            await workflow.sleep(timedelta(seconds=delay), summary=f"scale-down delay of {what}")
        await self._canary_to_zero(rolling_back=rolling_back)

    async def _undo_on_workloads(self, reason: str, delay: int) -> None:
        self._set_phase(RolloutPhase.ROLLING_BACK, f"rolling back: {reason}")
        if self._switched:
            await self._set_weight(0, "switch back", retry.ROLLBACK)
        await self._workload_back()
        await self._migrate_down()
        await self._scale_down_canary(delay, rolling_back=True)
