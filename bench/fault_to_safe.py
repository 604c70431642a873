"""Fault to safe: errors injected into a live canary → how soon does it get no traffic?

DESIGN §6 target: "errors injected into the canary → 0 % canary traffic, ≤ 3 s median with
a 1 s scrape and 1 s analysis interval".

Runs against the demo stack (``make demo`` / ``examples/demo/stack.py up``: Temporal dev
server, NGINX, Prometheus scraping every 1 s, stable and canary demo-service slots). The
rollouts run on a ``deployflow worker`` this script starts on a private task queue (the
code of this checkout, the same as the client's) and stops by PID; ``--stack-worker`` uses
the stack's own worker on ``deployflow`` instead. Each round:

1. routing back to 100 % stable, a fresh healthy version ``vbenchN`` in the canary slot;
2. a CanaryRollout: ``setWeight 50`` then ``pause {}``, with a background analysis from
   step 0: the canary's 5xx ratio over ``--window`` every ``--interval``, no count,
   ``initialDelay``, ``consecutiveErrorLimit 10``, ``failureLimit 0``, ``result < 0.05``;
3. once the canary has 50 % and ``--min-ok`` successful measurements, and after a random
   wait within one analysis interval (so t0 does not always fall at the same point of
   it): t0 = ``POST /admin/error-rate 1.0`` to the canary slot;
4. measured from t0:
   - t_router: the router-owned upstream file's header says ``stable=100 canary=0``;
   - t_safe: the send time of the first request of the run of ``--safe-run`` consecutive
     requests through NGINX (fresh connection each, every ``--probe-interval`` s) with no
     canary answer, after which no canary answer came;
   - and where the time goes: the first Prometheus sample with errors (scrape), the failed
     measurement (query start/end), the rollout's decision and its rollback weight change.

Afterwards the canary's error rate is 0, routing is 100 % stable and the canary slot runs
the version it ran before. Only 127.0.0.1; every wait is bounded.

    .venv/bin/python bench/fault_to_safe.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import io
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from common import REPO, canary_rollout, exit_now, machine, run_stamp, search_attributes
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from workers.config import TemporalConfig
from workflows.analysis.run import AnalysisPhase
from workflows.core.durations import parse_duration
from workflows.core.timeouts import WORKFLOW_TASK_TIMEOUT
from workflows.core.verbs import OperatorInput
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.models import RolloutPhase, RolloutResult, RolloutStatus

# examples/demo is not a package: its modules import each other by bare name.
sys.path.insert(0, str(REPO / "examples" / "demo"))
import processes
import stack

HOST = processes.HOST
SAFE_HEADER = "# deployflow: stable=100 canary=0"
SLOT = "canary"


class RoundFailed(RuntimeError):
    """A round could not be measured; the message says why."""


# -- the demo stack ---------------------------------------------------------------------


def stack_problems(need_worker: bool) -> list[str]:
    """Why the demo stack cannot be used, or [] when every part needed runs."""
    table = stack.components()
    names = [n for n in stack.ORDER if need_worker or n != "worker"]
    problems = [
        f"{name} is not running"
        for name in names
        if processes.running_pid(name, table[name].marker) is None
    ]
    if need_worker and not problems and not stack.worker_polling():
        problems.append(f"no worker polls task queue {stack.TASK_QUEUE!r}")
    return problems


@contextlib.contextmanager
def quiet() -> Iterator[io.StringIO]:
    """The stack helpers print progress lines; keep them out of the benchmark's output."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        yield buffer


def slot_version(slot: str) -> str | None:
    """``--version`` of the process running in ``slot``, from its command line."""
    component = stack.service_component(slot, "?")
    pid = processes.running_pid(slot, component.marker)
    words = (processes.cmdline(pid) or "").split() if pid else []
    return words[words.index("--version") + 1] if "--version" in words[:-1] else None


