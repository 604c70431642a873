"""Heartbeats for short blocking activities, so a dead worker is noticed in seconds.

A sync activity blocked in a subprocess (``nginx -t``, a reload) cannot heartbeat itself.
``keep_alive()`` heartbeats from a helper thread while the block runs; the workflow then
sets a ``heartbeat_timeout`` of a few seconds instead of relying on a start-to-close
timeout of a minute: when the worker is SIGKILLed mid-activity, the server times the
attempt out after the heartbeat timeout and a replacement worker retries it.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from temporalio import activity

INTERVAL_S = 1.0
"""How often the helper heartbeats. The SDK sends at most one heartbeat per 0.8 times the
activity's heartbeat timeout, so any timeout of 2 s or more is kept alive."""


@contextmanager
def keep_alive(*details: Any, interval: float = INTERVAL_S) -> Iterator[None]:
    """Heartbeat (with ``details``, shown in the UI) every ``interval`` seconds until the
    block ends; a no-op outside activities. The block keeps running in the activity's
    thread, where Temporal raises a cancel."""
    if not activity.in_activity():
        yield
        return
    done = threading.Event()
    context = contextvars.copy_context()  # the activity context lives in a contextvar

    def beat() -> None:
        while not done.wait(interval):
            activity.heartbeat(*details)

    thread = threading.Thread(target=context.run, args=(beat,), name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
