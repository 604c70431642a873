"""Activities that talk to Temporal itself (a workflow cannot wait on another's end)."""

from __future__ import annotations

import asyncio

import structlog
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.model import Model

log = structlog.get_logger()
POLL_SECONDS = 0.5


class AwaitClosedInput(Model):
    workflow_id: str
    run_id: str | None = None


class WorkflowWatcher:
    """Holds the worker's client; ``await_closed`` is registered as a bound method."""

    def __init__(self, client: Client) -> None:
        self._client = client

    @activity.defn(name="await_closed")
    async def await_closed(self, input: AwaitClosedInput) -> str:
        """Wait until the workflow is closed; its status name (``NOT_FOUND`` if none)."""
        handle = self._client.get_workflow_handle(input.workflow_id, run_id=input.run_id)
        while True:
            try:
                description = await handle.describe()
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    return "NOT_FOUND"
                raise
            status = description.status
            if status is not None and status != WorkflowExecutionStatus.RUNNING:
                log.info("workflow closed", workflow_id=input.workflow_id, status=status.name)
                return status.name
            activity.heartbeat(status.name if status else None)
            await asyncio.sleep(POLL_SECONDS)
