"""How a rollout stops: run the steps until they finish or a stop is requested; then cancel
them (a weight change in flight finishes first), run the rollback path until it has
worked, and finish with the stop's phase. Nothing ends the run with traffic split."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.errors import root_cause
    from workflows.core.failures import FATAL
    from workflows.rollouts.models import RolloutPhase, RolloutResult
    from workflows.rollouts.state import ROLLBACK_ALWAYS, RolloutState, Stop

ROLLBACK_RETRY_DELAYS = (5, 15, 30, 60, 120, 300)
"""Seconds between attempts of a rollback that failed (then every 300 s until it works)."""

T = TypeVar("T")


class Stopping(RolloutState):
    """Running steps so that a stop, an error or a cancel always ends in the undo."""

    async def _guarded(
        self,
        work: Coroutine[Any, Any, None],
        undo: Callable[[str], Coroutine[Any, Any, None]],
        *also_cancel: Callable[[], asyncio.Task[Any] | None],
    ) -> RolloutResult | None:
        """Run ``work`` until it finishes (None) or a stop is requested; on a stop, on an
        unexpected error or on cancellation, cancel it (and ``also_cancel``), ``undo`` and
        finish with the stop's phase. Cancellation is re-raised after the undo so the run
        ends Cancelled; nothing ends the run before ``undo`` has finished."""
        task = asyncio.create_task(work)
        try:
            stop = await self._until_stopped(task)
            if stop is not None:
                raise stop
            return None
        except Stop as stop:
            return await self._stop_and_undo(stop, undo, task, also_cancel)
        except asyncio.CancelledError:
            await self._cancel_steps(task, also_cancel)
            await self._undo_until_done(undo, "the workflow was cancelled")
            self._finish(RolloutPhase.ROLLED_BACK, "the workflow was cancelled")
            raise
        except Exception as exc:
            if isinstance(exc, FATAL) or not workflow.patched(ROLLBACK_ALWAYS):
                raise
            unexpected = Stop(RolloutPhase.ROLLED_BACK, f"failed: {root_cause(exc)}")
            return await self._stop_and_undo(unexpected, undo, task, also_cancel)

    async def _stop_and_undo(
        self,
        stop: Stop,
        undo: Callable[[str], Coroutine[Any, Any, None]],
        task: asyncio.Task[None],
        also_cancel: tuple[Callable[[], asyncio.Task[Any] | None], ...],
    ) -> RolloutResult:
        self._event("stopping", stop.reason)
        await self._cancel_steps(task, also_cancel)
        await self._undo_until_done(undo, stop.reason)
        return self._finish(stop.phase, stop.reason)

    async def _cancel_steps(
        self,
        task: asyncio.Task[None],
        also_cancel: tuple[Callable[[], asyncio.Task[Any] | None], ...],
    ) -> None:
        self._cancelling_steps = True
        try:
            await self._cancel(task, *(get() for get in also_cancel))
        finally:
            self._cancelling_steps = False

    async def _uncancellable(self, activity: Coroutine[Any, Any, T]) -> T:
        """Await an activity that finishes even when cancelled (WAIT_CANCELLATION_COMPLETED:
        a weight change in flight completes before the rollback's). If it completed while the
        steps were being cancelled, its result swallowed the cancellation: raise it again, so
        no further step (a next weight, a next batch) starts after an abort."""
        result = await activity
        if self._cancelling_steps and workflow.patched(ROLLBACK_ALWAYS):
            raise asyncio.CancelledError
        return result

    async def _undo_until_done(
        self, undo: Callable[[str], Coroutine[Any, Any, None]], reason: str
    ) -> None:
        """Run the rollback path to its end: a failed attempt is shown in current details
        and retried after a growing delay, for as long as it takes (never "Failed" with
        traffic split)."""
        attempt = 0
        while True:
            try:
                await undo(reason)
                return
            except Exception as exc:
                if isinstance(exc, FATAL) or not workflow.patched(ROLLBACK_ALWAYS):
                    raise
                delay = ROLLBACK_RETRY_DELAYS[min(attempt, len(ROLLBACK_RETRY_DELAYS) - 1)]
                attempt += 1
                message = (
                    f"rollback attempt {attempt} failed: {root_cause(exc)}; retrying in {delay}s"
                )
                self._event("rollback", message)
                self._set_phase(RolloutPhase.ROLLING_BACK, message)
                await workflow.sleep(delay, summary=f"retry rollback ({attempt} failed)")

    async def _until_stopped(self, steps: asyncio.Task[None]) -> Stop | None:
        """Wait for the steps to finish, or for a stop request, whichever comes first."""
        stopped = asyncio.create_task(workflow.wait_condition(lambda: self._stop is not None))
        await workflow.wait([steps, stopped], return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if self._stop is not None:
            return self._stop
        steps.result()
        return None

    async def _interruptible(
        self, coro: Coroutine[Any, Any, T], interrupt: Callable[[], bool]
    ) -> T | None:
        """Run ``coro`` unless ``interrupt()`` becomes true first (then cancel it: ``None``)."""
        task = asyncio.create_task(coro)
        waiter = asyncio.create_task(workflow.wait_condition(interrupt))
        await workflow.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if task.done():
            return task.result()
        await self._cancel(task)
        return None

    async def _with_deadline(self, what: str, coro: Coroutine[Any, Any, None]) -> None:
        """Argo's progressDeadlineSeconds: ``what`` (never a pause) must finish in time."""
        deadline = self._rollout.spec.progress_deadline_seconds
        if deadline is None:
            await coro
            return
        task = asyncio.create_task(coro)
        try:
            await workflow.wait_condition(task.done, timeout=timedelta(seconds=deadline))
        except TimeoutError:
            await self._cancel(task)
            raise Stop(
                RolloutPhase.ROLLED_BACK, f"progress deadline of {deadline}s exceeded at {what}"
            ) from None
        task.result()

    async def _cancel(self, *tasks: asyncio.Task[Any] | None) -> None:
        """Cancel tasks and wait for them (an in-flight weight change finishes first).

        A task may end with an error instead: an activity cancelled before it started
        raises ``ActivityError`` (cancelled), or one failed just as it was cancelled. The
        caller is stopping anyway, so the error is recorded, never raised over the undo."""
        for task in tasks:
            if task is None or task.done():
                continue
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Stop):
                pass
            except Exception as exc:
                if isinstance(exc, FATAL) or not workflow.patched(ROLLBACK_ALWAYS):
                    raise
                if not is_cancelled_exception(exc):
                    self._event("stopping", f"while stopping: {root_cause(exc)}")
