"""What IncidentRunbook shares with Alertmanager and the people on call: the
``alert_firing`` / ``alert_resolved`` signals the intake sends, the operator verbs
``acknowledge``, ``resolve``, ``escalate`` and ``approve`` (Updates with validators, and
Signals of the same names: a verb that does not apply now is refused and leaves no history,
or as a signal is noted and ignored), and the ``status`` query.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.core import search_attributes as sa
    from workflows.core.verbs import OperatorInput, operator_said, signal_accepted
    from workflows.incidents.escalation import Escalation
    from workflows.incidents.models import (
        AlertNotification,
        ApproveInput,
        IncidentPhase,
        IncidentStatus,
    )
    from workflows.incidents.spec import ApproveStep
    from workflows.incidents.thread import IncidentThread


class IncidentVerbs:
    """Handlers and the state they touch; ``IncidentRunbook`` sets it in ``__init__``."""

    _status: IncidentStatus
    _thread: IncidentThread
    _escalation: Escalation
    _human_resolve: OperatorInput | None  # a resolve requested by an operator
    _approval: ApproveInput | None  # the decision on the step being approved
    _awaiting: ApproveStep | None  # the approve step waiting for a decision
    _closing: bool
    _run_notifications: int  # Alertmanager notifications this run (not since the start)

    @workflow.signal(name="alert_firing", description="Alertmanager: the group still fires.")
    def alert_firing(self, notification: AlertNotification) -> None:
        self._status.notifications += 1
        self._run_notifications += 1
        if self._status.alert_status == "resolved":
            self._thread.event("alert", "firing again")
        self._status.alert_status = "firing"

    @workflow.signal(name="alert_resolved", description="Alertmanager: the group resolved.")
    def alert_resolved(self, notification: AlertNotification) -> None:
        self._status.notifications += 1
        self._run_notifications += 1
        if self._status.alert_status != "resolved":
            self._thread.event("alert", "resolved in Alertmanager")
        self._status.alert_status = "resolved"

    @workflow.update(name="acknowledge", description="I am on it: stop escalating.")
    async def acknowledge(self, request: OperatorInput) -> str:
        status = self._status
        status.acknowledged_at = workflow.now()
        status.acknowledged_by = request.by or "an operator"
        status.time_to_acknowledge_seconds = (
            status.acknowledged_at - status.opened_at
        ).total_seconds()
        status.phase = IncidentPhase.ACKNOWLEDGED
        workflow.upsert_search_attributes([sa.DEPLOY_PHASE.value_set(status.phase.value)])
        triggered = self._escalation.triggered()
        await self._thread.tell("acknowledge", operator_said("acknowledged", request))
        await self._thread.pagers("acknowledge", triggered)
        return f"acknowledged; escalation stopped (paged: {', '.join(status.paged_levels)})"

    @acknowledge.validator
    def _validate_acknowledge(self, request: OperatorInput) -> None:
        self._require_open("acknowledge")
        if self._status.acknowledged_at is not None:
            raise ValueError(f"already acknowledged by {self._status.acknowledged_by}")

    @workflow.update(name="resolve", description="Resolve the incident now (pages resolve too).")
    def resolve(self, request: OperatorInput) -> str:
        self._thread.event("resolve", operator_said("resolve requested", request))
        self._human_resolve = request
        return "resolving: pages resolved, thread updated"

    @resolve.validator
    def _validate_resolve(self, request: OperatorInput) -> None:
        self._require_open("resolve")

    @workflow.update(name="escalate", description="Page the next escalation level now.")
    def escalate(self, request: OperatorInput) -> str:
        self._thread.event("escalate", operator_said("escalation requested", request))
        self._escalation.escalate()
        return "escalating to the next level"

    @escalate.validator
    def _validate_escalate(self, request: OperatorInput) -> None:
        self._require_open("escalate")
        self._escalation.check_escalate()

    @workflow.update(name="approve", description="Decide the pending approval step.")
    def approve(self, request: ApproveInput) -> str:
        self._approval = request
        return "approved: the next step runs" if request.approved else "rejected: step skipped"

    @approve.validator
    def _validate_approve(self, request: ApproveInput) -> None:
        self._require_open("approve")
        if self._awaiting is None:
            raise ValueError("nothing is waiting for approval")
        allowed = self._awaiting.approvers
        if allowed and request.by not in allowed:
            raise ValueError(f"by: must be one of {', '.join(allowed)}")

    @workflow.signal(name="acknowledge", description="Signal form of the acknowledge update.")
    async def acknowledge_signal(self, request: OperatorInput) -> None:
        if signal_accepted("acknowledge", self._validate_acknowledge, request, self._thread.event):
            await IncidentVerbs.acknowledge(self, request)

    @workflow.signal(name="resolve", description="Signal form of the resolve update.")
    def resolve_signal(self, request: OperatorInput) -> None:
        if signal_accepted("resolve", self._validate_resolve, request, self._thread.event):
            IncidentVerbs.resolve(self, request)

    @workflow.signal(name="escalate", description="Signal form of the escalate update.")
    def escalate_signal(self, request: OperatorInput) -> None:
        if signal_accepted("escalate", self._validate_escalate, request, self._thread.event):
            IncidentVerbs.escalate(self, request)

    @workflow.signal(name="approve", description="Signal form of the approve update.")
    def approve_signal(self, request: ApproveInput) -> None:
        if signal_accepted("approve", self._validate_approve, request, self._thread.event):
            IncidentVerbs.approve(self, request)

    @workflow.query(name="status", description="Phase, pages, timeline, time to ack/resolve.")
    def status(self) -> IncidentStatus:
        return self._status

    def _require_open(self, verb: str) -> None:
        if self._closing or self._human_resolve is not None:
            raise ValueError(f"cannot {verb}: the incident is resolving")