@contextlib.contextmanager
def own_worker(task_queue: str) -> Iterator[str]:
    """``deployflow worker`` on a private task queue (same code path as the stack's), for
    measuring the code in this checkout (or on PYTHONPATH) rather than whatever the
    stack's long-running worker re-imports; stopped by its PID. Yields its log's path."""
    with tempfile.NamedTemporaryFile(
        prefix="deployflow-bench-worker-", suffix=".log", delete=False
    ) as log:
        process = subprocess.Popen(
            [str(stack.BIN / "deployflow"), "worker"],
            cwd=REPO,
            env={
                **os.environ,
                "TEMPORAL_ADDRESS": f"{HOST}:{stack.TEMPORAL_PORT}",
                "DEPLOYFLOW_TASK_QUEUE": task_queue,
            },
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RoundFailed(f"the bench worker exited with {process.returncode}: {log.name}")
            described = stack.temporal(
                "task-queue", "describe", "--task-queue", task_queue, "-o", "json"
            )
            if described.returncode == 0 and '"identity"' in described.stdout:
                break
            if time.monotonic() > deadline:
                raise RoundFailed(f"the bench worker did not poll within 30 s: {log.name}")
            time.sleep(0.3)
        yield log.name
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def remove_log(path: str) -> None:
    """The bench worker's log is only kept when something went wrong."""
    Path(path).unlink(missing_ok=True)


def set_error_rate(rate: float) -> None:
    url = f"http://{HOST}:{stack.SLOT_PORTS[SLOT]}/admin/error-rate"
    request = urllib.request.Request(url, data=str(rate).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=2.0) as response:
        response.read()


def router_spec() -> dict[str, Any]:
    """The demo's NGINX router, absolute paths (what examples/demo/run.py renders)."""
    return {
        "nginx": {
            "upstream": stack.UPSTREAM,
            "configPath": str(stack.UPSTREAM_FILE),
            "stable": [f"{HOST}:{stack.STABLE_PORT}"],
            "canary": [f"{HOST}:{stack.CANARY_PORT}"],
            "testCommand": stack.nginx_command("-t"),
            "reloadCommand": stack.nginx_command("-s", "reload"),
        }
    }


def error_ratio_query(window: str) -> str:
    selector = 'service="{{service}}",version="{{version}}"'
    return (
        f'sum(rate(http_requests_total{{{selector},code=~"5.."}}[{window}])) / '
        f"sum(rate(http_requests_total{{{selector}}}[{window}]))"
    )


def first_error_sample(version: str, t0: float) -> float | None:
    """Time of the first scraped sample after t0 in which the canary's 500s went up."""
    selector = f'service="{stack.SERVICE}",version="{version}",code="500"'
    query = urllib.parse.urlencode({"query": f"http_requests_total{{{selector}}}[60s]"})
    url = f"http://{HOST}:{stack.PROMETHEUS_PORT}/api/v1/query?{query}"
    with urllib.request.urlopen(url, timeout=5.0) as response:
        body = json.load(response)
    for series in body["data"]["result"]:
        samples = [(float(ts), float(value)) for ts, value in series["values"]]
        before = [value for ts, value in samples if ts <= t0]
        baseline = before[-1] if before else 0.0
        for ts, value in samples:
            if ts > t0 and value > baseline:
                return ts
    return None


# -- traffic through NGINX and the router's file ----------------------------------------


@dataclass(frozen=True)
class Answer:
    sent: float  # time.time() just before connecting
    code: int  # HTTP status; 0 = no answer
    version: str  # version in the demo service's body; "" for anything else


def ask() -> Answer:
    """One GET / through NGINX on a fresh connection (so NGINX picks a server for it)."""
    sent = time.time()
    connection = http.client.HTTPConnection(HOST, stack.NGINX_PORT, timeout=2.0)
    try:
        connection.request("GET", "/", headers={"Connection": "close"})
        response = connection.getresponse()
        body = response.read(200).decode(errors="replace")
        words = body.split()
        version = words[1] if len(words) >= 2 and not body.startswith("<") else ""
        return Answer(sent, response.status, version)
    except (OSError, http.client.HTTPException):
        return Answer(sent, 0, "")
    finally:
        connection.close()


class Prober:
    """Requests through NGINX on a thread: every ``slow`` s, every ``fast`` s once told."""

    def __init__(self, slow: float, fast: float) -> None:
        self.slow, self.fast = slow, fast
        self.answers: list[Answer] = []
        self.hurry = threading.Event()
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="prober", daemon=True)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            self.answers.append(ask())  # list.append is atomic; readers copy the list
            next_at += self.fast if self.hurry.is_set() else self.slow
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)
            else:
                next_at = time.monotonic()


