"""What a workflow waits for: a condition, for at most a while."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow


async def until(done: Callable[[], bool], timeout: timedelta | None, summary: str) -> bool:
    """Wait for ``done()``; False when ``timeout`` (its timer shown as ``summary`` in the UI)
    passed first. No timeout waits for as long as it takes."""
    try:
        await workflow.wait_condition(done, timeout=timeout, timeout_summary=summary)
    except TimeoutError:
        return False
    return True
