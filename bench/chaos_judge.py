"""What bench/chaos.py knows about one rollout and how it is judged: the plan, what
happened (kills, the abort, faults), the sampler watching the router or hosts, and the
checks that decide whether the rollout was correct.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from chaos_history import (
    CLOSED,
    abort_accepted,
    at,
    forward_after_abort,
    outcome,
    progress_by,
    router_failures,
    shape_problem,
    shares_applied,
    steady,
    with_timer,
    workflow_tasks,
)
from chaos_lanes import Lane
from temporalio.api.history.v1 import HistoryEvent

FINAL = ("Promoted", "RolledBack", "Aborted")
EXPECTED = {
    "promote": "Promoted",
    "abort": "Aborted",
    "abort-at-timer": "Aborted",
    "bad": "RolledBack",
    "prometheus-down": "RolledBack",
    "nginx-test-fails": "RolledBack",
    "socket-gone": "Promoted",
    "socket-gone-abort": "Aborted",
}
ABORTS = ("abort", "abort-at-timer", "socket-gone-abort")


@dataclass(frozen=True)
class Plan:
    number: int
    lane: str
    scenario: str
    kills: tuple[tuple[int, float], ...]  # (workflow tasks to wait for, then seconds)
    abort_at: tuple[int, float] = (0, 0.0)  # abort: likewise
    timer: int = 0  # abort-at-timer: which pause timer
    inject_s: float = 0.0  # bad: seconds after the trigger
    post: bool = False  # bad blue-green: after the switch (post-promotion analysis)


@dataclass
class Kill:
    at: float  # time.time() of the SIGKILL
    pid: int = 0  # the replacement
    polling: float | None = None  # its ready line
    progress: float | None = None  # its first completed workflow or activity task


@dataclass
class Result:
    plan: Plan
    workflow_id: str
    version: str
    outcome: str = "Stuck"
    reason: str = ""
    began: float = 0.0
    ended: float = 0.0
    workflow_tasks: int = 0
    kills: list[Kill] = field(default_factory=list)
    abort: str = ""  # what the abort update answered, if one was sent
    aborted: bool = False  # an abort was accepted (history)
    with_timer: bool = False  # ... in the same activation as the chosen pause timer firing
    timer_event: int = 0  # abort-at-timer: the TimerStarted event aimed at
    faults: list[str] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (kind, message)

    @property
    def correct(self) -> bool:
        return not self.problems


class Sampler(threading.Thread):
    """The lane's router (or hosts) every ``every`` seconds: ``(time, sample)``."""

    def __init__(self, lane: Lane, version: str, new_side: str) -> None:
        super().__init__(name=f"sample-{lane.name}", daemon=True)
        self.lane, self.version, self.new_side = lane, version, new_side
        self.every = 0.05 if lane.shifts_traffic else 0.1
        self.samples: list[tuple[float, tuple[int | None, ...]]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.samples.append((time.time(), self.lane.sample(self.version, self.new_side)))
            self.stopped.wait(self.every)

    def __enter__(self) -> Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.join(timeout=5)


def judge(
    result: Result,
    lane: Lane,
    events: list[HistoryEvent],
    samples: list[tuple[float, tuple[int | None, ...]]],
    old: str,
    new_side: str,
) -> None:
    """Fill in the outcome and every way the rollout went wrong."""
    plan, problems = result.plan, result.problems
    if not problems:
        result.outcome, result.reason = outcome(events)
    result.workflow_tasks = workflow_tasks(events)
    result.aborted = abort_accepted(events) is not None
    if events and events[-1].event_type in CLOSED:  # a kill after the end hurt nothing
        result.kills = [k for k in result.kills if k.at < at(events[-1])]
    for kill in result.kills:
        kill.progress = progress_by(events, kill.pid, kill.at)
    timer = next((e for e in events if e.event_id == result.timer_event), None)
    result.with_timer = timer is not None and with_timer(events, timer)
    expected = EXPECTED[plan.scenario]
    if plan.scenario in ABORTS and not result.aborted:
        expected = "Promoted"  # the abort came too late: a healthy version is promoted
    if plan.scenario == "nginx-test-fails" and not router_failures(events):
        expected = "Promoted"  # no router change ran while the config was broken
        result.faults.append("(no router change failed: the fault missed)")
    if result.outcome not in FINAL and result.outcome != "Stuck":
        problems.append(("failed", f"ended {result.outcome}: {result.reason}"))
    elif result.outcome in FINAL and result.outcome != expected:
        problems.append(("outcome", f"expected {expected}, got {result.outcome}: {result.reason}"))
    for message in lane.end_state(result.outcome, result.version, old, new_side):
        kind = "split" if "(split)" in message else "end-state"
        problems.append((kind, message))
    columns = len(samples[0][1]) if samples else 0
    full = 100 if lane.shifts_traffic else 1
    for column in range(columns):
        values = steady([v for _, s in samples if (v := s[column]) is not None])
        wrong = shape_problem(values, result.outcome, full, strict=not lane.shifts_traffic)
        if wrong is not None:
            where = "router" if lane.shifts_traffic else f"host :{lane.all_ports()[column]}"
            problems.append(("regression", f"{where} sampled: {wrong}"))
    if lane.shifts_traffic:
        wrong = shape_problem(shares_applied(events, new_side), result.outcome, 100, strict=True)
        if wrong is not None:
            problems.append(("regression", f"set_weight results: {wrong}"))
    for message in forward_after_abort(events, new_side, result.version):
        problems.append(("double-shift", message))
