"""RollingRollout: update the hosts behind the router a batch at a time.

For each batch (``maxUnavailable``/``maxSurge``, see rolling_plan.py): drain its servers at
the router, deploy the new version, health-check, put them back; then
``pauseBetweenBatches`` (``promote`` skips a pause). ``pause``/``resume``/``abort`` act
between batches. On a failure, abort, missed ``progressDeadlineSeconds`` or cancellation,
every host already touched goes back to the version it ran before, newest first.

On Kubernetes (``platform: kubernetes``) the Deployment's own RollingUpdate does the
batches, with ``maxSurge``/``maxUnavailable`` from the spec (workload_steps.py).
"""

from __future__ import annotations

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.routing.base import ServerState
    from workflows.core.durations import parse_duration
    from workflows.rollouts import host_ops
    from workflows.rollouts.host_steps import HostSteps
    from workflows.rollouts.models import BatchState, BatchStatus, RolloutPhase, RolloutResult
    from workflows.rollouts.notifier import notified
    from workflows.rollouts.rolling_plan import plan_batches
    from workflows.rollouts.spec import Rollout
    from workflows.rollouts.state import Stop
    from workflows.rollouts.workload_steps import WorkloadSteps


DRAIN_WAIT = "rolling-drain-wait"
"""Patch: wait ``drainSeconds`` after draining, before redeploying."""


@workflow.defn(name="RollingRollout")
class RollingRollout(HostSteps, WorkloadSteps):
    @workflow.init
    def __init__(self, rollout: Rollout) -> None:
        strategy = rollout.spec.strategy.rolling
        assert strategy is not None
        self._touched: list[str] = []
        if rollout.spec.targets.workloads is not None:
            self._init_state(rollout, "rolling", 1)
            return
        batches = plan_batches(
            rollout.spec.targets.everywhere(), strategy.max_unavailable, strategy.max_surge
        )
        self._init_state(rollout, "rolling", len(batches))
        self._status.batches = [BatchStatus(index=i, hosts=b) for i, b in enumerate(batches)]

    @workflow.run
    @notified
    async def run(self, rollout: Rollout) -> RolloutResult:
        self._begin()
        strategy = rollout.spec.strategy.rolling
        assert strategy is not None
        if rollout.spec.targets.workloads is not None:
            limits = {"maxSurge": strategy.max_surge, "maxUnavailable": strategy.max_unavailable}
            return await self._update_workload({"type": "RollingUpdate", "rollingUpdate": limits})
        return await self._on_every_host(lambda hosts: self._update_batches(), self._restore)

    async def _update_batches(self) -> None:
        strategy = self._rollout.spec.strategy.rolling
        assert strategy is not None
        pause = (
            parse_duration(strategy.pause_between_batches)
            if strategy.pause_between_batches
            else None
        )
        last = len(self._status.batches) - 1
        await self._migrate_up()
        for batch in self._status.batches:
            await workflow.wait_condition(lambda: self._status.paused_reason is None or self._full)
            if self._stop is not None:
                raise self._stop
            self._status.current_step = batch.index
            self._status.step = f"batch {batch.index + 1}/{last + 1}: {', '.join(batch.hosts)}"
            self._event("step", self._status.step)
            await self._with_deadline(f"batch {batch.index}", self._update_batch(batch))
            if pause is not None and batch.index < last and not self._full:
                await self._pause_step(pause)

    async def _update_batch(self, batch: BatchStatus) -> None:
        rollout, version = self._rollout, self._rollout.spec.version
        self._touched.extend(batch.hosts)
        label = f"batch-{batch.index}"
        self._batch_state(batch, "draining", f"draining {', '.join(batch.hosts)}")
        await self._uncancellable(
            host_ops.set_server_states(
                rollout, dict.fromkeys(batch.hosts, ServerState.DRAIN), self._key(f"{label}/drain")
            )
        )
        await self._drain_wait(batch.hosts)
        self._batch_state(batch, "deploying", f"deploying {version}")
        await asyncio.gather(
            *(
                host_ops.platform_action(
                    rollout, "deploy", h, self._key(f"{label}/{h}"), version=version
                )
                for h in batch.hosts
            )
        )
        self._batch_state(batch, "checking", "health-checking")
        for line in await host_ops.require_healthy(
            rollout, batch.hosts, self._key(f"{label}/health")
        ):
            self._event("health", line)
        await self._uncancellable(
            host_ops.set_server_states(
                rollout, dict.fromkeys(batch.hosts, ServerState.READY), self._key(f"{label}/ready")
            )
        )
        self._batch_state(batch, "done", f"{', '.join(batch.hosts)} serve {version}")

    async def _restore(self, reason: str) -> None:
        """Every touched host back to its previous version, newest first."""
        self._set_phase(RolloutPhase.ROLLING_BACK, f"rolling back: {reason}")
        rollout = self._rollout
        for host in reversed(self._touched):
            previous = self._previous.get(host)
            key = self._key(f"restore/{host}")
            await host_ops.set_server_states(
                rollout, {host: ServerState.DRAIN}, f"{key}/drain", rolling_back=True
            )
            await self._drain_wait([host])
            if previous is None:
                if host_ops.supports(rollout, "stop"):
                    await host_ops.platform_action(rollout, "stop", host, key, rolling_back=True)
                self._event("restore", f"{host} ran nothing before: stopped and left drained")
                continue
            await host_ops.platform_action(
                rollout, "deploy", host, key, version=previous, rolling_back=True
            )
            try:
                await host_ops.require_healthy(rollout, [host], f"{key}/health")
            except Stop as unhealthy:
                self._event("restore", f"{host} back on {previous} but {unhealthy.reason}")
                continue
            await host_ops.set_server_states(
                rollout, {host: ServerState.READY}, f"{key}/ready", rolling_back=True
            )
            self._event("restore", f"{host} back on {previous}")
        for batch in self._status.batches:
            if batch.state != "pending":
                batch.state = "rolledBack"
        await self._migrate_down()

    async def _drain_wait(self, hosts: list[str]) -> None:
        """Let requests in flight on drained ``hosts`` finish before they are redeployed."""
        strategy = self._rollout.spec.strategy.rolling
        assert strategy is not None
        if strategy.drain_seconds and workflow.patched(DRAIN_WAIT):
            self._set_phase(
                RolloutPhase.PROGRESSING,
                f"draining {', '.join(hosts)} for {strategy.drain_seconds}s",
            )
            await workflow.sleep(strategy.drain_seconds)

    def _batch_state(self, batch: BatchStatus, state: BatchState, message: str) -> None:
        batch.state = state
        self._set_phase(RolloutPhase.PROGRESSING, f"batch {batch.index + 1}: {message}")
