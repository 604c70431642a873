"""Fields that activity log lines share: which attempt this is and how long it took."""

from __future__ import annotations

import time

from temporalio import activity


def attempt() -> int | None:
    """Temporal's attempt number (1 on the first try); None outside an activity."""
    return activity.info().attempt if activity.in_activity() else None


def ms_since(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.monotonic()`` reading), to 0.1 ms."""
    return round((time.monotonic() - started) * 1000, 1)
