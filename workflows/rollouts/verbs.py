"""A rollout's operator verbs: ``promote``, ``promote_full``, ``pause``, ``resume``, ``abort``
(Updates with validators, and Signals of the same names: see ``workflows/core/verbs.py``),
and the ``status`` query."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.core.verbs import OperatorInput, operator_said, signal_accepted
    from workflows.rollouts.models import RolloutPhase, RolloutStatus
    from workflows.rollouts.state import RolloutState, Stop


class RolloutVerbs(RolloutState):
    """The handlers; what they change is read by the steps (``base.RolloutBase``)."""

    @workflow.update(name="promote", description="Finish the current pause (or hold) and go on.")
    def promote(self, request: OperatorInput) -> str:
        self._event("promote", operator_said("promoted", request))
        self._skip_pause = True
        self._status.paused_reason = None
        return "promoted: moving to the next step"

    @promote.validator
    def _validate_promote(self, request: OperatorInput) -> None:
        self._require_running("promote")
        if not self._in_pause_step and self._status.paused_reason is None:
            raise ValueError(
                f"nothing to promote: step {self._status.current_step} ({self._status.step}) "
                "is not a pause and the rollout is not paused"
            )

    @workflow.update(name="promote_full", description="Skip all remaining steps; go to 100 %.")
    def promote_full(self, request: OperatorInput) -> str:
        self._event("promote_full", operator_said("full promotion requested", request))
        self._full = True
        self._status.paused_reason = None
        return "promoting fully: remaining steps and analysis are skipped"

    @promote_full.validator
    def _validate_promote_full(self, request: OperatorInput) -> None:
        self._require_running("promote_full")
        if self._full:
            raise ValueError("promote_full was already requested")

    @workflow.update(name="pause", description="Hold before the next step until resumed.")
    def pause(self, request: OperatorInput) -> str:
        self._status.paused_reason = operator_said("paused by operator", request)
        self._event("pause", self._status.paused_reason)
        self._set_phase(RolloutPhase.PAUSED, self._status.paused_reason + "; resume to continue")
        return "paused: no further step starts until resume"

    @pause.validator
    def _validate_pause(self, request: OperatorInput) -> None:
        self._require_running("pause")
        if self._status.paused_reason is not None:
            raise ValueError(f"already paused: {self._status.paused_reason}")

    @workflow.update(name="resume", description="Continue a rollout held by pause or analysis.")
    def resume(self, request: OperatorInput) -> str:
        self._event("resume", operator_said("resumed", request))
        self._status.paused_reason = None
        if self._in_pause_step:
            self._set_phase(RolloutPhase.PAUSED, self._pause_step_message)
        else:
            self._set_phase(RolloutPhase.PROGRESSING, "resumed")
        return "resumed"

    @resume.validator
    def _validate_resume(self, request: OperatorInput) -> None:
        self._require_running("resume")
        if self._status.paused_reason is None:
            raise ValueError("not paused: nothing to resume")

    @workflow.update(name="abort", description="Stop and send all traffic back to stable.")
    def abort(self, request: OperatorInput) -> str:
        reason = operator_said("aborted", request)
        self._event("abort", reason)
        self._request_stop(Stop(RolloutPhase.ABORTED, reason))
        return "aborting: traffic goes back to stable"

    @abort.validator
    def _validate_abort(self, request: OperatorInput) -> None:
        self._require_running("abort")

    @workflow.signal(name="promote", description="Signal form of the promote update.")
    def promote_signal(self, request: OperatorInput) -> None:
        if signal_accepted("promote", self._validate_promote, request, self._event):
            RolloutVerbs.promote(self, request)

    @workflow.signal(name="promote_full", description="Signal form of the promote_full update.")
    def promote_full_signal(self, request: OperatorInput) -> None:
        if signal_accepted("promote_full", self._validate_promote_full, request, self._event):
            RolloutVerbs.promote_full(self, request)

    @workflow.signal(name="pause", description="Signal form of the pause update.")
    def pause_signal(self, request: OperatorInput) -> None:
        if signal_accepted("pause", self._validate_pause, request, self._event):
            RolloutVerbs.pause(self, request)

    @workflow.signal(name="resume", description="Signal form of the resume update.")
    def resume_signal(self, request: OperatorInput) -> None:
        if signal_accepted("resume", self._validate_resume, request, self._event):
            RolloutVerbs.resume(self, request)

    @workflow.signal(name="abort", description="Signal form of the abort update.")
    def abort_signal(self, request: OperatorInput) -> None:
        if signal_accepted("abort", self._validate_abort, request, self._event):
            RolloutVerbs.abort(self, request)

    @workflow.query(name="status", description="Phase, step, weights, analysis and timeline.")
    def status(self) -> RolloutStatus:
        return self._status
