"""The self-healing demo (``make demo SCENARIO=self-healing``): a scheduled ServiceMonitor
finds the stable slot hung, then leaking, and its SelfHealer restarts it within a restart
budget; once the budget is spent, the next hang becomes an incident and a page.

1. ``stack.py up`` of what it needs: the Temporal dev server, the stable slot, Prometheus,
   the local PagerDuty (HTTPS) and Slack servers, the worker (restarted with their
   environment if it was started without it). What an earlier run left is ended first: its
   SelfHealer (terminated, so the budget is whole again), open incidents of checkout
   (resolved), a hung, leaking or erroring stable slot (``stack.py restart stable``).
2. Light load straight to the stable slot (a service with no traffic has no error rate or
   latency to judge: its SLO queries return NaN, which the monitor escalates), then
   ``deployflow monitor schedule examples/monitors/checkout.yaml``: the schedule, its
   cadences and next runs. For the demo a copy is rendered into ``.state/demo/monitors/``
   with a 30 s leak window (the example's is 2m) and 2 restarts per hour (it has 3), and
   scheduled again: the same schedule is updated, not duplicated.
3. Scene 1, unresponsive: ``POST /admin/hang 1`` on the stable slot, ``deployflow monitor
   trigger checkout-demo`` (rather than waiting 5-15 minutes for the cadence); the run's
   findings, then the SelfHealer's ``status`` query as it changes: the restart (the slot's
   new PID), the verification, restarts used of the budget.
4. Scene 2, memory leak: ``POST /admin/leak`` 4 MiB/s on the restarted slot; once
   Prometheus has a whole leak window of points, trigger again: the finding with the fit
   the monitor made (MiB/min, R², read from the run's ``memory_trend`` activity result),
   the healer waiting out its backoff, the restart, the verification.
5. Scene 3, budget spent: hang again, trigger: the healer opens an incident with the
   monitor's runbook instead of restarting, and the runbook pages (the local PagerDuty's
   ``GET /_received``). Then ``deployflow incident resolve`` and the slot unhung.
6. ``deployflow monitor pause checkout-demo``, so the schedule stops firing at the demo
   stack; the checks with their numbers; exit 1 if a scene did not happen in time.

A scene waits at most SCENE_TIMEOUT_S. Before each scene the demo makes sure no scheduled
run falls into it (it waits for one due within the scene's length to pass): a run of the
schedule during a scene would report to the healer too and spend the budget early. The
SelfHealer keeps running afterwards (it ends after an hour without a report); the stack
stays up; ``make down`` stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import time
import urllib.parse
import urllib.request
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import incident
import processes
import stack
import yaml
from incident import Checks, Notify
from processes import HOST, REPO, STATE, StackError
from temporalio.api.common.v1 import Payload
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
)
from temporalio.service import RPCError

from activities.metrics.trend import MemoryTrendOutput, SeriesTrend
from workers.config import TemporalConfig
from workflows.core.timeline import Event
from workflows.monitors.models import HealerStatus, MonitorResult, healer_workflow_id
from workflows.monitors.spec import ServiceMonitor, load_monitor

T = TypeVar("T")

PARTS = ["temporal", "stable", "notify", "worker", "prometheus"]
MONITOR_SOURCE = REPO / "examples" / "monitors" / "checkout.yaml"
RENDERED = STATE / "monitors"
# What the rendered copy changes, so the demo takes minutes, not hours.
DEMO_LEAK_WINDOW = "30s"
DEMO_MAX_RESTARTS = 2
LEAK_BYTES_PER_S = 4 * 2**20
MIB = 2**20
LOAD_RATE = 5.0
LOAD_SECONDS = 600
LOAD_WARMUP_S = 3.0  # a few scrapes of traffic before the first run judges the SLOs
SCRAPE_S = 1.0
POLL_S = 0.25
RUN_TIMEOUT_S = 60.0  # a monitor run: health probes (~8 s on a hung slot) and queries
SCENE_TIMEOUT_S = 150.0  # the leak scene: a 30 s window, up to 1 m backoff, 10 s verify
LEFTOVER_TIMEOUT_S = 30.0
DEMO_NOTE = "paused by make demo SCENARIO=self-healing (the demo stack stays up)"
TEMPORAL_UI = f"http://localhost:{stack.TEMPORAL_UI_PORT}/namespaces/default"
PROMETHEUS = f"http://{HOST}:{stack.PROMETHEUS_PORT}"
STABLE = f"{HOST}:{stack.STABLE_PORT}"


class Temporal:
    """A client on one event loop, for a script that is otherwise synchronous."""

    def __init__(self) -> None:
        self._runner = asyncio.Runner()
        address = f"{HOST}:{stack.TEMPORAL_PORT}"
        self.client: Client = self.run(TemporalConfig(address=address).connect())

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return self._runner.run(coroutine)

    def close(self) -> None:
        self._runner.close()

    def healer(self, healer_id: str) -> HealerStatus | None:
        """The SelfHealer's ``status`` query (its latest run); None before there is one."""
        handle = self.client.get_workflow_handle(healer_id)
        try:
            status: HealerStatus = self.run(handle.query("status", result_type=HealerStatus))
        except (RPCError, WorkflowQueryFailedError, WorkflowQueryRejectedError):
            return None  # not started yet, or its run cannot answer right now
        return status

    def healer_running(self, healer_id: str) -> bool:
        try:
            described = self.run(self.client.get_workflow_handle(healer_id).describe())
        except RPCError:
            return False
        return described.status == WorkflowExecutionStatus.RUNNING

    def schedule(self, schedule_id: str) -> ScheduleDescription:
        return self.run(self.client.get_schedule_handle(schedule_id).describe())

    def monitor_result(self, run: ScheduleActionExecutionStartWorkflow) -> MonitorResult:
        handle = self.client.get_workflow_handle(
            run.workflow_id, run_id=run.first_execution_run_id, result_type=MonitorResult
        )
        result: MonitorResult = self.run(asyncio.wait_for(handle.result(), RUN_TIMEOUT_S))
        return result

    def memory_trend(self, run: ScheduleActionExecutionStartWorkflow) -> MemoryTrendOutput | None:
        """What the run's ``memory_trend`` activity returned, from its history."""
        handle = self.client.get_workflow_handle(run.workflow_id, run_id=run.first_execution_run_id)
        history = self.run(handle.fetch_history())
        scheduled = {
            e.event_id
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
            and e.activity_task_scheduled_event_attributes.activity_type.name == "memory_trend"
        }
        for event in history.events:
            if not event.HasField("activity_task_completed_event_attributes"):
                continue
            completed = event.activity_task_completed_event_attributes
            if completed.scheduled_event_id in scheduled:
                payloads: list[Payload] = list(completed.result.payloads)
                [output] = self.run(
                    self.client.data_converter.decode(payloads, [MemoryTrendOutput])
                )
                assert isinstance(output, MemoryTrendOutput)
                return output
        return None


