"""The event timeline every deployflow workflow keeps in its ``status`` query."""

from __future__ import annotations

from temporalio import workflow

from workflows.rollout_models import TIMELINE_LIMIT, Event


def record(timeline: list[Event], kind: str, message: str) -> None:
    """Append an event (now, in workflow time), keep the newest ``TIMELINE_LIMIT``, log it.
    History keeps everything; the query only needs the recent past."""
    timeline.append(Event(at=workflow.now(), kind=kind, message=message))
    del timeline[:-TIMELINE_LIMIT]
    workflow.logger.info("%s: %s", kind, message)
