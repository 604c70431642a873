"""The gates in front of a stage's rollout, and how a stage tells where it is.

A stage waits for its deployment window (and out of freezes), then for the version to have
soaked upstream for ``requiredSoakTime``, then for ``minApprovals`` named approvers: a
reminder after ``reminderAfter``, and after ``timeout`` either the ``escalateTo`` approvers
join (for one more ``timeout``) or the stage fails. One rejection stops the pipeline.
A gate that stops the pipeline raises ``Halt``, which ``PromotionPipeline`` turns into
its result.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.core.durations import parse_duration
    from workflows.core.waits import until
    from workflows.core.windows import next_opening
    from workflows.promotion.models import PipelineOutcome, StageState
    from workflows.promotion.spec import Approval, Stage
    from workflows.promotion.verbs import PipelineVerbs


class Halt(Exception):
    """This run of the pipeline stops here, with ``outcome``."""

    def __init__(self, outcome: PipelineOutcome, reason: str) -> None:
        super().__init__(reason)
        self.outcome = outcome
        self.reason = reason


class PipelineGates(PipelineVerbs):
    """The gates and a stage's state; ``PromotionPipeline`` runs them in order."""

    async def _window(self, index: int, stage: Stage) -> None:
        if stage.window is None:
            return
        allowed, freezes = stage.window.as_rules()
        opening = next_opening(workflow.now(), allowed, freezes)
        if opening is None:
            self._fail(index, "failed", "its deployment window never opens")
        assert opening is not None
        if opening > workflow.now():
            self._status.stages[index].waiting_until = opening
            self._stage(
                index, "waiting-window", f"outside its window until {opening:%Y-%m-%d %H:%M} UTC"
            )
            await workflow.sleep(
                opening - workflow.now(), summary=f"wait for the {stage.environment} window"
            )

    async def _soak(self, index: int, stage: Stage) -> None:
        if stage.required_soak_time is None or index == 0:
            return
        upstream = self._status.stages[index - 1]
        assert upstream.live_since is not None  # the upstream stage succeeded to get here
        ready = upstream.live_since + parse_duration(stage.required_soak_time)
        if ready > workflow.now():
            self._status.stages[index].waiting_until = ready
            self._stage(
                index,
                "soaking",
                f"soaking in {upstream.environment} for {stage.required_soak_time} "
                f"(until {ready:%H:%M:%S} UTC)",
            )
            await workflow.sleep(
                ready - workflow.now(),
                summary=f"soak {stage.required_soak_time} in {upstream.environment}",
            )

    async def _approval(self, index: int, approval: Approval) -> None:
        status = self._status.stages[index]
        status.approvers = list(approval.approvers)
        self._open_gate = index
        self._stage(index, "awaiting-approval", f"waiting for {self._needed(index)}")
        try:
            if approval.reminder_after and not await self._await_decision(
                index, approval.reminder_after, "remind"
            ):
                self._event(
                    "reminder", f"{status.environment}: still waiting for {self._needed(index)}"
                )
            if approval.timeout and not await self._await_decision(
                index, approval.timeout, "approval timeout", elapsed=approval.reminder_after
            ):
                if not approval.escalate_to:
                    self._fail(index, "failed", f"no approval within {approval.timeout}")
                status.approvers = sorted({*approval.approvers, *approval.escalate_to})
                to = ", ".join(approval.escalate_to)
                self._event("escalated", f"{status.environment}: approval escalated to {to}")
                if not await self._await_decision(
                    index, approval.timeout, "escalated approval timeout"
                ):
                    self._fail(
                        index, "failed", f"no approval within {approval.timeout} after escalation"
                    )
            await workflow.wait_condition(lambda: self._decided(index))
        finally:
            self._open_gate = None
        if any(a.decision == "rejected" for a in status.approvals):
            rejected = next(a for a in status.approvals if a.decision == "rejected")
            reason = f"rejected by {rejected.approver}" + (
                f": {rejected.comment}" if rejected.comment else ""
            )
            self._stage(index, "rejected", reason)
            raise Halt(PipelineOutcome.REJECTED, f"{status.environment} {reason}")

    async def _await_decision(
        self, index: int, duration: str, what: str, elapsed: str | None = None
    ) -> bool:
        """Wait up to ``duration`` (minus ``elapsed``) for the gate to be decided; the timer
        reads ``what`` and the duration in the UI."""
        left = parse_duration(duration) - (parse_duration(elapsed) if elapsed else timedelta(0))
        environment = self._status.stages[index].environment
        return await until(
            lambda: self._decided(index),
            max(left, timedelta(0)),
            f"{environment}: {what} after {duration}",
        )

    def _decided(self, index: int) -> bool:
        approval = self._request.pipeline.spec.stages[index].approval
        assert approval is not None
        decisions = self._status.stages[index].approvals
        approved = sum(a.decision == "approved" for a in decisions)
        return approved >= approval.min_approvals or any(
            a.decision == "rejected" for a in decisions
        )

    def _needed(self, index: int) -> str:
        approval = self._request.pipeline.spec.stages[index].approval
        assert approval is not None
        approvers = self._status.stages[index].approvers
        return f"{approval.min_approvals} approval(s) from {', '.join(approvers)}"

    def _fail(self, index: int, state: StageState, reason: str) -> None:
        environment = self._status.stages[index].environment
        self._stage(index, state, reason)
        raise Halt(PipelineOutcome.FAILED, f"{environment}: {reason}")

    def _stage(self, index: int, state: StageState, message: str) -> None:
        status = self._status.stages[index]
        if state not in ("waiting-window", "soaking"):
            status.waiting_until = None
        status.state = state
        if state in ("succeeded", "failed", "rejected", "cancelled"):
            status.reason = message
        self._event(state, f"{status.environment}: {message}")
        self._status.message = f"{status.environment}: {message}"
        workflow.set_current_details(
            f"**{self._status.version}** — {status.environment}: {message}\n\n"
            + " → ".join(f"{s.environment} ({s.state})" for s in self._status.stages)
        )