# -- the slot and its knobs ---------------------------------------------------------------


def slot_get(knob: str) -> str:
    with urllib.request.urlopen(f"http://{STABLE}/admin/{knob}", timeout=2.0) as response:
        return str(response.read().decode()).strip()


def slot_post(knob: str, value: str) -> None:
    url = f"http://{STABLE}/admin/{knob}"
    request = urllib.request.Request(url, data=value.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=2.0) as response:
        response.read()


def slot_pid() -> int | None:
    return processes.running_pid("stable", f"--port {stack.STABLE_PORT}")


def healthz() -> str:
    status = processes.http_status(f"http://{STABLE}/healthz", timeout=1.0)
    return "no answer within 1s" if status is None else f"HTTP {status}"


def resident_mib(query: str) -> float | None:
    """The leak query's current value in Prometheus, in MiB."""
    url = f"{PROMETHEUS}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    try:
        result = incident.get_json(url)["data"]["result"]
    except (OSError, ValueError, KeyError):
        return None
    return float(result[0]["value"][1]) / MIB if result else None


# -- the monitor file and its schedule ----------------------------------------------------


def render_monitor(source: Path) -> tuple[Path, str]:
    """A copy of the monitor file with the demo's leak window and restart budget; the path
    and a line saying what changed."""
    documents: list[dict[str, Any]] = list(yaml.safe_load_all(source.read_text()))
    [monitor] = [d for d in documents if d.get("kind") == "ServiceMonitor"]
    spec = monitor["spec"]
    changed = (
        f"memoryLeak.window {spec['memoryLeak']['window']} → {DEMO_LEAK_WINDOW}, "
        f"selfHealing.maxRestarts {spec['selfHealing']['maxRestarts']} → {DEMO_MAX_RESTARTS}"
    )
    spec["memoryLeak"]["window"] = DEMO_LEAK_WINDOW
    spec["selfHealing"]["maxRestarts"] = DEMO_MAX_RESTARTS
    RENDERED.mkdir(parents=True, exist_ok=True)
    target = RENDERED / source.name
    header = (
        f"# Rendered from {source.relative_to(REPO)} by examples/demo/healing.py for the "
        f"demo:\n# {changed}.\n"
    )
    target.write_text(header + yaml.safe_dump_all(documents, sort_keys=False))
    return target, changed