class RouterWatch:
    """Polls the upstream file's header every 2 ms; ``at`` = when it first says all-stable."""

    def __init__(self) -> None:
        self.at: float | None = None
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="router-watch", daemon=True)

    def __enter__(self) -> RouterWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                header = stack.UPSTREAM_FILE.read_text().split("\n", 1)[0]
            except OSError:
                header = ""
            if header == SAFE_HEADER:
                self.at = time.time()
                return
            self.stop.wait(0.002)


def safe_since(answers: list[Answer], t0: float, canary: str, run: int) -> float | None:
    """Send time of the first request after the last canary answer since ``t0``, if at
    least ``run`` requests (none of them canary) have been answered since."""
    after = [a for a in answers if a.sent >= t0]
    last = max((i for i, a in enumerate(after) if a.version == canary), default=-1)
    tail = after[last + 1 :]
    return tail[0].sent if len(tail) >= run else None


# -- one round --------------------------------------------------------------------------


@dataclass
class Round:
    number: int
    version: str
    workflow_id: str
    outcome: str = "?"
    reason: str = ""
    ready_s: float = 0.0
    offset_s: float = 0.0  # random wait between readiness and t0
    ok_before: int = 0
    router_s: float | None = None
    safe_s: float | None = None
    scrape_s: float | None = None
    query_start_s: float | None = None
    query_end_s: float | None = None
    decided_s: float | None = None
    rolled_back_s: float | None = None
    canary_before: int = 0  # canary answers in the 2 s before t0 (is it really live?)
    failed_other: int = 0  # answers after t0 that were neither stable nor canary
    notes: list[str] = field(default_factory=list)


def since(t0: float, at: datetime | None) -> float | None:
    return None if at is None else at.timestamp() - t0


def background_ok(status: RolloutStatus) -> int:
    runs = [r for r in status.analysis_runs if r.name == "background"]
    return runs[0].metrics[0].successful if runs and runs[0].metrics else 0


async def wait_ready(
    handle: WorkflowHandle[CanaryRollout, RolloutResult], min_ok: int, timeout: float
) -> int:
    """Wait (bounded) for canary 50 % and ``min_ok`` successful background measurements."""
    deadline = time.monotonic() + timeout
    status: RolloutStatus | None = None
    while time.monotonic() < deadline:
        try:
            status = await handle.query(CanaryRollout.status, rpc_timeout=timedelta(seconds=5))
        except RPCError as e:
            raise RoundFailed(
                f"status query failed ({e}); is the worker on this code? see its log"
            ) from None
        if status.phase.finished or status.phase is RolloutPhase.ROLLING_BACK:
            raise RoundFailed(f"rollout ended before the fault: {status.message}")
        ok = background_ok(status)
        if status.weights is not None and status.weights.canary == 50 and ok >= min_ok:
            return ok
        await asyncio.sleep(0.2)
    seen = "no status" if status is None else f"{status.phase.value}: {status.message}"
    raise RoundFailed(f"not ready after {timeout:g}s ({seen})")


async def finish(
    handle: WorkflowHandle[CanaryRollout, RolloutResult], result: asyncio.Task[RolloutResult]
) -> RolloutResult | None:
    """End a rollout that did not end by itself: abort (bounded), then terminate."""
    with contextlib.suppress(Exception):
        await handle.execute_update(
            CanaryRollout.abort,
            OperatorInput(reason="benchmark round timed out", by="bench"),
            rpc_timeout=timedelta(seconds=10),
        )
    with contextlib.suppress(Exception):
        return await asyncio.wait_for(asyncio.shield(result), timeout=20)
    with contextlib.suppress(Exception):
        await handle.terminate(reason="benchmark round timed out")
    return None


