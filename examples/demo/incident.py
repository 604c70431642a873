"""The incident demo (``make demo SCENARIO=incident``): an alert becomes a PagerDuty page, a
Slack thread and a remediation, in one IncidentRunbook workflow.

1. ``stack.py up`` of what it needs: the Temporal dev server, the stable slot, the local
   PagerDuty (HTTPS) and Slack servers, the worker (restarted with their environment if it
   was started without it), ``deployflow serve`` (runbooks ``examples/runbooks/checkout.yaml``),
   Alertmanager (webhook to serve with a Bearer token, repeats every 10 s) and Prometheus
   (rule ``CheckoutHighErrorRate``: the stable slot's 5xx ratio over 10 s above 0.5).
2. What an earlier run left is ended: errors in the stable slot (rate back to 0; its alert
   must be gone from Alertmanager) and an open incident (resolved, or terminated).
3. Light load straight to the stable slot (bounded), then errors injected (rate 1.0).
4. The chain as it happens, in seconds since the errors were injected: the alert in
   Alertmanager, events at PagerDuty, the Slack channel and thread, the workflow's timeline
   (its wait, its restart of the slot through the stack, the alert resolving, resolution).
   Alertmanager, PagerDuty and Slack are polled every POLL_S in a thread (that is how the
   alert → page time is measured); the workflow through ``deployflow incident list/status``.
5. The checks, each bounded by INCIDENT_TIMEOUT_S: alert active, page, at least two repeated
   notifications to the open incident, restart, alert resolved, workflow resolved by
   Alertmanager, PagerDuty incident resolved with exactly one trigger for its dedup key (no
   duplicate page), Slack root message marked RESOLVED. Exit 1 if any fails.

The notify servers keep what they received while they run, so every count here is of this
run's incident: its dedup key, its Slack message. The stack stays up afterwards.
"""

from __future__ import annotations

import argparse
import json
import ssl
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import processes
import stack
from processes import HOST, LOGS, REPO, StackError

POLL_S = 0.05
LOAD_RATE = 10.0
LOAD_SECONDS = 300
LOAD_REPORT_S = 5.0
ALERT_CLEAR_TIMEOUT_S = 60.0  # an earlier run's alert: ~10 s until its ratio drops
LEFTOVER_TIMEOUT_S = 30.0
INCIDENT_TIMEOUT_S = 180.0  # the runbook needs ~60 s: a 30 s wait, restart, 10 s quiet
STATUS_EVERY_S = 1.0
REPEATS_WANTED = 2
ALERTMANAGER = f"http://{HOST}:{stack.ALERTMANAGER_PORT}"
UI = f"http://localhost:{stack.TEMPORAL_UI_PORT}/namespaces/default/workflows"


@dataclass(order=True)
class Line:
    at: float  # time.time()
    source: str
    text: str


def set_error_rate(rate: float) -> None:
    url = f"http://{HOST}:{stack.STABLE_PORT}/admin/error-rate"
    request = urllib.request.Request(url, data=str(rate).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=2.0) as response:
        response.read()
    print(f"  {'stable':<12} error rate set to {rate:g}")


def get_json(url: str, context: ssl.SSLContext | None = None) -> Any:
    with urllib.request.urlopen(url, timeout=2.0, context=context) as response:
        return json.load(response)


class Notify:
    """The local PagerDuty and Slack servers' ``/_received``, as the stack started them."""

    def __init__(self) -> None:
        state = json.loads(stack.NOTIFY_STATE.read_text())
        self.pagerduty_url = state["pagerduty"]["received_url"]
        self.slack_url = state["slack"]["received_url"]
        self.tls = ssl.create_default_context(cafile=state["pagerduty"]["ca_file"])

    def pagerduty(self) -> dict[str, Any]:
        received: dict[str, Any] = get_json(self.pagerduty_url, self.tls)
        return received

    def slack(self) -> dict[str, Any]:
        received: dict[str, Any] = get_json(self.slack_url)
        return received


def firing_alerts() -> list[dict[str, Any]]:
    """The demo alert while Alertmanager holds it unresolved (in any state)."""
    query = urllib.parse.urlencode({"filter": f'alertname="{stack.ALERT_NAME}"'})
    alerts: list[dict[str, Any]] = get_json(f"{ALERTMANAGER}/api/v2/alerts?{query}")
    now = datetime.now(UTC)
    return [a for a in alerts if datetime.fromisoformat(a["endsAt"]) > now]


@dataclass
class Observed:
    """What the observer saw, with when (time.monotonic()) it first saw it."""

    received_at: float | None = None  # the alert in Alertmanager
    paged_at: float | None = None
    paged_key: str | None = None  # the first page's dedup key
    cleared_at: float | None = None
    lines: list[Line] = field(default_factory=list)