def show_cli(*args: str, timeout: float = 60.0) -> bool:
    """Run ``deployflow ARGS``, print the command and its output; True on exit 0."""
    shown = [str(Path(a).relative_to(REPO)) if a.startswith(str(REPO)) else a for a in args]
    print(f"  $ deployflow {shlex.join(shown)}")
    done = stack.cli(*args, timeout=timeout)
    for line in (done.stdout + done.stderr).strip().splitlines():
        print(f"    {line}")
    if done.returncode != 0:
        print(f"    (exit {done.returncode})")
    return done.returncode == 0


def wait_clear_of_schedule(temporal: Temporal, schedule_id: str, seconds: float) -> None:
    """If the schedule is due to fire within ``seconds``, wait for that run to start and
    finish first: a scheduled run in the middle of a scene would report to the healer too."""
    info = temporal.schedule(schedule_id).info
    upcoming = info.next_action_times[0] if info.next_action_times else None
    now = datetime.now(UTC)
    if upcoming is None or upcoming - now > timedelta(seconds=seconds):
        return
    wait = (upcoming - now).total_seconds()
    print(
        f"  (a scheduled run is due at {upcoming.astimezone():%H:%M:%S}, in {wait:.0f}s: "
        "letting it pass first, so it does not land in the middle of the scene)"
    )
    time.sleep(max(0.0, wait) + 2.0)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while temporal.schedule(schedule_id).info.running_actions:
        if time.monotonic() > deadline:
            raise StackError(f"the scheduled run did not finish within {RUN_TIMEOUT_S:.0f}s")
        time.sleep(0.5)


def find_run(
    temporal: Temporal, schedule_id: str, since: datetime
) -> ScheduleActionExecutionStartWorkflow | None:
    """The schedule's run started at or after ``since`` (the trigger's), else one still
    going (a trigger while a run goes on is skipped: that run is the one to follow)."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        info = temporal.schedule(schedule_id).info
        started = [
            a.action
            for a in info.recent_actions
            if a.started_at >= since - timedelta(seconds=1)
            and isinstance(a.action, ScheduleActionExecutionStartWorkflow)
        ]
        running = [
            a for a in info.running_actions if isinstance(a, ScheduleActionExecutionStartWorkflow)
        ]
        if started or running:
            return (started or running)[-1]
        time.sleep(POLL_S)
    return None


# -- following a scene --------------------------------------------------------------------


@dataclass
class Scene:
    """One scene's clock and what it saw: lines are printed in seconds since the trigger."""

    title: str
    triggered: float = 0.0  # time.time()
    events: dict[str, float] = field(default_factory=dict)  # healer event kind → seconds
    run: ScheduleActionExecutionStartWorkflow | None = None  # the monitor run it triggered
    waited: list[str] = field(default_factory=list)  # what the healer waited for, in order
    ok: bool = False

    def line(self, at: float, source: str, text: str) -> None:
        print(f"  [{at - self.triggered:+7.1f}s] {source:<9} {text}")

    def offset(self, moment: datetime) -> float:
        return moment.timestamp() - self.triggered


