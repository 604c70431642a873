"""Rollout notices: what a rollout tells its Slack thread and webhooks, and how it reads.

The workflow builds a ``Notice`` (pure data, in workflow time); the worker renders it — the
Slack root line, a thread reply, a webhook's JSON body — adding the Temporal UI link, which
only the worker's configuration knows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from activities.model import Model
from activities.routing.base import Weights


class AnalysisNote(Model):
    name: str
    phase: str
    message: str = ""


class Notice(Model):
    """One event of a rollout run. ``trigger`` is None for a change only the Slack root
    line shows (the phase moved without an event anyone subscribes to)."""

    seq: int
    trigger: str | None
    at: datetime
    rollout_id: str
    run_id: str
    service: str
    environment: str
    version: str
    strategy: str
    phase: str
    message: str
    step: int | None = None
    """The step the notice is about (0-based): the one completed, or the current one."""
    step_count: int = 0
    step_text: str | None = None
    weights: Weights | None = None
    analysis: AnalysisNote | None = None
    by: str | None = None
    waiting_for: str | None = None
    """For a pause: who or what lets the run go on."""


PHASE_MARK = {
    "Progressing": ":arrow_forward:",
    "Paused": ":double_vertical_bar:",
    "RollingBack": ":rewind:",
    "Promoted": ":white_check_mark:",
    "RolledBack": ":x:",
    "Aborted": ":no_entry:",
    "Running": ":arrow_forward:",  # a pipeline's outcomes
    "Succeeded": ":white_check_mark:",
    "Failed": ":x:",
    "Rejected": ":no_entry:",
    "Superseded": ":fast_forward:",
}


def root_text(notice: Notice, ui_url: str | None) -> str:
    """The thread's root message, edited in place as the run moves on."""
    mark = PHASE_MARK.get(notice.phase, ":grey_question:")
    head = (
        f"{mark} *{notice.service}* {notice.version} → {notice.environment} "
        f"({notice.strategy}): *{notice.phase}*"
    )
    where = []
    if notice.step is not None and notice.step_count:
        where.append(f"step {notice.step + 1}/{notice.step_count}")
    if notice.weights is not None:
        where.append(f"stable {notice.weights.stable} % / canary {notice.weights.canary} %")
    link = f"<{ui_url}|{notice.rollout_id}>" if ui_url else f"`{notice.rollout_id}`"
    lines = [head, notice.message, " · ".join([*where, link])]
    return "\n".join(line for line in lines if line)


def reply_text(notice: Notice) -> str:
    """A reply in the run's thread for a triggered notice."""
    by = f" by {notice.by}" if notice.by else ""
    trigger = notice.trigger or ""
    if trigger == "on-step-completed" and notice.step is not None:
        text = f"step {notice.step + 1}/{notice.step_count} completed: {notice.step_text or ''}"
    elif notice.analysis is not None:
        a = notice.analysis
        text = f"analysis {a.name}: *{a.phase}*" + (f" — {a.message}" if a.message else "")
    elif trigger == "on-paused":
        text = f"paused: {notice.message}"
    elif trigger == "on-approved":
        text = notice.message
    elif trigger == "on-resumed":
        text = notice.message  # the verb's own words: "promoted by alice: looks good"
    elif trigger == "on-rollout-started":
        text = f"started: {notice.message}"
    else:
        text = f"{notice.phase}{by}: {notice.message}"
    waiting = f"\nwaiting for: {notice.waiting_for}" if notice.waiting_for else ""
    return f"{text.rstrip(': ')}{waiting}"


def webhook_body(notice: Notice, delivery: str, ui_url: str | None) -> dict[str, Any]:
    """The JSON a webhook receives (camelCase, like the spec)."""
    body = notice.model_dump(mode="json", exclude={"seq"})
    return {"delivery": delivery, **body, "url": ui_url}
