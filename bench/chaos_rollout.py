"""One rollout of bench/chaos.py: start it on its lane, hurt it as planned, judge the result
(chaos_judge.py).

While it runs: the lane's worker is SIGKILLed (and a replacement started at once) after
the planned number of workflow tasks; an ``abort`` update is sent part-way or just as a
pause timer fires; errors are injected into the new version; Prometheus is stopped; the
router's config is broken or HAProxy's socket taken away. A thread samples the router (or
every host) the whole time. Afterwards the history, the samples and the router's end state
decide whether the rollout was correct.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from chaos_history import (
    History,
    at,
    completed,
    decode,
    pause_timers,
    progress_by,
    router_calls_after,
    scheduled,
    share,
    workflow_tasks,
)
from chaos_judge import ABORTS, Kill, Plan, Result, Sampler, judge
from chaos_lanes import PAUSE_S, Lane
from chaos_parts import Prometheus
from chaos_traffic import HAProxyLane, Hosts, NginxLane
from common import search_attributes
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from activities.routing.base import Weights
from workflows.core.timeouts import WORKFLOW_TASK_TIMEOUT
from workflows.core.verbs import OperatorInput
from workflows.rollouts.registry import workflow_type

KILL_BEFORE_FIRE_S = 0.25  # abort-at-timer: the worker dies just before the pause ends ...
ABORT_AFTER_FIRE_S = 0.05  # ... and the abort arrives just after: one activation for both


@dataclass
class Context:
    client: Client
    prometheus: Prometheus
    stamp: str
    timeout: float
    histories: Path  # where histories are saved
    keep_all: bool  # every history, not only those of wrong rollouts


async def start(
    client: Client, rollout: Any, task_queue: str, summary: str
) -> WorkflowHandle[Any, Any]:
    """Start the rollout as ``deployflow rollout start`` does; retried while the server is
    restarting (USE_EXISTING makes a retry after a lost answer harmless)."""
    deadline = time.monotonic() + 120
    while True:
        try:
            return await client.start_workflow(
                workflow_type(rollout),
                rollout,
                id=rollout.workflow_id,
                task_queue=task_queue,
                task_timeout=WORKFLOW_TASK_TIMEOUT,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                search_attributes=search_attributes(rollout),
                static_summary=summary,
            )
        except RPCError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(1)


def new_share(new_side: str, minimum: int) -> Callable[[list[HistoryEvent]], bool]:
    """A set_weight completed giving the new version at least ``minimum`` %."""

    def check(events: list[HistoryEvent]) -> bool:
        return any(
            share(decode(done.activity_task_completed_event_attributes.result, Weights), new_side)
            >= minimum
            for _, done in completed(events, "set_weight")
        )

    return check


def recovered(kill: Kill) -> Callable[[list[HistoryEvent]], float | None]:
    """The replacement started after ``kill`` has completed a task."""
    return lambda events: progress_by(events, kill.pid, kill.at)


def more_tasks(count: int) -> Callable[[list[HistoryEvent]], bool]:
    return lambda events: workflow_tasks(events) >= count


def measuring(events: list[HistoryEvent]) -> bool:
    """Analysis has begun: a ``measure`` activity was scheduled."""
    return bool(scheduled(events, "measure"))


def any_completed(name: str) -> Callable[[list[HistoryEvent]], bool]:
    return lambda events: bool(completed(events, name))


class Chaos:
    """What is done to one running rollout, as its plan says."""

    def __init__(
        self, ctx: Context, lane: Lane, plan: Plan, handle: WorkflowHandle[Any, Any],
        history: History, result: Result, new_side: str,
    ) -> None:  # fmt: skip
        self.ctx, self.lane, self.plan, self.handle = ctx, lane, plan, handle
        self.history, self.result, self.new_side = history, result, new_side
        self.replacements: list[asyncio.Task[None]] = []
        self.killed = asyncio.Event()  # the first kill has happened

    def actions(self) -> list[Coroutine[Any, Any, None]]:
        scenario, lane = self.plan.scenario, self.lane
        acts = [self.abort_at_timer() if scenario == "abort-at-timer" else self.kills()]
        if scenario == "abort":
            acts.append(self.abort_later())
        elif scenario == "bad" and lane.shifts_traffic:
            acts.append(self.inject())
        elif scenario == "prometheus-down":
            acts.append(self.prometheus_down())
        elif scenario == "nginx-test-fails" and isinstance(lane.router, NginxLane):
            router = lane.router
            acts.append(self.router_fault("nginx -t fails", router.break_config,
                                          router.repair_config, 4.0))  # fmt: skip
        elif scenario.startswith("socket-gone") and isinstance(lane.router, HAProxyLane):
            haproxy = lane.router
            acts.append(self.router_fault("HAProxy socket gone", haproxy.socket_gone,
                                          haproxy.socket_back, 4.0))  # fmt: skip
        return acts

    def since(self) -> str:
        return f"+{time.time() - self.result.began:.1f}s"

    async def wait(self, check: Callable[[list[HistoryEvent]], Any]) -> Any:
        return await self.history.wait(check, self.ctx.timeout)

    async def kill(self, wait_ready: bool = True) -> Kill:
        """SIGKILL the lane's worker and start a replacement at once; return once it is
        ready, or (``wait_ready=False``) once the old one is dead."""
        kill = Kill(at=0.0)
        self.result.kills.append(kill)
        dead = asyncio.Event()

        async def cycle() -> None:
            async with self.lane.guard:
                kill.at = time.time()
                await self.lane.worker.kill()
                dead.set()
                self.killed.set()
                kill.pid, kill.polling = await self.lane.worker.start()

        task = asyncio.create_task(cycle())
        self.replacements.append(task)  # run() waits for it: the lane needs its worker
        await (asyncio.shield(task) if wait_ready else dead.wait())
        return kill

    async def kills(self, kills: tuple[tuple[int, float], ...] | None = None) -> None:
        previous: Kill | None = None
        for tasks, delay in self.plan.kills if kills is None else kills:
            if previous is not None:  # the next kill only once the last one was recovered
                await self.wait(recovered(previous))
            if not await self.wait(more_tasks(workflow_tasks(self.history.events) + tasks)):
                return
            await asyncio.sleep(delay)
            if self.history.closed.is_set():
                return
            previous = await self.kill()

    async def send_abort(self) -> None:
        """The ``abort`` update, as the CLI sends it; retried with the same id through a
        server restart or a long wait for a worker."""
        update_id = f"chaos-abort-{self.plan.number}"
        deadline = time.monotonic() + self.ctx.timeout
        request = OperatorInput(reason="chaos benchmark", by="chaos")
        while True:
            try:
                await self.handle.execute_update(
                    "abort", request, id=update_id, result_type=str,
                    rpc_timeout=timedelta(seconds=30),
                )  # fmt: skip
                self.result.abort = f"accepted ({self.since()})"
                return
            except WorkflowUpdateFailedError as e:
                self.result.abort = f"refused: {e.cause}"
                return
            except (RPCError, WorkflowUpdateRPCTimeoutOrCancelledError) as e:
                if self.history.closed.is_set() or time.monotonic() > deadline:
                    self.result.abort = f"not delivered: {e}"
                    return
                await asyncio.sleep(0.5)

    async def abort_later(self) -> None:
        """``abort`` part-way: after the planned workflow task, never before the first kill
        (so an early abort does not end the run before it was hurt)."""
        tasks, delay = self.plan.abort_at
        if await self.wait(more_tasks(tasks)):
            await self.killed.wait()
            await asyncio.sleep(delay)
            if not self.history.closed.is_set():
                await self.send_abort()

    async def abort_at_timer(self) -> None:
        """Kill the worker just before the chosen pause timer fires and abort just after, so
        the replacement's first activation holds both (the repro's interleaving)."""
        pause = PAUSE_S[self.lane.strategy]
        index = self.plan.timer
        timer = await self.wait(
            lambda ev: (timers := pause_timers(ev, pause)) and len(timers) > index and timers[index]
        )
        if timer is None:
            return
        self.result.timer_event = timer.event_id
        fire = at(timer) + pause
        await asyncio.sleep(max(0.0, fire - KILL_BEFORE_FIRE_S - time.time()))
        if self.history.closed.is_set():
            return
        first = await self.kill(wait_ready=False)
        await asyncio.sleep(max(0.0, fire + ABORT_AFTER_FIRE_S - time.time()))
        self.result.faults.append(f"abort as pause timer {index + 1} fired")
        await self.send_abort()
        if self.plan.kills:  # a second kill, during the rollback
            await self.wait(recovered(first))
            await self.kills(self.plan.kills)

    async def inject(self) -> None:
        """Errors into the new version (every request 500), as fault_to_safe does."""
        trigger: Callable[[list[HistoryEvent]], Any]
        if self.lane.strategy == "canary":
            trigger = new_share(self.new_side, 1)
        elif self.plan.post:
            trigger = new_share(self.new_side, 100)
        else:
            trigger = measuring  # pre-promotion analysis
        if not await self.wait(trigger):
            return
        await asyncio.sleep(self.plan.inject_s)
        for port in self.lane.ports[self.new_side]:
            await asyncio.to_thread(Hosts.set_error_rate, port, 1.0)
        where = "after the switch" if self.plan.post else "before traffic"
        where = "with traffic on it" if self.lane.strategy == "canary" else where
        self.result.faults.append(f"errors injected into the new version {where} {self.since()}")

    async def prometheus_down(self) -> None:
        """Stop Prometheus once analysis has begun; start it again when the run has ended."""
        if not await self.wait(measuring):
            return
        await asyncio.to_thread(self.ctx.prometheus.stop)
        self.result.faults.append(f"Prometheus stopped at the first measurement {self.since()}")
        try:
            await self.history.closed.wait()
        finally:
            await self.ctx.prometheus.start()

    async def router_fault(
        self, what: str, apply: Callable[[], None], undo: Callable[[], None], seconds: float
    ) -> None:
        """Break the router for ``seconds`` once traffic (or a batch) has moved."""
        trigger = (
            new_share(self.new_side, 1)
            if self.lane.shifts_traffic
            else any_completed("set_server_states")
        )
        if not await self.wait(trigger):
            return
        await asyncio.to_thread(apply)
        began, since = time.time(), self.since()
        aborting = None
        try:
            if self.plan.scenario in ABORTS:
                await asyncio.sleep(0.3)
                aborting = asyncio.create_task(self.send_abort())
            # Held until the rollout has asked the router for a change, and then a while.
            await self.wait(lambda ev: router_calls_after(ev, began))
            await asyncio.sleep(seconds)
        finally:
            await asyncio.to_thread(undo)
            self.result.faults.append(f"{what} from {since} for {time.time() - began:.1f}s")
            if aborting is not None:
                await aborting


async def run(ctx: Context, lane: Lane, plan: Plan) -> Result:
    """Run one planned rollout on ``lane`` and judge it; the lane is reset if it was wrong."""
    version, old, new_side = lane.next_version(), lane.version, lane.new_side
    broken = [version] if plan.scenario == "bad" and not lane.shifts_traffic else []
    rollout = lane.rollout(version, f"r{plan.number}-{ctx.stamp}", broken)
    result = Result(plan, rollout.workflow_id, version)
    summary = f"bench/chaos.py #{plan.number} {plan.scenario}"
    with Sampler(lane, version, new_side) as sampler:
        handle = await start(ctx.client, rollout, lane.task_queue, summary)
        result.began = time.time()
        history = History(ctx.client, handle.id, handle.result_run_id)
        chaos = Chaos(ctx, lane, plan, handle, history, result, new_side)
        tasks = [asyncio.create_task(action) for action in chaos.actions()]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(history.closed.wait(), ctx.timeout)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*chaos.replacements)
        result.ended = time.time()
        if not history.closed.is_set():
            result.problems.append(("stuck", f"still open after {ctx.timeout:g}s: terminated"))
            with contextlib.suppress(RPCError):
                await handle.terminate(reason="bench/chaos.py: stuck")
        await history.close()
        samples = list(sampler.samples)
    judge(result, lane, history.events, samples, old, new_side)
    if ctx.keep_all or not result.correct:
        with contextlib.suppress(RPCError):
            saved = await handle.fetch_history()
            (ctx.histories / f"{plan.number:02d}-{handle.id}.json").write_text(saved.to_json())
    if not result.correct:
        await asyncio.to_thread(lane.reset)
    else:
        lane.advance(result.outcome, version, new_side)
    return result