def trigger(temporal: Temporal, scene: Scene, monitor: ServiceMonitor) -> MonitorResult | None:
    """``deployflow monitor trigger``; print the run's findings and actions once it ends."""
    since = datetime.now(UTC)
    scene.triggered = since.timestamp()
    if not show_cli("monitor", "trigger", monitor.name):
        return None
    run = find_run(temporal, monitor.schedule_id, since)
    if run is None:
        print(f"  no run of {monitor.schedule_id} started within {RUN_TIMEOUT_S:.0f}s")
        return None
    scene.run = run
    scene.line(time.time(), "monitor", f"run {run.workflow_id}")
    try:
        result = temporal.monitor_result(run)
    except (TimeoutError, WorkflowFailureError, RPCError) as e:
        print(f"  the run did not complete within {RUN_TIMEOUT_S:.0f}s: {type(e).__name__}: {e}")
        return None
    ended = time.time()
    verdict = "healthy" if result.healthy else f"{len(result.findings)} finding(s)"
    scene.line(ended, "monitor", f"run completed: {verdict}")
    for finding in result.findings:
        scene.line(ended, "monitor", f"  finding {finding.kind}: {finding.message}")
    for action in result.actions:
        scene.line(ended, "monitor", f"  action: {action}")
    return result


def follow_healer(
    temporal: Temporal, scene: Scene, healer_id: str, until: tuple[str, ...]
) -> HealerStatus | None:
    """Print the healer's new timeline events and what it waits for, until an event of a
    kind in ``until`` (after the trigger) or SCENE_TIMEOUT_S; its last status."""
    shown: set[tuple[datetime, str, str]] = set()
    waiting: str | None = None
    deadline = time.monotonic() + SCENE_TIMEOUT_S
    status: HealerStatus | None = None
    while time.monotonic() < deadline:
        status = temporal.healer(healer_id) or status
        if status is not None:
            fresh: list[Event] = [
                e
                for e in status.timeline
                if scene.offset(e.at) >= -1.0 and (e.at, e.kind, e.message) not in shown
            ]
            for event in fresh:
                shown.add((event.at, event.kind, event.message))
                scene.events.setdefault(event.kind, scene.offset(event.at))
                scene.line(event.at.timestamp(), "healer", f"{event.kind}: {event.message}")
            if status.waiting_for != waiting and any(
                scene.offset(e.at) >= -1.0 for e in status.timeline
            ):
                waiting = status.waiting_for
                scene.waited.append(waiting or "")
                scene.line(time.time(), "healer", f"waiting for {waiting}")
            if any(kind in scene.events for kind in until):
                return status
        time.sleep(POLL_S)
    print(f"  the healer did not get to {' or '.join(until)} within {SCENE_TIMEOUT_S:.0f}s")
    return status


def show_budget(status: HealerStatus | None, monitor: ServiceMonitor) -> None:
    if status is None:
        return
    policy = monitor.spec.self_healing
    assert policy is not None
    times = ", ".join(f"{t.astimezone():%H:%M:%S}" for t in status.restarts) or "none"
    print(
        f"  budget    {len(status.restarts)} of {status.max_restarts} restarts used in "
        f"{policy.per} (at {times}); backoff {policy.backoff}, doubled after each"
    )


# -- what an earlier run left -------------------------------------------------------------


def end_leftovers(temporal: Temporal, healer_id: str) -> None:
    """The healer (its budget would carry over), open incidents of checkout (a monitor's
    would take this run's escalation without a new page; another runbook's could restart
    the slot mid-scene), and a hung, leaking or erroring stable slot."""
    if temporal.healer_running(healer_id):
        print(f"  {healer_id} still runs from an earlier demo: terminating it (budget whole)")
        reason = "make demo SCENARIO=self-healing starts afresh (a whole restart budget)"
        done = stack.temporal(
            "workflow", "terminate", "--workflow-id", healer_id, "--reason", reason
        )
        if done.returncode != 0:
            raise StackError(f"could not terminate {healer_id}: {done.stderr.strip()}")
    incident.resolve_open_incidents()
    pid = slot_pid()
    if pid is None:
        return
    wrong = []
    if slot_get("hang") == "1":
        wrong.append("hung")
    leak_rate, held = (int(x) for x in slot_get("leak").split())
    if leak_rate or held:
        wrong.append(f"leaking ({held / MIB:.0f} MiB held)")
    if float(slot_get("error-rate")) != 0:
        wrong.append(f"error rate {slot_get('error-rate')}")
    version, started_rate = stack.slot_options(pid)
    if started_rate:
        print(f"  stable slot was started with error rate {started_rate:g}: starting it afresh")
        stack.set_slot("stable", version)
    elif wrong:
        print(f"  stable slot is {', '.join(wrong)} from an earlier run: stack.py restart stable")
        stack.restart_slot("stable")


# -- the scenes ---------------------------------------------------------------------------


