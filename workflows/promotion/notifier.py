"""A pipeline's own notifications: one thread per version moved through the stages.

Stage rollouts post their own threads (they inherit ``spec.notifications``); the pipeline's
thread says what only the pipeline knows: the version started, a gate waits for named
approvers (and how they approve), who approved, each stage done, and the end. The trigger
names are the rollouts' (a stage is a step; a gate is a pause; an approval is
``on-approved``; Succeeded is ``on-promoted``, Failed ``on-rolled-back``, Rejected and
Superseded ``on-aborted``).
"""

from __future__ import annotations

from collections.abc import Callable

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.notifications.sender import NoticeSender
    from workflows.notifications.spec import NotifierState, Trigger
    from workflows.promotion.models import PipelineOutcome, PipelineRequest, PipelineStatus

PIPELINE_NOTIFICATIONS = "pipeline-notifications"
"""Patch: a pipeline whose spec has ``notifications`` keeps its own thread."""

FINAL = {
    PipelineOutcome.SUCCEEDED: Trigger.PROMOTED,
    PipelineOutcome.FAILED: Trigger.ROLLED_BACK,
    PipelineOutcome.REJECTED: Trigger.ABORTED,
    PipelineOutcome.SUPERSEDED: Trigger.ABORTED,
}
STAGE_EVENTS = {
    "awaiting-approval": Trigger.PAUSED,
    "succeeded": Trigger.STEP_COMPLETED,
    "approved": Trigger.APPROVED,
    "rolling-out": None,  # the root line shows which stage rolls out
}


class PipelineNotifier:
    def __init__(self, request: PipelineRequest, record: Callable[[str, str], None]) -> None:
        self._request = request
        self._record = record
        self._sender: NoticeSender | None = None
        self._enabled: bool | None = None

    def _sending(self) -> NoticeSender | None:
        notifications = self._request.pipeline.spec.notifications
        if self._enabled is None:
            self._enabled = notifications is not None and workflow.patched(PIPELINE_NOTIFICATIONS)
        if not self._enabled or notifications is None:
            return None
        if self._sender is None:
            info = workflow.info()  # each version is a run of its own (continue-as-new)
            run_key = f"{info.workflow_id}/{info.run_id}"
            self._sender = NoticeSender(notifications, self._record, NotifierState(), run_key)
        return self._sender

    def on_event(self, kind: str, message: str, status: PipelineStatus) -> None:
        """A timeline event of the pipeline: the ones a trigger watches become notices."""
        sender = self._sending()
        if sender is None:
            return
        index = next(
            (
                i
                for i, s in enumerate(status.stages)
                if message.startswith((f"{s.environment}:", f"{s.environment} "))
            ),
            None,
        )
        if kind == "started":
            self._push(sender, Trigger.ROLLOUT_STARTED, status, message, 0, "Running")
        elif kind == "finished":
            final = FINAL.get(status.outcome)
            if final is not None:
                self._push(sender, final, status, message, index, status.outcome.value)
        elif kind in STAGE_EVENTS and index is not None:
            waiting = kind == "awaiting-approval"
            self._push(
                sender,
                STAGE_EVENTS[kind],
                status,
                message,
                index,
                "Paused" if waiting else "Running",
                self._who(status, index) if waiting else None,
            )

    async def drain(self) -> None:
        """Send what is queued before the run closes or continues as new."""
        if self._sender is not None:
            await self._sender.flush()

    def _push(
        self,
        sender: NoticeSender,
        trigger: Trigger | None,
        status: PipelineStatus,
        message: str,
        index: int | None,
        phase: str,
        waiting_for: str | None = None,
    ) -> None:
        stage = status.stages[index] if index is not None else None
        sender.push(
            trigger,
            service=status.service,
            environment=stage.environment if stage else "",
            version=status.version,
            strategy="pipeline",
            phase=phase,
            message=message,
            step=index,
            step_count=len(status.stages),
            step_text=f"{stage.environment}: {stage.state}" if stage else None,
            waiting_for=waiting_for,
        )

    def _who(self, status: PipelineStatus, index: int) -> str:
        stage = status.stages[index]
        name = self._request.pipeline.name
        return (
            f"approval by {', '.join(stage.approvers)}: `deployflow pipeline approve {name} "
            f"--as NAME --stage {stage.environment}` or POST /api/v1/pipelines/{name}/approve "
            "with the approver's own token"
        )
