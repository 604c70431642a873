"""The event timeline every deployflow workflow keeps in its ``status`` query."""

from __future__ import annotations

from datetime import datetime

from temporalio import workflow

from activities.model import Model

TIMELINE_LIMIT = 500
"""Events kept in ``status``; the workflow history keeps everything."""


class Event(Model):
    at: datetime
    kind: str
    message: str


def record(timeline: list[Event], kind: str, message: str) -> None:
    """Append an event (now, in workflow time), keep the newest ``TIMELINE_LIMIT``, log it.
    History keeps everything; the query only needs the recent past."""
    timeline.append(Event(at=workflow.now(), kind=kind, message=message))
    del timeline[:-TIMELINE_LIMIT]
    workflow.logger.info("%s: %s", kind, message)
