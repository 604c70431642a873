"""What IncidentRunbook shares with the people and systems around it: the alert signals,
the on-call verbs (Updates with validators, and Signals of the same names), the ``status``
query, and the pager, Slack and timeline plumbing its steps use.

A verb that makes no sense now — acknowledging twice, approving with nothing pending,
escalating past the last level — is rejected by its validator and leaves no history; the
same verb as a signal is noted in the timeline and ignored.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.core import search_attributes as sa
    from workflows.core import timeline
    from workflows.core.verbs import OperatorInput, said_by, signal_accepted
    from workflows.incidents import effects
    from workflows.incidents.models import (
        AlertNotification,
        ApproveInput,
        IncidentInput,
        IncidentPhase,
        IncidentStatus,
    )
    from workflows.incidents.spec import ApproveStep, EscalationLevel


class IncidentBase:
    """State, verbs and plumbing; ``IncidentRunbook`` sets the state in its ``__init__``."""

    _input: IncidentInput
    _status: IncidentStatus
    _ui_url: str | None
    _human_resolve: OperatorInput | None
    _escalate_now: bool
    _approval: ApproveInput | None
    _awaiting: ApproveStep | None
    _closing: bool
    # Levels whose trigger PagerDuty accepted: acknowledge/resolve go to these. A level
    # acknowledged while its trigger is in flight is acknowledged right after it.
    _triggered: list[EscalationLevel]
    _run_notifications: int  # Alertmanager notifications this run (not since the start)

    def _remediation_moot(self) -> bool:
        """A restart or rollback is not run once the alert has resolved by itself."""
        return self._alert_resolved() and workflow.patched("incident-skip-moot-remediation")

    def _alert_count(self) -> int:
        """Alerts in the group as of the first notification (shown, plus left out)."""
        first = self._input.notification
        return len(first.alerts) + first.alerts_left_out

    def _alert_resolved(self) -> bool:
        return self._status.alert_status == "resolved"

    # -- signals, updates, query --------------------------------------------------------

    @workflow.signal(name="alert_firing", description="Alertmanager: the group still fires.")
    def alert_firing(self, notification: AlertNotification) -> None:
        self._status.notifications += 1
        self._run_notifications += 1
        if self._status.alert_status == "resolved":
            self._event("alert", "firing again")
        self._status.alert_status = "firing"

    @workflow.signal(name="alert_resolved", description="Alertmanager: the group resolved.")
    def alert_resolved(self, notification: AlertNotification) -> None:
        self._status.notifications += 1
        self._run_notifications += 1
        if self._status.alert_status != "resolved":
            self._event("alert", "resolved in Alertmanager")
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
        triggered = list(self._triggered)
        await self._tell("acknowledge", said_by("acknowledged", request.by, request.reason))
        await self._pagers("acknowledge", triggered)
        return f"acknowledged; escalation stopped (paged: {', '.join(status.paged_levels)})"

    @acknowledge.validator
    def _validate_acknowledge(self, request: OperatorInput) -> None:
        self._require_open("acknowledge")
        if self._status.acknowledged_at is not None:
            raise ValueError(f"already acknowledged by {self._status.acknowledged_by}")

    @workflow.update(name="resolve", description="Resolve the incident now (pages resolve too).")
    def resolve(self, request: OperatorInput) -> str:
        self._event("resolve", said_by("resolve requested", request.by, request.reason))
        self._human_resolve = request
        return "resolving: pages resolved, thread updated"

    @resolve.validator
    def _validate_resolve(self, request: OperatorInput) -> None:
        self._require_open("resolve")

    @workflow.update(name="escalate", description="Page the next escalation level now.")
    def escalate(self, request: OperatorInput) -> str:
        self._event("escalate", said_by("escalation requested", request.by, request.reason))
        self._escalate_now = True
        return "escalating to the next level"

    @escalate.validator
    def _validate_escalate(self, request: OperatorInput) -> None:
        self._require_open("escalate")
        if not self._status.paged_levels:
            raise ValueError("nothing paged yet: the runbook has not reached its page step")
        if self._status.acknowledged_at is not None:
            raise ValueError(f"acknowledged by {self._status.acknowledged_by}: not escalating")
        if self._escalate_now or len(self._status.paged_levels) >= len(self._levels()):
            raise ValueError("no further escalation level")

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
        if signal_accepted("acknowledge", self._validate_acknowledge, request, self._event):
            await IncidentBase.acknowledge(self, request)

    @workflow.signal(name="resolve", description="Signal form of the resolve update.")
    def resolve_signal(self, request: OperatorInput) -> None:
        if signal_accepted("resolve", self._validate_resolve, request, self._event):
            IncidentBase.resolve(self, request)

    @workflow.signal(name="escalate", description="Signal form of the escalate update.")
    def escalate_signal(self, request: OperatorInput) -> None:
        if signal_accepted("escalate", self._validate_escalate, request, self._event):
            IncidentBase.escalate(self, request)

    @workflow.signal(name="approve", description="Signal form of the approve update.")
    def approve_signal(self, request: ApproveInput) -> None:
        if signal_accepted("approve", self._validate_approve, request, self._event):
            IncidentBase.approve(self, request)

    @workflow.query(name="status", description="Phase, pages, timeline, time to ack/resolve.")
    def status(self) -> IncidentStatus:
        return self._status

    # -- machinery --------------------------------------------------------------------

    def _require_open(self, verb: str) -> None:
        if self._closing or self._human_resolve is not None:
            raise ValueError(f"cannot {verb}: the incident is resolving")

    def _levels(self) -> list[EscalationLevel]:
        return self._input.runbook.spec.escalation.levels

    async def _pagers(self, action: str, levels: list[EscalationLevel]) -> None:
        for level in levels:
            try:
                await effects.page(
                    action, self._status.dedup_key, level.routing_key_env, level=level.name
                )
            except effects.EffectFailed as exc:
                self._event("page", f"{action} at {level.name} failed: {exc}")
            else:
                self._event("page", f"{action}d at {level.name}")

    async def _notify(self, text: str, channel: str | None = None) -> None:
        """Post ``text``: the first post opens the thread, later ones reply in it."""
        slack = self._input.runbook.spec.slack
        token_env = slack.token_env if slack else "SLACK_BOT_TOKEN"
        root = self._status.slack
        if root is None:
            target = channel or (slack.channel if slack else None)
            assert target is not None  # runbook_problems requires a channel
            if self._alert_count() > 1:
                text = f"{text}\n{self._alert_count()} alerts in this group"
            if self._status.paged_levels:
                text = f"{text}\npaged: {', '.join(self._status.paged_levels)}"
            if self._ui_url:
                text = f"{text}\n<{self._ui_url}|incident {self._status.incident}>"
            self._status.slack = await effects.post(target, text, token_env)
            self._event("slack", f"posted to {target}")
            return
        await effects.post(root.channel, text, token_env, thread_ts=root.ts)

    async def _tell(self, kind: str, message: str) -> None:
        """An event on the timeline, and a reply in the Slack thread once there is one."""
        self._event(kind, message)
        if self._status.slack is None:
            return
        try:
            await self._notify(message)
        except effects.EffectFailed as exc:
            self._event("slack", f"thread reply failed: {exc}")

    async def _until(
        self, done: Callable[[], bool], timeout: timedelta | None, summary: str
    ) -> bool:
        """Wait for ``done()``; False when ``timeout`` (its timer shown as ``summary``)
        passed first."""
        try:
            await workflow.wait_condition(done, timeout=timeout, timeout_summary=summary)
        except TimeoutError:
            return False
        return True

    def _waiting(self, what: str) -> None:
        self._status.waiting_for = what
        phase = self._status.phase.value
        workflow.set_current_details(
            f"**{phase}** — {self._status.title}\n\nwaiting for {what}\n\n"
            f"paged: {', '.join(self._status.paged_levels) or 'nobody yet'}"
        )

    def _event(self, kind: str, message: str) -> None:
        timeline.record(self._status.timeline, kind, message)
