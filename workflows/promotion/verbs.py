"""What PromotionPipeline shares with the people around it: the ``approve`` / ``reject``
gate verbs (Updates with validators, and Signals of the same names: an approval that does
not apply now is refused and leaves no history, or as a signal is noted and ignored),
``submit`` (an Update that answers what became of the version, and a Signal), and the
``status`` query.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.core import timeline
    from workflows.core.verbs import signal_accepted
    from workflows.promotion.models import (
        ApprovalInput,
        ApprovalRecord,
        Decision,
        PipelineRequest,
        PipelineStatus,
        Submission,
    )
    from workflows.promotion.notifier import PipelineNotifier

# Submissions that arrived as the run was ending (or while it wound down after being
# superseded) were dropped; since this patch they run next.
DRAIN_SUBMITS = "pipeline-drain-submits"


class PipelineVerbs:
    """Handlers and the state they touch; ``PromotionPipeline`` sets it in ``__init__``."""

    _request: PipelineRequest
    _status: PipelineStatus
    _open_gate: int | None  # the stage whose approval gate is open
    _superseded_by: str | None  # supersede policy: the version that runs next
    _notifier: PipelineNotifier

    @workflow.update(name="approve", description="Approve the open gate: {approver, comment}.")
    def approve(self, request: ApprovalInput) -> str:
        return self._record(request, "approved")

    @approve.validator
    def _validate_approve(self, request: ApprovalInput) -> None:
        self._check_approver(request)

    @workflow.update(name="reject", description="Reject the open gate; the pipeline stops.")
    def reject(self, request: ApprovalInput) -> str:
        return self._record(request, "rejected")

    @reject.validator
    def _validate_reject(self, request: ApprovalInput) -> None:
        self._check_approver(request)

    @workflow.signal(name="approve", description="Signal form of the approve update.")
    def approve_signal(self, request: ApprovalInput) -> None:
        self._signal(request, "approved")

    @workflow.signal(name="reject", description="Signal form of the reject update.")
    def reject_signal(self, request: ApprovalInput) -> None:
        self._signal(request, "rejected")

    @workflow.update(name="submit", description="A newer version: supersedes or queues.")
    def submit(self, submission: Submission) -> str:
        return self._submit(submission)

    @workflow.signal(name="submit", description="Signal form of the submit update.")
    def submit_signal(self, submission: Submission) -> None:
        self._submit(submission)

    def _submit(self, submission: Submission) -> str:
        """Take ``submission``: what becomes of it, in words (the update's answer)."""
        version, running = submission.version, self._status.version
        by = f" (by {submission.by})" if submission.by else ""
        if version == running and self._superseded_by is None:
            return f"{version} runs in this pipeline"  # its start, or the same version again
        if version in self._status.queued:
            return f"{version} is already queued behind {running}"
        if version == self._superseded_by:
            return f"{version} already supersedes {running}"
        if self._request.pipeline.spec.policy == "queue":
            self._status.queued.append(version)
            position = len(self._status.queued)
            self._event("queued", f"{version} queued behind {running}{by}")
            return f"{version} queued behind {running} (position {position})"
        if self._superseded_by is None:
            self._superseded_by = self._status.superseded_by = version
            self._event("superseded", f"{version} supersedes {running}{by}")
            return f"{version} supersedes {running}: its current stage is cancelled"
        if not workflow.patched(DRAIN_SUBMITS):
            return f"{version} ignored"  # what this run did before the patch
        dropped, self._superseded_by = self._superseded_by, version
        self._status.superseded_by = version
        self._event("dropped", f"{dropped} will not run: {version} superseded it before it started")
        self._event("superseded", f"{version} supersedes {dropped}{by}")
        return f"{version} supersedes {dropped}, which had not started"

    @workflow.query(name="status", description="Stages, gates, approvals, queue and timeline.")
    def status(self) -> PipelineStatus:
        return self._status

    def _check_approver(self, request: ApprovalInput) -> None:
        if self._open_gate is None:
            raise ValueError("no approval gate is open")
        status = self._status.stages[self._open_gate]
        if request.stage not in (None, status.environment):
            raise ValueError(f"the open gate is {status.environment}, not {request.stage}")
        if request.approver not in status.approvers:
            raise ValueError(
                f"{request.approver} may not approve {status.environment} "
                f"(approvers: {', '.join(status.approvers)})"
            )
        if any(a.approver == request.approver for a in status.approvals):
            raise ValueError(f"{request.approver} already decided on {status.environment}")

    def _record(self, request: ApprovalInput, decision: Decision) -> str:
        assert self._open_gate is not None  # the validator checked
        status = self._status.stages[self._open_gate]
        status.approvals.append(
            ApprovalRecord(
                approver=request.approver,
                decision=decision,
                comment=request.comment,
                at=workflow.now(),
            )
        )
        note = f": {request.comment}" if request.comment else ""
        self._event(decision, f"{status.environment} {decision} by {request.approver}{note}")
        return f"{status.environment} {decision} by {request.approver}"

    def _signal(self, request: ApprovalInput, decision: Decision) -> None:
        if signal_accepted(decision[:-1], self._check_approver, request, self._event):
            self._record(request, decision)

    def _event(self, kind: str, message: str) -> None:
        self._note(kind, message)
        self._notifier.on_event(kind, message, self._status)

    def _note(self, kind: str, message: str) -> None:
        timeline.record(self._status.events, kind, message)
