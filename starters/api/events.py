"""Server-sent events: a run's progress for a UI or a bot to follow.

``GET /api/v1/rollouts/{service}/{environment}/events`` (and ``/pipelines/{name}/events``)
answers ``text/event-stream``:

- ``event: timeline`` — one per timeline entry (``{"at", "kind", "message"}``); its ``id``
  is the entry's position, so a client that reconnects with ``Last-Event-ID`` gets only
  what it missed;
- ``event: status`` — the run's status without the timeline, whenever it changes (phase,
  step, weights, analysis and its measurements, gates);
- ``event: end`` — the result (or ``{"outcome", "reason"}`` for a run that failed or was
  cancelled), after which the stream closes.

Comments (``: keep-alive``) every 15 s keep proxies from closing a quiet stream. The
server polls the workflow's ``status`` query, as ``rollout start --wait`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Final

from aiohttp import web
from pydantic import BaseModel
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError, WorkflowHandle
from temporalio.service import RPCError

from activities.errors import root_cause
from starters.api.routing import WORKER_ANSWER_TIMEOUT, Call, Route
from starters.api.tokens import Scope
from starters.http_errors import Refusal, describe
from workflows.promotion.models import PipelineResult, PipelineStatus
from workflows.rollouts.models import RolloutResult, RolloutStatus
from workflows.rollouts.spec import rollout_workflow_id

POLL_SECONDS: Final = 0.5
KEEP_ALIVE_SECONDS: Final = 15.0


def _first_id(call: Call) -> int:
    text = call.request.headers.get("Last-Event-ID", "").strip()
    if not text:
        return 0
    if not text.isdigit() or len(text) > 9:
        raise Refusal(400, f"Last-Event-ID: expected a number, got {text[:20]!r}")
    return int(text) + 1


async def stream(
    call: Call,
    handle: WorkflowHandle[Any, Any],
    status_type: type[RolloutStatus | PipelineStatus],
    result_type: type[RolloutResult | PipelineResult],
) -> web.StreamResponse:
    seen = _first_id(call)
    await handle.describe()  # a run that does not exist is a 404, before the stream opens
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # NGINX in front: do not buffer the stream
        }
    )
    await response.prepare(call.request)
    with contextlib.suppress(ConnectionResetError):
        try:
            await _follow(call, handle, status_type, result_type, response, seen)
        except (RPCError, TimeoutError, ConnectionError) as exc:
            # The headers are out: say what went wrong in the stream, then close it.
            await _send_text(response, "error", json.dumps({"error": describe(exc)}))
        await response.write_eof()
    return response


async def _follow(
    call: Call,
    handle: WorkflowHandle[Any, Any],
    status_type: type[RolloutStatus | PipelineStatus],
    result_type: type[RolloutResult | PipelineResult],
    response: web.StreamResponse,
    seen: int,
) -> None:
    last_status: str | None = None
    quiet = 0.0
    while not call.api.stopping.is_set():
        description = await handle.describe()
        if description.status != WorkflowExecutionStatus.RUNNING:
            await _end(response, handle, result_type, seen)
            break
        try:
            status = await handle.query(
                "status", result_type=status_type, rpc_timeout=WORKER_ANSWER_TIMEOUT
            )
        except RPCError:
            status = None  # no worker has it yet, or it is between tasks: try again
        if status is not None:
            seen = 0 if len(status.events) < seen else seen  # a new run (continued)
            for index, event in enumerate(status.events[seen:], start=seen):
                await _send(response, "timeline", event, index)
                quiet = 0.0
            seen = len(status.events)
            shown = status.model_dump_json(by_alias=True, exclude={"events"})
            if shown != last_status:
                await _send_text(response, "status", shown)
                last_status, quiet = shown, 0.0
        if quiet >= KEEP_ALIVE_SECONDS:
            await response.write(b": keep-alive\n\n")
            quiet = 0.0
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.api.stopping.wait(), POLL_SECONDS)
        quiet += POLL_SECONDS


async def _end(
    response: web.StreamResponse,
    handle: WorkflowHandle[Any, Any],
    result_type: type[RolloutResult | PipelineResult],
    seen: int,
) -> None:
    try:
        result: RolloutResult | PipelineResult = await handle.result()
    except WorkflowFailureError as exc:
        root = root_cause(exc)
        await _send_text(response, "end", json.dumps({"outcome": "Failed", "reason": root.located}))
        return
    for index, event in enumerate(result.events[seen:], start=seen):
        await _send(response, "timeline", event, index)
    await _send_text(response, "end", result.model_dump_json(by_alias=True))


async def _send(response: web.StreamResponse, kind: str, model: BaseModel, index: int) -> None:
    await _send_text(response, kind, model.model_dump_json(by_alias=True), index)


async def _send_text(
    response: web.StreamResponse, kind: str, data: str, index: int | None = None
) -> None:
    head = f"id: {index}\n" if index is not None else ""
    await response.write(f"{head}event: {kind}\ndata: {data}\n\n".encode())


async def follow_rollout(call: Call) -> web.StreamResponse:
    workflow_id = rollout_workflow_id(call.path("service"), call.path("environment"))
    client = await call.client()
    handle = client.get_workflow_handle(workflow_id, result_type=RolloutResult)
    return await stream(call, handle, RolloutStatus, RolloutResult)


async def follow_pipeline(call: Call) -> web.StreamResponse:
    client = await call.client()
    handle = client.get_workflow_handle(f"pipeline-{call.path('name')}", result_type=PipelineResult)
    return await stream(call, handle, PipelineStatus, PipelineResult)


ROUTES = [
    Route(
        "GET",
        "/rollouts/{service}/{environment}/events",
        follow_rollout,
        Scope.READ,
        "Follow a rollout: server-sent timeline, status and end events",
        None,
        stream=True,
        errors=(400, 404),
    ),
    Route(
        "GET",
        "/pipelines/{name}/events",
        follow_pipeline,
        Scope.READ,
        "Follow a pipeline: server-sent timeline, status and end events",
        None,
        stream=True,
        errors=(400, 404),
    ),
]