class Observer:
    """Polls Alertmanager, PagerDuty and Slack every POLL_S in a thread; keeps a line for
    every change, and when the alert became active and the first page arrived."""

    def __init__(self, notify: Notify) -> None:
        self.notify = notify
        self.seen = Observed()
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._events = len(notify.pagerduty()["events"])  # before this run
        self._messages = len(notify.slack()["messages"])
        self._edits: dict[str, int] = {}
        self._firing = False

    def __enter__(self) -> Observer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)

    def take(self) -> list[Line]:
        with self._lock:
            lines, self.seen.lines = self.seen.lines, []
        return lines

    def _add(self, source: str, text: str) -> None:
        with self._lock:
            self.seen.lines.append(Line(time.time(), source, text))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._alertmanager()
                self._pagerduty()
                self._slack()
            except (OSError, ValueError, KeyError) as e:
                if len(self.errors) < 5:  # one bad poll is no reason to stop looking
                    self.errors.append(f"{type(e).__name__}: {e}")
            self._stop.wait(POLL_S)

    def _alertmanager(self) -> None:
        alerts = firing_alerts()
        now = time.monotonic()
        if alerts and not self._firing:
            self._firing = True
            if self.seen.received_at is None:
                self.seen.received_at = now
            labels = alerts[0]["labels"]
            shown = " ".join(f"{k}={labels[k]}" for k in ("severity", "service", "environment"))
            state = alerts[0]["status"]["state"]
            self._add("alertmanager", f"{stack.ALERT_NAME} firing, {state} ({shown})")
        if not alerts and self._firing:
            self._firing = False
            self.seen.cleared_at = time.monotonic()
            self._add("alertmanager", f"{stack.ALERT_NAME} resolved")

    def _pagerduty(self) -> None:
        received = self.notify.pagerduty()
        events = received["events"][self._events :]
        if not events:
            return
        self._events += len(events)
        states = {i["id"]: i["state"] for i in received["incidents"]}
        for event in events:
            action, incident = event["event_action"], event.get("incident")
            if action == "trigger" and self.seen.paged_at is None:
                self.seen.paged_at = time.monotonic()
                self.seen.paged_key = event["dedup_key"]
            if action == "trigger":
                summary = event["payload"]["summary"]
                text = f'trigger "{summary}" → incident {incident}'
            else:
                text = f"{action} → incident {incident} {states.get(incident, '?')}"
            self._add("pagerduty", text)

    def _slack(self) -> None:
        received = self.notify.slack()
        names = {channel_id: name for name, channel_id in received["channels"].items()}
        messages = received["messages"]
        for message in messages[self._messages :]:
            first, *rest = message["text"].splitlines() or [""]
            where = "  ↳ thread" if message["thread_ts"] else f"#{names[message['channel']]}"
            self._add("slack", f"{where}: {first}" + "".join(f"\n{' ' * 26}{r}" for r in rest))
            self._edits[message["ts"]] = len(message["edits"])
        self._messages = len(messages)
        for message in messages:
            edits = self._edits.get(message["ts"])
            if edits is not None and len(message["edits"]) > edits:
                self._edits[message["ts"]] = len(message["edits"])
                self._add("slack", f"message edited: {message['text']}")


@dataclass
class Incident:
    """The run's incident as ``deployflow incident status --json`` shows it."""

    workflow_id: str
    status: dict[str, Any] = field(default_factory=dict)
    firing_notifications: int = 0  # the most seen while the alert still fired
    shown: set[tuple[str, str, str]] = field(default_factory=set)

    def refresh(self) -> list[Line] | None:
        """Query its status; new timeline events (and repeated notifications) as lines;
        None when the query failed."""
        asked = time.time()
        done = stack.cli("incident", "status", self.workflow_id, "--json")
        if done.returncode != 0:
            return None
        self.status = json.loads(done.stdout)
        lines = []
        if self.status["alertStatus"] == "firing":
            seen = self.firing_notifications
            self.firing_notifications = max(seen, self.status["notifications"])
            for n in range(max(seen, 1) + 1, self.firing_notifications + 1):
                text = f"firing notification {n} (repeat {n - 1}) reached the open incident"
                lines.append(Line(asked, "alertmanager", text))
        for event in self.status["timeline"]:
            key = (event["at"], event["kind"], event["message"])
            if key not in self.shown:
                self.shown.add(key)
                at = datetime.fromisoformat(event["at"]).timestamp()
                lines.append(Line(at, "workflow", f"{event['kind']}: {event['message']}"))
        return lines

    @property
    def url(self) -> str:
        return f"{UI}/{self.workflow_id}"


