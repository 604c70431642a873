"""Rollouts on Kubernetes workloads: the team's Deployment stays stable, deployflow owns its
canary (docs/kubernetes.md). Shared by canary (a canary Deployment beside the stable one,
promotion moves the stable one to the new pod template) and rolling/recreate (the stable
Deployment's own strategy does the update).

Before anything changes the run records the stable Deployment's exact pod template
(``record_stable``); every way out that is not a promotion puts that template back and
scales the canary to zero. Each activity sets a state and waits for it, so a retry after a
lost worker finds the change made and only waits.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.errors import KUBERNETES_OBJECT_REPLACED, root_cause
    from activities.platforms.deployments import version_template
    from activities.platforms.models import (
        ApplyCanaryInput,
        PauseInput,
        RecordStableInput,
        ScaleInput,
        SetStableInput,
        StableRecord,
        WorkloadState,
    )
    from activities.platforms.spec import DeploymentTarget, KubernetesPlatformSpec
    from workflows.core import retry
    from workflows.core.timeouts import KUBERNETES_CALL, KUBERNETES_HEARTBEAT, KUBERNETES_WAIT_SLACK
    from workflows.rollouts.base import RolloutBase
    from workflows.rollouts.models import RolloutPhase, RolloutResult
    from workflows.rollouts.state import Stop

R = TypeVar("R")

PAUSES_DEPLOYMENT = "rolling-pauses-the-deployment"
"""Patch: ``pause`` during a rolling or recreate update on Kubernetes pauses the Deployment
(``spec.paused``) mid-update; before it, the run held only before the update started."""


class WorkloadSteps(RolloutBase):
    _stable_record: StableRecord | None = None
    _stable_changed = False
    _workload_paused = False
    _not_restored: str | None = None  # the rollback found the Deployment replaced

    def _kubernetes(self) -> KubernetesPlatformSpec | None:
        platform = self._rollout.spec.platform
        return platform.kubernetes if platform is not None else None

    def _deployment(self) -> DeploymentTarget:
        kubernetes = self._kubernetes()
        assert kubernetes is not None
        return kubernetes.deployment

    @property
    def _stable(self) -> StableRecord:
        assert self._stable_record is not None  # recorded before any change
        return self._stable_record

    async def _record_stable(self) -> Stop | None:
        """Read the stable Deployment before changing anything; a Stop when it cannot be."""
        kubernetes = self._kubernetes()
        assert kubernetes is not None
        record = await self._before_changes(
            "read the stable deployment",
            self._call(
                "record_stable",
                RecordStableInput(platform=kubernetes, key=self._key("stable")),
                StableRecord,
                "record the stable deployment's pod template",
                KUBERNETES_CALL,
            ),
        )
        if isinstance(record, Stop):
            return record
        self._stable_record = record
        self._event(
            "stable",
            f"{record.deployment} runs {record.version or record.image} "
            f"({record.replicas} replicas); its pod template is recorded",
        )
        return None

    async def _canary_up(self) -> None:
        """The canary Deployment at the new version, rolled out; no traffic yet."""
        deployment, version = self._deployment(), self._rollout.spec.version
        replicas = deployment.canary_replicas or max(1, self._stable.replicas)
        if self._rollout.spec.router.replicas is not None:
            replicas = 0  # the replica-count router gives it pods with each setWeight
        self._set_phase(RolloutPhase.PROGRESSING, f"rolling out {deployment.canary_name}")
        state = await self._forward(
            "apply_canary",
            ApplyCanaryInput(
                platform=self._platform(),
                stable=self._stable,
                version=version,
                replicas=replicas,
                rollout=workflow.info().workflow_id,
                key=self._key("canary"),
            ),
            f"roll out {deployment.canary_name} at {version} ({replicas} replicas)",
            self._wait_timeout(deployment.progress_deadline_seconds),
        )
        self._event("canary", f"{state.deployment} runs {version}: {state.message}")

    async def _stable_to(self, what: str, strategy: dict[str, Any] | None = None) -> None:
        """Move the stable Deployment to the new version's pod template and wait for it."""
        deployment, version = self._deployment(), self._rollout.spec.version
        template = version_template(deployment, self._stable, version)
        self._set_phase(RolloutPhase.PROGRESSING, f"{what}: {deployment.name} to {version}")
        self._stable_changed = True  # from here on a rollback puts the recorded template back
        state = await self._forward(
            "set_stable",
            self._set_stable_input(template, strategy, deployment.progress_deadline_seconds),
            f"{what}: roll {deployment.name} out at {version}",
            self._wait_timeout(deployment.progress_deadline_seconds),
        )
        self._event("stable", f"{state.deployment} runs {version}: {state.message}")

    async def _canary_to_zero(self, rolling_back: bool = False) -> None:
        deployment = self._deployment()
        state: WorkloadState = await self._call(
            "scale_workload",
            ScaleInput(
                platform=self._platform(), workload="canary", replicas=0, key=self._key("scale")
            ),
            WorkloadState,
            f"scale {deployment.canary_name} to 0",
            KUBERNETES_CALL,
            retry.ROLLBACK if rolling_back else retry.KUBERNETES,
        )
        if state.changed:
            self._event("canary", f"{state.deployment} scaled to 0")

    async def _workload_back(self) -> None:
        """The recorded pod template back on the stable Deployment (if it was changed),
        exactly, and the canary at zero. Retried until it works."""
        if self._stable_record is None:
            return
        if self._workload_paused:  # a paused Deployment would never roll the template back
            await self._pause_workload(False)
        if self._stable_changed and self._not_restored is None:
            record = self._stable
            try:
                state: WorkloadState = await self._call(
                    "set_stable",
                    self._set_stable_input(
                        record.template, record.strategy, record.progress_deadline_seconds
                    ),
                    WorkloadState,
                    f"restore {self._deployment().name}'s recorded pod template",
                    self._wait_timeout(record.progress_deadline_seconds),
                    retry.ROLLBACK,
                )
            except ActivityError as exc:
                # Deleted and created again since: someone else's object, left as it is
                # (retrying cannot make it ours); the run ends saying so.
                if root_cause(exc).type != KUBERNETES_OBJECT_REPLACED:
                    raise
                self._not_restored = f"recorded pod template not put back: {root_cause(exc)}"
                self._event("restore", self._not_restored)
                self._set_phase(RolloutPhase.ROLLING_BACK, self._not_restored)
            else:
                message = f"{state.deployment} back on {record.version}: {state.message}"
                self._event("restore", message)
        if self._strategy == "canary":
            await self._canary_to_zero(rolling_back=True)

    async def _update_workload(self, strategy: dict[str, Any]) -> RolloutResult:
        """Rolling and recreate on Kubernetes: the stable Deployment's own ``strategy`` does
        the update, watched to its end; a failure, abort, missed deadline or cancel puts
        the recorded pod template and strategy back."""
        refused = await self._record_stable()
        if refused is not None:
            return self._finish(refused.phase, refused.reason)
        deployment = self._deployment()

        async def update() -> None:
            await self._migrate_up()
            await workflow.wait_condition(lambda: self._status.paused_reason is None or self._full)
            if self._stop is not None:
                raise self._stop
            self._status.current_step = 0
            self._status.step = f"{strategy['type']} update of {deployment.describe()}"
            self._event("step", self._status.step)
            if workflow.patched(PAUSES_DEPLOYMENT):
                await self._pausable_update(strategy)
            else:
                await self._with_deadline("update", self._stable_to(self._strategy, strategy))

        async def undo(reason: str) -> None:
            self._set_phase(RolloutPhase.ROLLING_BACK, f"rolling back: {reason}")
            await self._workload_back()
            await self._migrate_down()

        stopped = await self._guarded(update(), undo)
        return stopped or self._finish(
            RolloutPhase.PROMOTED, f"{deployment.describe()} runs {self._rollout.spec.version}"
        )

    async def _pausable_update(self, strategy: dict[str, Any]) -> None:
        """The update, held inside the Deployment's own rollout by ``pause`` as ``kubectl
        rollout pause`` holds it (``spec.paused``) until ``resume``. Time paused never counts
        against the progress deadline: each stretch of moving gets it anew."""
        while True:
            moving = asyncio.create_task(
                self._with_deadline("update", self._stable_to(self._strategy, strategy))
            )

            def moved_or_paused(task: asyncio.Task[None] = moving) -> bool:
                # After promote_full a pause holds nothing (as before a step).
                return task.done() or (self._status.paused_reason is not None and not self._full)

            await workflow.wait_condition(moved_or_paused)
            if moving.done():
                moving.result()
                return
            await self._cancel(moving)  # its watch ends within a few seconds
            await self._pause_workload(True)
            await workflow.wait_condition(lambda: self._status.paused_reason is None or self._full)
            await self._pause_workload(False)

    async def _pause_workload(self, paused: bool) -> None:
        self._workload_paused = paused
        state: WorkloadState = await self._call(
            "pause_workload",
            PauseInput(
                platform=self._platform(), workload="stable", paused=paused, key=self._key("pause")
            ),
            WorkloadState,
            f"{'pause' if paused else 'resume'} the rollout of {self._deployment().name}",
            KUBERNETES_CALL,
            retry.ROLLBACK if not paused else retry.KUBERNETES,
        )
        what = "paused mid-update" if paused else "resumed"
        self._event("stable", f"{state.deployment} {what}: {state.message}")

    def _finish(self, phase: RolloutPhase, reason: str) -> RolloutResult:
        """The result carries the stable Deployment as recorded (for an emergency rollback)."""
        if self._not_restored is not None:
            reason = f"{reason}; {self._not_restored}"
        result = super()._finish(phase, reason)
        return result.model_copy(update={"stable": self._stable_record})

    # -- machinery ---------------------------------------------------------------------

    def _platform(self) -> KubernetesPlatformSpec:
        kubernetes = self._kubernetes()
        assert kubernetes is not None
        return kubernetes

    def _set_stable_input(
        self, template: dict[str, Any], strategy: dict[str, Any] | None, deadline: int | None
    ) -> SetStableInput:
        return SetStableInput(
            platform=self._platform(),
            template=template,
            strategy=strategy,
            progress_deadline_seconds=deadline,
            rollout=workflow.info().workflow_id,
            key=self._key("stable"),
            # Only onto the Deployment the template was recorded from: one deleted and
            # created again under its name is refused (KubernetesObjectReplaced).
            uid=self._stable.uid,
        )

    def _wait_timeout(self, deadline: int | None) -> timedelta:
        seconds = deadline or self._stable.progress_deadline_seconds
        return timedelta(seconds=seconds) + KUBERNETES_WAIT_SLACK

    async def _forward(
        self, activity: str, input: Any, summary: str, timeout: timedelta
    ) -> WorkloadState:
        """A change moving forward; its failure is a Stop naming the Deployment."""
        try:
            return await self._call(activity, input, WorkloadState, summary, timeout)
        except ActivityError as exc:
            if is_cancelled_exception(exc):
                raise
            raise Stop(RolloutPhase.ROLLED_BACK, f"{summary} failed: {root_cause(exc)}") from None

    async def _call(
        self,
        activity: str,
        input: Any,
        result: type[R],
        summary: str,
        timeout: timedelta,
        retry_policy: RetryPolicy = retry.KUBERNETES,
    ) -> R:
        value: R = await workflow.execute_activity(
            activity,
            input,
            result_type=result,
            start_to_close_timeout=timeout,
            heartbeat_timeout=KUBERNETES_HEARTBEAT,
            retry_policy=retry_policy,
            summary=summary,
            # A change in flight finishes (or fails) before the rollback's starts.
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        )
        return value
