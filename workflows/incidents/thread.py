"""Where an incident speaks: its timeline, its Slack thread (the first post opens it, every
later one replies in it), its PagerDuty pages, and the UI's current details."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.core import timeline
    from workflows.incidents import effects
    from workflows.incidents.models import IncidentInput, IncidentStatus
    from workflows.incidents.spec import EscalationLevel


class IncidentThread:
    """The incident's voice; ``IncidentRunbook`` holds one over its status."""

    def __init__(self, input: IncidentInput, status: IncidentStatus, ui_url: str | None) -> None:
        self._input = input
        self._status = status
        self.ui_url = ui_url

    def alert_count(self) -> int:
        """Alerts in the group as of the first notification (shown, plus left out)."""
        first = self._input.notification
        return len(first.alerts) + first.alerts_left_out

    async def pagers(self, action: str, levels: list[EscalationLevel]) -> None:
        for level in levels:
            try:
                await effects.page(
                    action, self._status.dedup_key, level.routing_key_env, level=level.name
                )
            except effects.EffectFailed as exc:
                self.event("page", f"{action} at {level.name} failed: {exc}")
            else:
                self.event("page", f"{action}d at {level.name}")

    async def notify(self, text: str, channel: str | None = None) -> None:
        """Post ``text``: the first post opens the thread, later ones reply in it."""
        slack = self._input.runbook.spec.slack
        token_env = slack.token_env if slack else "SLACK_BOT_TOKEN"
        root = self._status.slack
        if root is None:
            target = channel or (slack.channel if slack else None)
            assert target is not None  # runbook_problems requires a channel
            if self.alert_count() > 1:
                text = f"{text}\n{self.alert_count()} alerts in this group"
            if self._status.paged_levels:
                text = f"{text}\npaged: {', '.join(self._status.paged_levels)}"
            if self.ui_url:
                text = f"{text}\n<{self.ui_url}|incident {self._status.incident}>"
            self._status.slack = await effects.post(target, text, token_env)
            self.event("slack", f"posted to {target}")
            return
        await effects.post(root.channel, text, token_env, thread_ts=root.ts)

    async def tell(self, kind: str, message: str) -> None:
        """An event on the timeline, and a reply in the Slack thread once there is one."""
        self.event(kind, message)
        if self._status.slack is None:
            return
        try:
            await self.notify(message)
        except effects.EffectFailed as exc:
            self.event("slack", f"thread reply failed: {exc}")

    async def mark_resolved(self) -> None:
        """Edit the thread's first message to say the incident is resolved."""
        slack, root = self._input.runbook.spec.slack, self._status.slack
        if root is None or slack is None:
            return
        try:
            await effects.post(
                root.channel,
                f":white_check_mark: RESOLVED — {self._status.title}",
                slack.token_env,
                update_ts=root.ts,
            )
        except effects.EffectFailed as exc:
            self.event("slack", f"could not mark the message resolved: {exc}")

    def waiting(self, what: str) -> None:
        self._status.waiting_for = what
        phase = self._status.phase.value
        workflow.set_current_details(
            f"**{phase}** — {self._status.title}\n\nwaiting for {what}\n\n"
            f"paged: {', '.join(self._status.paged_levels) or 'nobody yet'}"
        )

    def event(self, kind: str, message: str) -> None:
        timeline.record(self._status.timeline, kind, message)


@dataclass
class RunbookPart:
    """What each part of an incident's runbook (``Escalation``, ``RunbookSteps``) works on:
    the incident, its thread, the runbook's template values; ``_closing()`` says the
    incident is resolving."""

    _input: IncidentInput
    _status: IncidentStatus
    _thread: IncidentThread
    _values: dict[str, str]
    _closing: Callable[[], bool]