def open_incidents() -> list[dict[str, Any]]:
    """Open IncidentRunbook workflows of the demo service (``deployflow incident list``)."""
    done = stack.cli("incident", "list", "--json")
    if done.returncode != 0:
        raise StackError(f"deployflow incident list failed:\n{done.stderr.strip()}")
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return [r for r in rows if r["service"] == stack.SERVICE]


def end_leftovers() -> None:
    """An earlier run's alert and open incident would swallow this run's alert: errors off
    first, then wait until Alertmanager no longer has the alert, then resolve the incident."""
    processes.stop("load")
    set_error_rate(0.0)
    deadline = time.monotonic() + ALERT_CLEAR_TIMEOUT_S
    if firing_alerts():
        print(f"  {stack.ALERT_NAME} still fires from an earlier run: waiting until it resolves")
    while firing_alerts():
        if time.monotonic() > deadline:
            raise StackError(f"{stack.ALERT_NAME} still active after {ALERT_CLEAR_TIMEOUT_S:.0f}s")
        time.sleep(0.5)
    resolve_open_incidents()


def resolve_open_incidents() -> None:
    """Resolve the incidents an earlier run left open (terminated if they do not close)."""
    for row in open_incidents():
        workflow_id = row["workflowId"]
        print(f"  {workflow_id} is still open from an earlier run: resolving it")
        stack.cli("incident", "resolve", workflow_id, "--reason", "make demo starts afresh")
        stack.close_or_terminate(workflow_id, LEFTOVER_TIMEOUT_S)


def find_incident(since: datetime) -> Incident | None:
    """The incident this run's alert opened (started after ``since``)."""
    for row in open_incidents():
        started = row.get("started") or row["opened"]  # the key's earlier name
        if datetime.fromisoformat(started) >= since:
            return Incident(row["workflowId"])
    return None


class Printer:
    """Prints lines in time order: the workflow's events are known only when its status is
    queried, so lines newer than the last query wait for the next one."""

    def __init__(self, injected: float) -> None:
        self.injected = injected
        self.pending: list[Line] = []

    def add(self, lines: list[Line]) -> None:
        self.pending += lines

    def flush(self, until: float | None = None) -> None:
        """Print the pending lines up to ``until`` (all of them by default)."""
        ready = sorted(line for line in self.pending if until is None or line.at <= until)
        self.pending = [line for line in self.pending if line not in ready]
        for line in ready:
            print(f"  [{line.at - self.injected:6.1f}s] {line.source:<13} {line.text}")


def follow(observer: Observer, injected_wall: float) -> Incident | None:
    """Print the chain as it happens until the incident workflow closed, or until
    INCIDENT_TIMEOUT_S passes; the incident, if one opened."""
    since = datetime.fromtimestamp(injected_wall, UTC)
    deadline = time.monotonic() + INCIDENT_TIMEOUT_S
    printer = Printer(injected_wall)
    incident: Incident | None = None
    try:
        while time.monotonic() < deadline:
            asked = time.time()
            if incident is None:
                incident = find_incident(since)
            lines = incident.refresh() if incident is not None else None
            printer.add(observer.take())
            if incident is None or lines is None:  # nothing known of the workflow yet
                time.sleep(STATUS_EVERY_S)
                continue
            printer.add(lines)
            printer.flush(until=asked)
            if incident.status["phase"] == "Resolved" and not stack.workflow_running(
                incident.workflow_id
            ):
                printer.add(incident.refresh() or [])  # the events of its last moments
                time.sleep(0.5)  # PagerDuty's and Slack's last requests, to the observer
                printer.add(observer.take())
                return incident
            time.sleep(max(0.0, STATUS_EVERY_S - (time.time() - asked)))
        print(f"  the incident did not resolve within {INCIDENT_TIMEOUT_S:.0f}s of the errors")
        return incident
    finally:
        printer.flush()


class Checks:
    def __init__(self) -> None:
        self.failed: list[str] = []

    def check(self, ok: bool, text: str) -> None:
        print(f"  {'ok    ' if ok else 'FAILED'} {text}")
        if not ok:
            self.failed.append(text)


