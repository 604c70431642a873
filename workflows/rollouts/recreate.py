"""RecreateRollout: stop every host, deploy, start, health-check — downtime accepted.

For services that cannot run two versions side by side. If the new version fails to come
up (or the run is aborted or cancelled), every host gets the version it ran before.

On Kubernetes the Deployment's own ``Recreate`` strategy does it (workload_steps.py).
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.platforms.base import Action
    from workflows.rollouts import host_ops
    from workflows.rollouts.host_steps import HostSteps
    from workflows.rollouts.models import RolloutPhase, RolloutResult
    from workflows.rollouts.notifier import notified
    from workflows.rollouts.spec import Rollout
    from workflows.rollouts.state import Stop
    from workflows.rollouts.workload_steps import WorkloadSteps

PARALLEL_RESTORE = "recreate-parallel-restore"
"""Patch: restore every host at once, then health-check them."""

STEPS = ("stop all hosts", "deploy", "start", "health checks")


@workflow.defn(name="RecreateRollout")
class RecreateRollout(HostSteps, WorkloadSteps):
    @workflow.init
    def __init__(self, rollout: Rollout) -> None:
        self._init_state(rollout, "recreate", len(STEPS))

    @workflow.run
    @notified
    async def run(self, rollout: Rollout) -> RolloutResult:
        self._begin()
        if rollout.spec.targets.workloads is not None:
            return await self._update_workload({"type": "Recreate"})
        return await self._on_every_host(
            lambda hosts: self._with_deadline("recreate", self._recreate(hosts)), self._restore
        )

    async def _recreate(self, hosts: list[str]) -> None:
        await self._migrate_up()
        await self._everywhere(0, "stop", hosts)
        await self._everywhere(1, "deploy", hosts, version=self._rollout.spec.version)
        await self._everywhere(2, "start", hosts)
        self._step(3)
        for line in await host_ops.require_healthy(self._rollout, hosts, self._key("health")):
            self._event("health", line)

    async def _everywhere(
        self, step: int, action: Action, hosts: list[str], version: str | None = None
    ) -> None:
        self._step(step)
        if action == "start" and not host_ops.supports(self._rollout, "start"):
            return
        await asyncio.gather(
            *(
                host_ops.platform_action(
                    self._rollout, action, h, self._key(f"{action}/{h}"), version=version
                )
                for h in hosts
            )
        )

    async def _restore(self, reason: str) -> None:
        """The previous version back on every host that ran one, all at once (recreate has
        no traffic step: every second here is downtime or errors)."""
        self._set_phase(RolloutPhase.ROLLING_BACK, f"rolling back: {reason}")
        if not workflow.patched(PARALLEL_RESTORE):
            for host, previous in self._previous.items():  # runs recorded before the patch
                await self._restore_host(host, previous)
            await self._migrate_down()
            return
        await asyncio.gather(*(self._restore_host(h, v) for h, v in self._previous.items()))
        restored = [h for h, v in self._previous.items() if v is not None]
        try:
            await host_ops.require_healthy(self._rollout, restored, self._key("restore/health"))
        except Stop as unhealthy:
            self._event("restore", f"previous version back, but {unhealthy.reason}")
        await self._migrate_down()

    async def _restore_host(self, host: str, previous: str | None) -> None:
        rollout, key = self._rollout, self._key(f"restore/{host}")
        if previous is None:
            await host_ops.platform_action(rollout, "stop", host, key, rolling_back=True)
            return
        await host_ops.platform_action(
            rollout, "deploy", host, key, version=previous, rolling_back=True
        )
        if host_ops.supports(rollout, "start"):
            await host_ops.platform_action(rollout, "start", host, key, rolling_back=True)
        self._event("restore", f"{host} back on {previous}")

    def _step(self, index: int) -> None:
        self._status.current_step = index
        self._status.step = STEPS[index]
        self._event("step", f"step {index}: {STEPS[index]}")
        self._set_phase(RolloutPhase.PROGRESSING, STEPS[index])