def scene_unresponsive(
    temporal: Temporal, monitor: ServiceMonitor, healer_id: str, checks: Checks
) -> Scene:
    scene = Scene("unresponsive")
    print(f"==> scene 1: the stable slot {STABLE} stops answering")
    wait_clear_of_schedule(temporal, monitor.schedule_id, 45.0)
    before = slot_pid()
    slot_post("hang", "1")
    print(f"  $ curl -d 1 http://{STABLE}/admin/hang    → /healthz: {healthz()}")
    result = trigger(temporal, scene, monitor)
    status = follow_healer(temporal, scene, healer_id, ("verified", "escalate"))
    after = slot_pid()
    print(f"  stable    pid {before} → {after}; /healthz: {healthz()}")
    show_budget(status, monitor)
    restarted, verified = scene.events.get("restart"), scene.events.get("verified")
    found = result is not None and any(f.kind == "unresponsive" for f in result.findings)
    checks.check(found, "scene 1: the monitor run found the slot unresponsive")
    checks.check(
        restarted is not None and before != after,
        f"scene 1: restarted (pid {before} → {after}) "
        + (f"{restarted:.1f}s after the trigger" if restarted is not None else "— not seen"),
    )
    checks.check(
        verified is not None,
        "scene 1: verified healthy "
        + (f"{verified:.1f}s after the trigger" if verified is not None else "— not seen"),
    )
    scene.ok = found and restarted is not None and verified is not None and before != after
    print()
    return scene


def scene_leak(
    temporal: Temporal, monitor: ServiceMonitor, healer_id: str, checks: Checks
) -> Scene:
    scene = Scene("memory leak")
    leak = monitor.spec.memory_leak
    assert leak is not None
    assert leak.provider.prometheus is not None
    query = leak.provider.prometheus.query
    print(f"==> scene 2: the stable slot leaks {LEAK_BYTES_PER_S / MIB:g} MiB/s")
    # The leak needs its window plus a few scrapes before the trigger; then up to a minute
    # of backoff. A scheduled run in that time would see the leak first.
    wait_clear_of_schedule(temporal, monitor.schedule_id, leak.window_seconds + 90.0)
    before = slot_pid()
    slot_post("leak", str(LEAK_BYTES_PER_S))
    started = time.monotonic()
    print(f"  $ curl -d {LEAK_BYTES_PER_S} http://{STABLE}/admin/leak")
    ready_at = started + leak.window_seconds + 3 * SCRAPE_S
    print(
        f"  waiting {ready_at - started:.0f}s: Prometheus needs a whole {leak.window} window "
        "of the leak, scraped every second"
    )
    while time.monotonic() < ready_at:
        mib = resident_mib(query)
        shown = f"{mib:.0f} MiB" if mib is not None else "?"
        print(f"    {time.monotonic() - started:4.0f}s  resident memory {shown}")
        time.sleep(min(10.0, max(0.0, ready_at - time.monotonic())))
    result = trigger(temporal, scene, monitor)
    fit: SeriesTrend | None = None
    if result is not None and scene.run is not None:
        output = temporal.memory_trend(scene.run)
        series = output.series if output is not None else []
        fit = next((s for s in series if s.labels.get("instance") == STABLE), None)
        if fit is not None and fit.slope_per_second is not None and fit.r2 is not None:
            print(
                f"  the run's memory_trend: {fit.points} points over {leak.window}, "
                f"{(fit.first or 0) / MIB:.0f} → {(fit.last or 0) / MIB:.0f} MiB, "
                f"slope {fit.slope_per_second * 60 / MIB:.1f} MiB/min, R² {fit.r2:.4f} "
                f"(a leak: ≥ {leak.min_growth_per_minute / MIB:g} MiB/min and R² ≥ "
                f"{leak.min_r2:g})"
            )
    status = follow_healer(temporal, scene, healer_id, ("verified", "escalate"))
    after = slot_pid()
    held = slot_get("leak").split()[1] if after is not None else "?"
    print(f"  stable    pid {before} → {after}; leak held by the new process: {held} bytes")
    show_budget(status, monitor)
    found = result is not None and any(f.kind == "memory-leak" for f in result.findings)
    slope = (fit.slope_per_second or 0) * 60 / MIB if fit is not None else 0.0
    r2 = fit.r2 if fit is not None and fit.r2 is not None else 0.0
    checks.check(
        found, f"scene 2: the monitor run found the leak: {slope:.1f} MiB/min, R² {r2:.3f}"
    )
    restarted, verified = scene.events.get("restart"), scene.events.get("verified")
    policy = monitor.spec.self_healing
    assert policy is not None
    backoff = next((w for w in scene.waited if w.startswith("backoff")), None)
    waited = f"having waited for {backoff}" if backoff else f"its {policy.backoff} backoff over"
    checks.check(
        restarted is not None and before != after,
        f"scene 2: restarted (pid {before} → {after}) "
        + (f"{restarted:.1f}s after the trigger, {waited}" if restarted is not None else "—"),
    )
    checks.check(
        verified is not None,
        "scene 2: verified healthy "
        + (f"{verified:.1f}s after the trigger" if verified is not None else "— not seen"),
    )
    scene.ok = found and restarted is not None and verified is not None and before != after
    print()
    return scene


