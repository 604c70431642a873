"""BlueGreenRollout: bring the new version up on the idle pool, prove it, switch at once.

Argo Rollouts' blueGreen sequence on VMs. The router's two server lists are the pools;
the one holding 100 % of traffic is active, the other is the preview:

1. deploy the new version onto every preview host (platform seam)
2. health checks, then smoke tests, against each preview host — no traffic yet
3. prePromotionAnalysis
4. hold for ``promote`` when ``autoPromotionEnabled: false`` (or ``autoPromotionSeconds``)
5. switch all traffic to the preview pool in one router change
6. postPromotionAnalysis — on failure, switch straight back
7. after ``scaleDownDelaySeconds``, stop the old pool

On Kubernetes (``platform: kubernetes``) the preview is deployflow's canary Deployment and
the switch is the router's (a Service selector): blue_green_workloads.py.

The next rollout finds the new pool active and deploys to the other one. Until the switch,
any failure leaves traffic where it was; the preview pool is stopped after
``abortScaleDownDelaySeconds``.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.errors import root_cause
    from workflows.core import retry
    from workflows.core.failures import FATAL
    from workflows.rollouts import host_ops
    from workflows.rollouts.blue_green_workloads import (
        BLUE_GREEN_WORKLOADS,
        STEPS,
        WorkloadBlueGreen,
    )
    from workflows.rollouts.models import PoolStatus, RolloutPhase, RolloutResult
    from workflows.rollouts.notifier import notified
    from workflows.rollouts.spec import Rollout
    from workflows.rollouts.state import ROLLBACK_ALWAYS
    from workflows.rollouts.targets import Side

PROMOTED_BEFORE_SCALE_DOWN = "blue-green-promoted-before-scale-down"


@workflow.defn(name="BlueGreenRollout")
class BlueGreenRollout(WorkloadBlueGreen):
    @workflow.init
    def __init__(self, rollout: Rollout) -> None:
        self._init_state(rollout, "blueGreen", len(STEPS))
        self._switched = False

    @workflow.run
    @notified
    async def run(self, rollout: Rollout) -> RolloutResult:
        self._begin()
        if self._kubernetes() is not None and workflow.patched(BLUE_GREEN_WORKLOADS):
            return await self._run_on_workloads()
        strategy = rollout.spec.strategy.blue_green
        assert strategy is not None
        refused = await self._read_sides()
        if refused is not None:
            return self._finish(RolloutPhase.ABORTED, refused)
        self._preview: Side = self._new_side
        self._active: Side = "canary" if self._preview == "stable" else "stable"
        self._pools = {side: self._targets(side) for side in ("stable", "canary")}
        self._show_pools(preview_version=rollout.spec.version)
        self._event("pools", f"active: {self._active}, preview: {self._preview}")
        abort_delay = strategy.abort_scale_down_delay_seconds

        async def undo(reason: str) -> None:
            cancelled = reason == "the workflow was cancelled"
            await self._undo(reason, 0 if cancelled else abort_delay)

        stopped = await self._guarded(self._promote(), undo)
        if stopped is not None:
            return stopped
        # Promoted from here on: verbs are refused while the old pool winds down.
        if workflow.patched(PROMOTED_BEFORE_SCALE_DOWN):
            self._set_phase(RolloutPhase.PROMOTED, f"{self._preview} pool is active")
        try:
            await self._scale_down(self._active, strategy.scale_down_delay_seconds, "old active")
        except Exception as exc:
            # Traffic is all on the new pool: a pool that would not stop is worth saying,
            # not a reason to fail a promoted rollout.
            if isinstance(exc, FATAL) or not workflow.patched(ROLLBACK_ALWAYS):
                raise
            self._event("scale-down", f"the old active pool did not stop: {root_cause(exc)}")
        return self._finish(RolloutPhase.PROMOTED, f"{self._preview} pool is active")

    async def _promote(self) -> None:
        rollout = self._rollout
        strategy = rollout.spec.strategy.blue_green
        assert strategy is not None
        preview = self._pools[self._preview]
        version = rollout.spec.version

        await self._migrate_up()
        self._step(0, f"deploying {version} to {', '.join(preview)}")
        await self._with_deadline("deploy to the preview pool", self._deploy(preview, version))
        self._step(1, "health checks and smoke tests on the preview pool")
        await self._check(preview)
        await self._judge_then_hold(strategy)
        self._step(4, f"switching all traffic to the {self._preview} pool")
        await self._switch_to(self._preview, "switch")
        self._switched = True
        if strategy.post_promotion_analysis is not None:
            self._step(5, "post-promotion analysis")
            await self._blocking_analysis("post-promotion", strategy.post_promotion_analysis)

    async def _undo(self, reason: str, scale_down_delay: int) -> None:
        """Traffic back to the pool that was active, then stop the preview pool."""
        self._set_phase(RolloutPhase.ROLLING_BACK, f"rolling back: {reason}")
        if self._switched:
            await self._switch_to(self._active, "switch back", rolling_back=True)
        await self._migrate_down()
        await self._scale_down(self._preview, scale_down_delay, "preview")

    async def _switch_to(self, pool: str, label: str, *, rolling_back: bool = False) -> None:
        share = 100 if pool == self._new_side else 0
        await self._set_weight(share, label, retry.ROLLBACK if rolling_back else retry.ROUTER)
        for status in self._status.pools:
            status.role = "active" if status.name == pool else "preview"

    async def _scale_down(self, pool: str, delay: int, what: str) -> None:
        if not host_ops.supports(self._rollout, "stop"):
            self._event("scale-down", f"no stop command: the {what} pool ({pool}) keeps running")
            return
        if delay:
            self._set_phase(self._status.phase, f"stopping the {what} pool in {delay}s")
            await workflow.sleep(timedelta(seconds=delay))
        await asyncio.gather(
            *(
                host_ops.platform_action(
                    self._rollout, "stop", t, self._key(f"stop/{t}"), rolling_back=True
                )
                for t in self._pools[pool]
            )
        )
        self._event("scale-down", f"stopped the {what} pool ({pool})")

    def _show_pools(self, preview_version: str) -> None:
        self._status.pools = [
            PoolStatus(
                name=name,
                role="active" if name == self._active else "preview",
                servers=servers,
                version=preview_version if name == self._preview else None,
            )
            for name, servers in self._pools.items()
        ]
