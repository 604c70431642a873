"""Who an incident pages: the first escalation level from the ``page`` step, the next one
whenever the current one does not acknowledge within its ``ackTimeout`` (or at once on
``escalate``); ``acknowledge`` and the resolution go to every level PagerDuty accepted."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.notify.models import Link
    from workflows.core.durations import format_duration, parse_duration
    from workflows.core.waits import until
    from workflows.incidents import effects
    from workflows.incidents.spec import EscalationLevel, PageStep, render
    from workflows.incidents.thread import RunbookPart

PAGER_SEVERITIES = {"critical", "error", "warning", "info"}


@dataclass
class Escalation(RunbookPart):
    """The incident's pages; ``IncidentRunbook`` holds one and asks it to page, escalate,
    acknowledge and resolve."""

    task: asyncio.Task[None] | None = field(default=None, init=False)
    _now: bool = field(default=False, init=False)  # ``escalate`` asked for the next level
    # Levels whose trigger PagerDuty accepted (carried over a continue-as-new): acknowledge
    # and resolve go to these. A level acknowledged while its trigger is in flight is
    # acknowledged right after it.
    _triggered: list[EscalationLevel] = field(init=False)

    def __post_init__(self) -> None:
        done = set(self._status.triggered_levels)
        self._triggered = [lv for lv in self.levels if lv.name in done]

    @property
    def levels(self) -> list[EscalationLevel]:
        return self._input.runbook.spec.escalation.levels

    def triggered(self) -> list[EscalationLevel]:
        """The levels paged so far (a copy: later pages are not in it)."""
        return list(self._triggered)

    def busy(self) -> bool:
        """Whether levels are still being escalated through."""
        return self.task is not None and not self.task.done()

    def check_escalate(self) -> None:
        """Why ``escalate`` cannot page a next level now (a ``ValueError``), if it cannot."""
        if not self._status.paged_levels:
            raise ValueError("nothing paged yet: the runbook has not reached its page step")
        if self._status.acknowledged_at is not None:
            raise ValueError(f"acknowledged by {self._status.acknowledged_by}: not escalating")
        if self._now or len(self._status.paged_levels) >= len(self.levels):
            raise ValueError("no further escalation level")

    def escalate(self) -> None:
        self._now = True

    async def page_step(self, step: PageStep) -> None:
        """Page the first level, then escalate in the background."""
        if self._status.paged_levels:
            self._thread.event("page", "already paged")
            return
        levels = self.levels
        await self._page(levels[0], step)
        if len(levels) > 1:
            self.task = asyncio.create_task(self._escalate(levels, step))

    async def resolve(self) -> None:
        await self._thread.pagers("resolve", self._triggered)

    async def _escalate(self, levels: list[EscalationLevel], step: PageStep) -> None:
        """Page the next level whenever the current one is not acknowledged in time."""
        for current, following in itertools.pairwise(levels):
            assert current.ack_timeout is not None  # the spec requires it on all but the last
            timeout = parse_duration(current.ack_timeout)
            summary = f"wait {format_duration(timeout)} for {current.name} to ack"
            if not await until(self._over, timeout, summary):
                self._thread.event(
                    "escalate", f"{current.name} did not acknowledge within {timeout}"
                )
            if self._status.acknowledged_at is not None or self._closing():
                return
            self._now = False
            await self._page(following, step)

    def _over(self) -> bool:
        acked = self._status.acknowledged_at is not None
        return acked or self._closing() or self._now

    async def _page(self, level: EscalationLevel, step: PageStep) -> None:
        self._status.paged_levels.append(level.name)
        self._status.level = level.name
        severity = step.severity or self._values["severity"]
        summary = render(step.summary or "{{alertname}} on {{service}}: {{summary}}", self._values)
        links = []
        if self._thread.ui_url:
            links.append(Link(href=self._thread.ui_url, text="deployflow incident"))
        generator = next(iter(self._input.notification.alerts), None)
        if generator is not None and generator.generator_url:
            links.append(Link(href=generator.generator_url, text="alert source"))
        try:
            await effects.page(
                "trigger",
                self._status.dedup_key,
                level.routing_key_env,
                level=level.name,
                summary=summary.strip(" :") or self._status.title,
                severity=severity if severity in PAGER_SEVERITIES else "critical",
                source=self._values["service"] or "deployflow",
                details={
                    "incident": self._status.incident,
                    "runbook": self._status.runbook,
                    "level": level.name,
                    "labels": self._input.notification.labels,
                    "alerts": self._thread.alert_count(),
                    "annotations": self._input.notification.common_annotations,
                },
                links=links,
            )
        except effects.EffectFailed as exc:
            await self._thread.tell("page", f"paging {level.name} failed: {exc}")
            return
        # No await between these two lines: `acknowledge` snapshots `triggered()` when it
        # sets acknowledged_at, so exactly one of them acknowledges this level.
        acknowledged_meanwhile = self._status.acknowledged_at is not None
        self._triggered.append(level)
        self._status.triggered_levels.append(level.name)
        await self._thread.tell("page", f"paged {level.name}")
        if acknowledged_meanwhile:
            await self._thread.pagers("acknowledge", [level])