def wait_for_page(notify: Notify, dedup_key: str) -> dict[str, Any] | None:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        for event in notify.pagerduty()["events"]:
            if event["dedup_key"] == dedup_key and event["event_action"] == "trigger":
                return dict(event)
        time.sleep(POLL_S)
    return None


def incident_status(workflow_id: str) -> dict[str, Any]:
    done = stack.cli("incident", "status", workflow_id, "--json")
    if done.returncode != 0:
        return {}
    status: dict[str, Any] = json.loads(done.stdout)
    return status


def scene_budget(
    temporal: Temporal, monitor: ServiceMonitor, healer_id: str, checks: Checks
) -> Scene:
    scene = Scene("budget spent")
    print(f"==> scene 3: hung again, with {DEMO_MAX_RESTARTS} of {DEMO_MAX_RESTARTS} restarts used")
    wait_clear_of_schedule(temporal, monitor.schedule_id, 45.0)
    notify = Notify()
    before = slot_pid()
    slot_post("hang", "1")
    print(f"  $ curl -d 1 http://{STABLE}/admin/hang    → /healthz: {healthz()}")
    trigger(temporal, scene, monitor)
    status = follow_healer(temporal, scene, healer_id, ("escalate",))
    escalated = scene.events.get("escalate")
    # The event is recorded before the incident is opened; its id follows.
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while escalated is not None and status is not None and not status.incidents:
        if time.monotonic() > deadline:
            break
        time.sleep(POLL_S)
        status = temporal.healer(healer_id) or status
    opened = status.incidents[-1] if status is not None and status.incidents else None
    checks.check(
        escalated is not None and slot_pid() == before,
        "scene 3: no restart, an incident instead "
        + (f"{escalated:.1f}s after the trigger" if escalated is not None else "— not seen"),
    )
    page: dict[str, Any] | None = None
    if opened is not None:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        details = incident_status(opened)
        while not details.get("dedupKey") and time.monotonic() < deadline:
            time.sleep(POLL_S)
            details = incident_status(opened)
        page = wait_for_page(notify, details["dedupKey"]) if details.get("dedupKey") else None
        if page is not None:
            # When the runbook paged (its timeline), not when this loop noticed.
            timeline = incident_status(opened).get("timeline") or []
            paged_at = [e["at"] for e in timeline if e["kind"] == "page"]
            paged = datetime.fromisoformat(paged_at[0]).timestamp() if paged_at else time.time()
            known = {i["id"]: i["state"] for i in notify.pagerduty()["incidents"]}
            scene.line(
                paged,
                "pagerduty",
                f'trigger "{page["payload"]["summary"]}" ({page["payload"]["severity"]}) '
                f"→ incident {page.get('incident')} {known.get(page.get('incident'), '?')}",
            )
            scene.events["page"] = paged - scene.triggered
        print(f"  incident  {incident.UI}/{opened}")
        show_cli("incident", "status", opened)
    checks.check(
        page is not None,
        "scene 3: a page at the local PagerDuty "
        + (f"{scene.events['page']:.1f}s after the trigger" if page is not None else "— none"),
    )
    resolved = False
    if opened is not None:
        show_cli("incident", "resolve", opened, "--reason", "make demo: the slot is unhung now")
        deadline = time.monotonic() + LEFTOVER_TIMEOUT_S
        while stack.workflow_running(opened) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        states = [
            i["state"]
            for i in notify.pagerduty()["incidents"]
            if page is not None and i["dedup_key"] == page["dedup_key"]
        ]
        resolved = not stack.workflow_running(opened) and states == ["resolved"]
        checks.check(
            resolved,
            f"scene 3: incident resolved; at PagerDuty: {', '.join(states) or 'none'}",
        )
    slot_post("hang", "0")
    print(f"  $ curl -d 0 http://{STABLE}/admin/hang    → /healthz: {healthz()}")
    scene.ok = escalated is not None and page is not None and resolved
    print()
    return scene


