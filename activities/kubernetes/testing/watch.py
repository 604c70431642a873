"""Watch streams (``?watch=true``) as the API server sends them
(https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes).

Without ``resourceVersion`` (or with ``0``): ADDED for every matching object, then changes.
With one: the changes after it, or an ERROR event carrying a 410 ``Status`` when the
history no longer reaches back. An object that stops matching the selectors is DELETED for
this watch, one that starts matching ADDED. ``timeoutSeconds`` ends the stream;
``allowWatchBookmarks`` sends a BOOKMARK with the latest version before it ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from activities.kubernetes.testing import errors
from activities.kubernetes.testing.errors import ApiError
from activities.kubernetes.testing.resources import Kind
from activities.kubernetes.testing.selectors import Selector
from activities.kubernetes.testing.store import Event, Store

# The real server closes a watch after a random 30-60 min when no timeoutSeconds is given.
DEFAULT_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class WatchRequest:
    kind: Kind
    namespace: str | None  # None: every namespace
    selectors: list[Selector]
    params: dict[str, str]


async def stream(
    store: Store,
    request: WatchRequest,
    *,
    budget: int | None,
    closing: Callable[[], bool],
    on_idle: Callable[[], bool] | None,
) -> AsyncIterator[Any]:
    """The events of one watch. ``budget``: end after that many (a dropped connection);
    ``on_idle``: called when there is nothing to send, True if it changed something."""
    yield b""  # sends the headers now, as the real server does before any event
    loop = asyncio.get_running_loop()
    params = request.params
    deadline = loop.time() + float(params.get("timeoutSeconds") or DEFAULT_TIMEOUT_S)
    wake = asyncio.Event()

    def wake_up() -> None:
        loop.call_soon_threadsafe(wake.set)

    unsubscribe = store.subscribe(wake_up)
    try:
        since = params.get("resourceVersion") or "0"
        pending: list[dict[str, Any]] = []
        if since == "0":
            items, cursor = store.objects(request.kind, request.namespace, *request.selectors)
            pending = [{"type": "ADDED", "object": item} for item in items]
        elif since.isdigit():
            cursor = int(since)
        else:
            yield _error(errors.bad_request(f"invalid resourceVersion {since!r}"))
            return
        while not closing():
            wake.clear()
            try:
                new = store.events_after(cursor)
            except ApiError as exc:
                yield _error(exc)
                return
            if new:
                cursor = new[-1].resource_version
            pending += [e for e in (as_seen(ev, request) for ev in new) if e]
            for event in pending:
                if budget is not None:
                    if budget <= 0:
                        return
                    budget -= 1
                yield event
            pending = []
            if new or (on_idle is not None and on_idle()):
                continue
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                await asyncio.wait_for(wake.wait(), remaining)
            except TimeoutError:
                break
        if params.get("allowWatchBookmarks") in ("true", "1"):
            latest = str(max(cursor, store.resource_version))
            yield {
                "type": "BOOKMARK",
                "object": {
                    "apiVersion": request.kind.api_version,
                    "kind": request.kind.kind,
                    "metadata": {"resourceVersion": latest},
                },
            }
    finally:
        unsubscribe()


def as_seen(event: Event, request: WatchRequest) -> dict[str, Any] | None:
    """The event this watch sends for a change, if any."""
    if event.kind != request.kind or request.namespace not in (None, event.namespace):
        return None
    now = event.type != "DELETED" and all(s(event.obj) for s in request.selectors)
    before = event.old is not None and all(s(event.old) for s in request.selectors)
    if event.type == "DELETED":
        return {"type": "DELETED", "object": event.obj} if before else None
    if now:
        return {"type": "MODIFIED" if before else "ADDED", "object": event.obj}
    return {"type": "DELETED", "object": event.obj} if before else None


def _error(exc: ApiError) -> dict[str, Any]:
    return {"type": "ERROR", "object": exc.status()}