async def one_round(
    client: Client, number: int, stamp: str, task_queue: str, args: argparse.Namespace
) -> Round:
    version = f"vbench{number}"
    with quiet():
        stack.reset_routing()
        stack.set_slot(SLOT, version)
    set_error_rate(0.0)
    template = {
        "name": "fault",
        "metrics": [
            {
                "name": "error-rate",
                "interval": args.interval,
                "initialDelay": args.initial_delay,
                "consecutiveErrorLimit": 10,
                "failureLimit": 0,
                "successCondition": "result < 0.05",
                "provider": {
                    "prometheus": {
                        "address": f"http://{HOST}:{stack.PROMETHEUS_PORT}",
                        "query": error_ratio_query(args.window),
                        "timeout": 2,
                    }
                },
            }
        ],
    }
    rollout = canary_rollout(
        f"bench-{stamp}-{number}",
        [{"setWeight": 50}, {"pause": {}}],
        service=stack.SERVICE,
        version=version,
        router=router_spec(),
        analysis={"templates": [{"templateName": "fault"}], "startingStep": 0},
        templates=[template],
    )
    measured = Round(number, version, rollout.workflow_id)
    with Prober(args.probe_slow, args.probe_interval) as prober:
        began = time.monotonic()
        handle = await client.start_workflow(
            CanaryRollout.run,
            rollout,
            id=rollout.workflow_id,
            task_queue=task_queue,
            task_timeout=WORKFLOW_TASK_TIMEOUT,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            search_attributes=search_attributes(rollout),
            static_summary=f"bench/fault_to_safe.py round {number}",
        )
        result_task = asyncio.create_task(handle.result())
        t0 = 0.0
        safe: float | None = None
        router_at: float | None = None
        try:
            measured.ok_before = await wait_ready(handle, args.min_ok, args.ready_timeout)
            measured.ready_s = time.monotonic() - began
            # Readiness is seen right after a measurement; without a random offset t0 would
            # always fall at the same point of the analysis interval.
            measured.offset_s = random.uniform(0, parse_duration(args.interval).total_seconds())
            await asyncio.sleep(measured.offset_s)
            with RouterWatch() as watch:
                t0 = time.time()
                set_error_rate(1.0)
                prober.hurry.set()
                deadline = time.monotonic() + args.max_wait
                while time.monotonic() < deadline:
                    safe = safe_since(list(prober.answers), t0, version, args.safe_run)
                    if safe is not None and watch.at is not None and result_task.done():
                        break
                    await asyncio.sleep(0.05)
                router_at = watch.at
        finally:
            result: RolloutResult | None = None
            if result_task.done() and result_task.exception() is None:
                result = result_task.result()
            else:
                measured.notes.append(
                    f"the workflow failed: {result_task.exception()}"
                    if result_task.done()
                    else "did not finish in time: aborted"
                )
                result = await finish(handle, result_task)
                if not result_task.done():
                    result_task.cancel()
                with contextlib.suppress(BaseException):
                    await result_task  # consumed: a terminated run raises here
            set_error_rate(0.0)
        answers = list(prober.answers)

    measured.canary_before = sum(
        1 for a in answers if t0 - 2 <= a.sent < t0 and a.version == version
    )
    measured.failed_other = sum(
        1 for a in answers if a.sent >= t0 and a.version == "" and a.code != 200
    )
    measured.router_s = None if router_at is None else router_at - t0
    measured.safe_s = None if safe is None else safe - t0
    with contextlib.suppress(OSError, ValueError, KeyError):
        scrape = first_error_sample(version, t0)
        measured.scrape_s = None if scrape is None else scrape - t0
    if result is not None:
        measured.outcome, measured.reason = result.outcome.value, result.reason
        background = [r for r in result.analysis_runs if r.name == "background"]
        failed = [
            m
            for r in background
            for metric in r.metrics
            for m in metric.measurements
            if m.phase is AnalysisPhase.FAILED
        ]
        if failed:
            measured.query_start_s = since(t0, failed[0].started_at)
            measured.query_end_s = since(t0, failed[0].finished_at)
        kinds = [(e.kind, e.message, e.at) for e in result.events]
        measured.decided_s = since(t0, next((at for k, _, at in kinds if k == "analysis"), None))
        measured.rolled_back_s = since(
            t0, next((at for k, m, at in kinds if k == "weights" and "rollback" in m), None)
        )
    if measured.canary_before == 0:
        measured.notes.append("no canary answers in the 2 s before t0")
    return measured


