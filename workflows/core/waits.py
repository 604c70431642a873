"""What a workflow waits for: a condition (for at most a while), another workflow to close,
a child to finish — or the workflow already running under the child's id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.temporal.activities import AwaitClosedInput
    from workflows.core import retry

R = TypeVar("R")


async def until(done: Callable[[], bool], timeout: timedelta | None, summary: str) -> bool:
    """Wait for ``done()``; False when ``timeout`` (its timer shown as ``summary`` in the UI)
    passed first. No timeout waits for as long as it takes."""
    try:
        await workflow.wait_condition(done, timeout=timeout, timeout_summary=summary)
    except TimeoutError:
        return False
    return True


@dataclass(frozen=True)
class Closed:
    """A workflow this one waited for, not its own child, and how it closed: ``COMPLETED``,
    ``FAILED``, ``CANCELED``, ``TERMINATED``, ``TIMED_OUT`` … (``NOT_FOUND`` if none ran)."""

    workflow_id: str
    status: str

    @property
    def completed(self) -> bool:
        return self.status.upper() == "COMPLETED"

    def said(self, what: str) -> str:
        """``a rollback already running (rollback-checkout-prod) closed: completed``."""
        return f"{what} already running ({self.workflow_id}) closed: {self.status.lower()}"


async def await_closed(workflow_id: str) -> str:
    """Wait until ``workflow_id`` closes (a workflow cannot await one it did not start:
    the ``await_closed`` activity polls Temporal); how it closed. Gives up, with an
    ``ActivityError``, after ``retry.AWAIT_CLOSED_DEADLINE``."""
    status: str = await workflow.execute_activity(
        "await_closed",
        AwaitClosedInput(workflow_id=workflow_id),
        result_type=str,
        start_to_close_timeout=timedelta(minutes=30),
        schedule_to_close_timeout=retry.AWAIT_CLOSED_DEADLINE,
        heartbeat_timeout=timedelta(seconds=30),
        retry_policy=retry.AWAIT_CLOSED,
        summary=f"wait for {workflow_id} to close",
    )
    return status


async def child_or_running(
    workflow_type: str, arg: Any, *, id: str, result_type: type[R], **options: Any
) -> R | Closed:
    """Run ``workflow_type`` as a child under ``id`` to its result. When a workflow already
    runs under that id (an operator's rollback, another incident's), wait for that one to
    close instead: ``Closed``. A child that fails raises ``ChildWorkflowError``."""
    try:
        result: R = await workflow.execute_child_workflow(
            workflow_type, arg, id=id, result_type=result_type, **options
        )
    except WorkflowAlreadyStartedError:
        return Closed(id, await await_closed(id))
    return result