def demo(args: argparse.Namespace) -> int:
    print("==> stack up")
    stack.up(PARTS)
    source = MONITOR_SOURCE
    original = load_monitor(source.read_text(), str(source))
    healer_id = healer_workflow_id(original.spec.service, original.spec.environment)
    temporal = Temporal()
    seconds = min(args.load_seconds, LOAD_SECONDS)
    scenes: list[Scene] = []
    checks = Checks()
    try:
        end_leftovers(temporal, healer_id)
        processes.stop("load")
        processes.start(
            stack.load_component(seconds, LOAD_RATE, port=stack.STABLE_PORT, report_every=10.0)
        )
        time.sleep(LOAD_WARMUP_S)
        print()

        print(f"==> the monitor: {source.relative_to(REPO)}")
        relative = str(source.relative_to(REPO))
        if not show_cli("monitor", "schedule", relative):
            return 1
        state = temporal.schedule(original.schedule_id).schedule.state
        if state.paused and state.note == DEMO_NOTE:
            print("  (paused by an earlier run of this demo: unpausing it for this one)")
            show_cli("monitor", "unpause", original.name, "--note", "unpaused by make demo")
        elif state.paused:
            print("  (paused by someone else: left paused; triggered runs still run)")
        print(f"  schedule  {TEMPORAL_UI}/schedules/{original.schedule_id}")
        rendered, changed = render_monitor(source)
        print(f"  for the demo, a copy with {changed}:")
        if not show_cli("monitor", "schedule", str(rendered)):
            return 1
        show_cli("monitor", "list")
        monitor = load_monitor(rendered.read_text(), str(rendered))
        print()

        for play in (scene_unresponsive, scene_leak, scene_budget):
            scene = play(temporal, monitor, healer_id, checks)
            scenes.append(scene)
            if not scene.ok:
                print(f"==> scene {len(scenes)} ({scene.title}) did not happen: stopping here")
                break
    except (StackError, OSError) as e:
        print(f"demo: {e}")
        checks.check(False, f"the demo ran to the end ({e})")
    finally:
        print("==> the schedule stops firing at the demo stack")
        show_cli("monitor", "pause", original.name, "--note", DEMO_NOTE)
        temporal.close()
    print()

    print("==> results")
    for line in checks.failed:
        print(f"  FAILED {line}")
    ok = not checks.failed and len(scenes) == 3 and all(s.ok for s in scenes)
    print(f"  {'all three scenes happened' if ok else 'NOT every scene happened'}")
    print()
    stack.status(PARTS)
    address = f"--address {HOST}:{stack.TEMPORAL_PORT}"
    print(
        f"\nSchedule:  {TEMPORAL_UI}/schedules/{original.schedule_id}"
        f"\n           TEMPORAL_ADDRESS={HOST}:{stack.TEMPORAL_PORT} .venv/bin/deployflow "
        f"monitor list   (unpause / trigger {original.name})"
        f"\nHealer:    {TEMPORAL_UI}/workflows/{healer_id}"
        f"\n           .venv/bin/temporal workflow query --workflow-id {healer_id} "
        f"--name status {address}"
        f"\nMonitor:   {TEMPORAL_UI}/workflows?query=WorkflowType%3D%22ServiceMonitor%22"
        f"\nLoad:      {LOAD_RATE:g} req/s to the stable slot, for {seconds}s from its start (runs "
        "judge the SLOs by it: with no traffic their queries return NaN, an inconclusive run)"
        f"\nPagerDuty: curl -s --cacert {stack.NOTIFY_DIR.relative_to(REPO)}/"
        f"notify-local-cert.pem https://{HOST}:{stack.PAGERDUTY_PORT}/_received"
        "\nAgain: make demo SCENARIO=self-healing. The stack stays up; `make down` stops it."
    )
    return 0 if ok else 1