# -- report -----------------------------------------------------------------------------


def seconds(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:5.2f}"


def stats_line(name: str, values: list[float | None]) -> str:
    have = [v for v in values if v is not None]
    if not have:
        return f"  {name:<44} no data"
    return (
        f"  {name:<44} median {statistics.median(have):5.2f} s  "
        f"min {min(have):5.2f} s  max {max(have):5.2f} s  (n={len(have)})"
    )


def print_round(r: Round, rounds: int) -> None:
    notes = f" [{'; '.join(r.notes)}]" if r.notes else ""
    print(
        f"round {r.number + 1}/{rounds} {r.version} {r.workflow_id}: {r.outcome}{notes}\n"
        f"    t_router {seconds(r.router_s)} s, t_safe {seconds(r.safe_s)} s | scrape "
        f"{seconds(r.scrape_s)}, query {seconds(r.query_start_s)} →{seconds(r.query_end_s)}, "
        f"decided {seconds(r.decided_s)}, rolled back {seconds(r.rolled_back_s)}\n"
        f"    ready after {r.ready_s:.1f} s + {r.offset_s:.2f} s random offset; "
        f"{r.ok_before} ok measurements and {r.canary_before} canary answers in the 2 s "
        f"before t0; {r.failed_other} failed non-canary answers after",
        flush=True,
    )