def verify(incident: Incident | None, observer: Observer, notify: Notify) -> bool:
    """The demo's claims, each printed with its number; True when they all hold."""
    checks = Checks()
    seen = observer.seen
    checks.check(seen.received_at is not None, f"{stack.ALERT_NAME} fired in Alertmanager")
    if seen.received_at is not None and seen.paged_at is not None:
        took = seen.paged_at - seen.received_at
        checks.check(
            True,
            f"alert active in Alertmanager → page at PagerDuty: {took:.2f} s (a new alert "
            "group waits group_wait, 1 s, before its first notification)",
        )
    else:
        checks.check(False, "a page arrived at PagerDuty")
    checks.check(seen.cleared_at is not None, f"{stack.ALERT_NAME} resolved in Alertmanager")
    if incident is None or not incident.status:
        checks.check(False, "an incident workflow opened for the alert")
        return False
    status = incident.status
    repeats = incident.firing_notifications - 1
    checks.check(
        repeats >= REPEATS_WANTED,
        f"Alertmanager repeated the firing notification {repeats} times while the incident "
        f"was open ({status['notifications']} notifications in all, the resolution included)",
    )
    checks.check(status["restarts"] >= 1, f"the runbook restarted the slot ({status['restarts']}x)")
    checks.check(
        status["phase"] == "Resolved" and status["resolvedBy"] == "alertmanager",
        f"incident {status['phase']} by {status['resolvedBy']} "
        f"after {status['timeToResolveSeconds'] or 0:.0f} s",
    )
    pagerduty = notify.pagerduty()
    dedup_key = status["dedupKey"]
    checks.check(seen.paged_key == dedup_key, "the page measured above is this incident's")
    triggers = [
        e
        for e in pagerduty["events"]
        if e["dedup_key"] == dedup_key and e["event_action"] == "trigger"
    ]
    checks.check(
        len(triggers) == 1,
        f"duplicate pages: {len(triggers) - 1} ({len(triggers)} trigger event(s) for dedup key "
        f"{dedup_key})",
    )
    states = [i["state"] for i in pagerduty["incidents"] if i["dedup_key"] == dedup_key]
    checks.check(states == ["resolved"], f"PagerDuty incident: {', '.join(states) or 'none'}")
    slack = status.get("slack") or {}
    messages = notify.slack()["messages"]
    ours = (slack.get("channel"), slack.get("ts"))
    root = next((m for m in messages if (m["channel"], m["ts"]) == ours), None)
    replies = [m for m in messages if root and (m["channel"], m["thread_ts"]) == ours]
    checks.check(
        root is not None and root["text"].startswith(":white_check_mark: RESOLVED"),
        f"Slack root message: {root['text'] if root else 'none'} ({len(replies)} replies)",
    )
    for error in observer.errors:
        print(f"  (a poll failed once: {error})")
    return not checks.failed


def show_load(offset: int) -> None:
    """What the load generator's clients got since ``offset`` of its log."""
    try:
        with (LOGS / "load.log").open("rb") as log:
            log.seek(offset)
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return
    print("  what the load saw (requests per status, [answers per version]):")
    for line in lines:
        if " load: " in line and "req/s to" not in line:
            print(f"    {line}")


def demo(args: argparse.Namespace) -> int:
    print("==> stack up")
    stack.up(stack.INCIDENT_PARTS)
    end_leftovers()
    notify = Notify()
    load_log = LOGS / "load.log"
    offset = load_log.stat().st_size if load_log.exists() else 0
    seconds = min(args.load_seconds, LOAD_SECONDS)
    processes.start(
        stack.load_component(seconds, LOAD_RATE, port=stack.STABLE_PORT, report_every=LOAD_REPORT_S)
    )
    time.sleep(3.0)  # a few scrapes of healthy traffic first
    print()
    print(
        f"==> errors into the stable slot {HOST}:{stack.STABLE_PORT}: {stack.ALERT_NAME} → "
        f"Alertmanager → deployflow serve → IncidentRunbook ({stack.RUNBOOKS.relative_to(REPO)})"
    )
    with Observer(notify) as observer:
        injected = time.time()
        set_error_rate(1.0)
        incident = follow(observer, injected)
    print()
    show_load(offset)
    print()
    print("==> results")
    ok = verify(incident, observer, notify)
    print()
    stack.status(stack.INCIDENT_PARTS)
    tls = f"--cacert {stack.NOTIFY_DIR.relative_to(REPO)}/notify-local-cert.pem"
    print(
        "\nIncident:     "
        + (incident.url if incident else "(none opened)")
        + f"\n              TEMPORAL_ADDRESS={HOST}:{stack.TEMPORAL_PORT} .venv/bin/deployflow "
        + "incident status "
        + (incident.workflow_id if incident else stack.SERVICE)
        + f"\nAlertmanager: {ALERTMANAGER}/#/alerts"
        + f"\nPrometheus:   http://{HOST}:{stack.PROMETHEUS_PORT}/alerts"
        + f"\nPagerDuty:    curl -s {tls} https://{HOST}:{stack.PAGERDUTY_PORT}/_received"
        + f"\nSlack:        curl -s http://{HOST}:{stack.SLACK_PORT}/_received"
        + "\nAgain: make demo SCENARIO=incident. The stack stays up; `make down` stops it."
    )
    return 0 if ok else 1