async def main_async(args: argparse.Namespace) -> int:
    problems = stack_problems(need_worker=not args.own_worker)
    if problems:
        print(
            "fault_to_safe: the demo stack is not up: " + "; ".join(problems) + ".\n"
            "Start it with `make demo` (or `.venv/bin/python examples/demo/stack.py up`), "
            "check with `.venv/bin/python examples/demo/stack.py status`.",
            file=sys.stderr,
        )
        return 2
    print(f"machine: {machine()}")
    print(
        f"stack: Temporal {HOST}:{stack.TEMPORAL_PORT}, NGINX {HOST}:{stack.NGINX_PORT}, "
        f"Prometheus {HOST}:{stack.PROMETHEUS_PORT} (scrape 1 s); "
        f"analysis every {args.interval}, window [{args.window}], "
        f"initialDelay {args.initial_delay}; probes every {args.probe_interval * 1000:g} ms "
        f"after t0, safe = {args.safe_run} requests in a row without the canary",
        flush=True,
    )
    original = slot_version(SLOT)
    client = await TemporalConfig(address=f"{HOST}:{stack.TEMPORAL_PORT}").connect()
    stamp = run_stamp()
    rounds: list[Round] = []
    log: str | None = None
    try:
        with contextlib.ExitStack() as workers:
            task_queue = stack.TASK_QUEUE
            if args.own_worker:
                task_queue = f"bench-fault-{stamp}"
                log = workers.enter_context(own_worker(task_queue))
                print(
                    f"worker: `deployflow worker` started for this run on {task_queue!r}, log {log}"
                )
            else:
                print(f"worker: the stack's, on {task_queue!r}")
            for number in range(args.rounds):
                try:
                    measured = await one_round(client, number, stamp, task_queue, args)
                except RoundFailed as e:
                    print(f"round {number + 1}/{args.rounds}: not measured: {e}", flush=True)
                    continue
                print_round(measured, args.rounds)
                rounds.append(measured)
    except RoundFailed as e:
        print(f"fault_to_safe: {e}", file=sys.stderr)
    finally:
        with contextlib.suppress(OSError):
            set_error_rate(0.0)
        with quiet():
            stack.reset_routing()
            if original is not None:
                stack.set_slot(SLOT, original)
        print(
            f"cleanup: canary error rate 0, NGINX 100 % stable, canary slot runs "
            f"{original or 'what the last round left'}"
        )
    clean = len(rounds) == args.rounds and all(
        r.outcome == RolloutPhase.ROLLED_BACK.value for r in rounds
    )
    if log is not None:
        if clean:
            remove_log(log)
        else:
            print(f"the worker's log is kept: {log}")
    if not rounds:
        print("no round was measured")
        return 1
    print(f"\n{len(rounds)} rounds; outcomes: " + ", ".join(r.outcome for r in rounds))
    print("seconds after t0 (errors switched on in the canary):")
    print(stats_line("t_router: upstream file says canary=0", [r.router_s for r in rounds]))
    print(stats_line("t_safe: no canary answer from then on", [r.safe_s for r in rounds]))
    print("where it goes:")
    print(stats_line("first scraped sample with errors", [r.scrape_s for r in rounds]))
    print(stats_line("failing measurement: query started", [r.query_start_s for r in rounds]))
    print(stats_line("failing measurement: result recorded", [r.query_end_s for r in rounds]))
    print(stats_line("rollout decided (analysis event)", [r.decided_s for r in rounds]))
    print(stats_line("rollback weight change returned", [r.rolled_back_s for r in rounds]))
    safe = [r.safe_s for r in rounds if r.safe_s is not None]
    rolled_back = sum(1 for r in rounds if r.outcome == RolloutPhase.ROLLED_BACK.value)
    if safe:
        median = statistics.median(safe)
        verdict = "met" if median <= args.target_s else "MISSED"
        print(
            f"target: 0 % canary traffic ≤ {args.target_s:g} s median: {verdict} "
            f"(median t_safe {median:.2f} s); RolledBack {rolled_back}/{len(rounds)}"
        )
    return 0 if rolled_back == len(rounds) else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="Needs the demo stack up (make demo). Exit 0 when every round rolled back; "
        "a missed target is printed, not an exit code.",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--interval", default="1s", help="analysis interval (default 1s)")
    parser.add_argument(
        "--window", default="3s", help="rate() window (default 3s: 3 samples at a 1 s scrape)"
    )
    parser.add_argument("--initial-delay", default="4s", help="analysis initialDelay")
    parser.add_argument("--min-ok", type=int, default=3, help="ok measurements before t0")
    parser.add_argument("--safe-run", type=int, default=30, help="canary-free requests in a row")
    parser.add_argument(
        "--probe-interval", type=float, default=0.01, help="seconds between probes after t0"
    )
    parser.add_argument(
        "--probe-slow", type=float, default=0.05, help="seconds between probes before t0"
    )
    parser.add_argument("--ready-timeout", type=float, default=60.0, help="bound, seconds")
    parser.add_argument("--max-wait", type=float, default=30.0, help="bound after t0, seconds")
    parser.add_argument(
        "--stack-worker",
        dest="own_worker",
        action="store_false",
        help="use the stack's worker (task queue deployflow) instead of starting a "
        "`deployflow worker` of this checkout on a private task queue; the stack's worker "
        "keeps the code it was started with, so it must match this checkout",
    )
    parser.add_argument("--target-s", type=float, default=3.0, help="DESIGN §6 target")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 50 or not 1 <= args.safe_run <= 1000:
        parser.error("need 1 <= --rounds <= 50 and 1 <= --safe-run <= 1000")
    if not 0.002 <= args.probe_interval <= 1 or not 0.002 <= args.probe_slow <= 1:
        parser.error("probe intervals must be within [0.002, 1] s")
    if not 5 <= args.ready_timeout <= 300 or not 5 <= args.max_wait <= 120:
        parser.error("need 5 <= --ready-timeout <= 300 and 5 <= --max-wait <= 120")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    exit_now(main())
