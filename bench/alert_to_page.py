"""Alert → page: how long from an alert becoming active in Alertmanager to the page
arriving at PagerDuty, and how many duplicate pages repeats and a killed worker cause.

    .venv/bin/python examples/demo/stack.py up          # the demo stack, incident parts too
    .venv/bin/python bench/alert_to_page.py [--rounds 6] [--kill-every 2]

Runs against the demo stack (``make demo SCENARIO=incident`` leaves it up): its stable slot,
Prometheus alert rule, real Alertmanager (group_wait 1 s, repeat every 10 s), ``deployflow
serve``, the worker and the local PagerDuty/Slack servers. Each round injects errors into the
stable slot, takes the time the alert is first active in Alertmanager (polled every 50 ms)
and the time the first trigger for a new dedup key reaches the local PagerDuty, keeps the
errors on until Alertmanager has repeated the notification, then stops them and waits for
the PagerDuty incident to resolve. Every ``--kill-every``-th round SIGKILLs the stack's
worker (by its recorded PID) at a random moment between the alert and 1.5 s after it, and
starts it again at once (``stack.py up worker``). A duplicate page is a trigger beyond the
first for an incident's dedup key, or a second PagerDuty incident for one round.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

from common import REPO, machine, run_stamp, summary

sys.path.insert(0, str(REPO / "examples" / "demo"))
import incident  # the demo's observers (Alertmanager, local PagerDuty)
import processes
import stack

ROUND_TIMEOUT_S = 120.0
POLL_S = 0.05
T = TypeVar("T")


def triggers(notify: incident.Notify) -> list[dict[str, object]]:
    events: list[dict[str, object]] = notify.pagerduty()["events"]
    return [e for e in events if e.get("event_action") == "trigger"]


def wait_for(check: Callable[[], T], what: str, timeout: float = ROUND_TIMEOUT_S) -> T:
    """Poll ``check`` until it returns something truthy; that value (exit on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not within {timeout:.0f} s")
        time.sleep(POLL_S)


def kill_and_restart_worker(delay: float) -> None:
    """SIGKILL the stack's worker ``delay`` s from now (by its recorded PID), start it again."""
    pid = processes.running_pid("worker")
    assert pid is not None, "the stack's worker is not running"
    time.sleep(delay)
    os.kill(pid, signal.SIGKILL)
    subprocess.run(
        [sys.executable, str(REPO / "examples" / "demo" / "stack.py"), "up", "worker"],
        check=True,
        cwd=REPO,
        capture_output=True,
        timeout=120,
    )


def one_round(notify: incident.Notify, kill: bool) -> tuple[float, int, int]:
    """(alert → page seconds, triggers for its dedup key, new PagerDuty incidents)."""
    incident.end_leftovers()
    before = {str(e["dedup_key"]) for e in triggers(notify)}
    incidents_before = len(notify.pagerduty()["incidents"])
    with stable_load():
        incident.set_error_rate(1.0)
        wait_for(incident.firing_alerts, "the alert in Alertmanager")
        active = time.monotonic()
        if kill:
            kill_and_restart_worker(random.uniform(0.0, 1.5))
        new = wait_for(
            lambda: [e for e in triggers(notify) if str(e["dedup_key"]) not in before],
            "the page",
        )
        paged = time.monotonic()
        key = str(new[0]["dedup_key"])
        # Let Alertmanager repeat the notification (every 10 s in the demo stack) twice.
        time.sleep(21.0)
        incident.set_error_rate(0.0)
        wait_for(
            lambda: any(
                i["dedup_key"] == key and i["state"] == "resolved"
                for i in notify.pagerduty()["incidents"]
            ),
            "the page resolved",
            timeout=180,
        )
    count = sum(1 for e in triggers(notify) if e["dedup_key"] == key)
    incidents = len(notify.pagerduty()["incidents"]) - incidents_before
    return paged - active, count, incidents


@contextlib.contextmanager
def stable_load() -> Iterator[None]:
    """Light bounded load on the stable slot so the error ratio exists."""
    process = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "examples" / "demo" / "load.py"),
            "--url",
            f"http://127.0.0.1:{stack.STABLE_PORT}/",
            "--rate",
            "10",
            "--seconds",
            "240",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--kill-every", type=int, default=2, help="0: never kill the worker")
    args = parser.parse_args()
    print(f"{run_stamp()} — {machine()} — load average {os.getloadavg()[0]:.1f}")
    if not Path(stack.NOTIFY_STATE).exists():
        print("the demo stack's incident parts are not up: examples/demo/stack.py up")
        return 2
    notify = incident.Notify()
    delays: list[float] = []
    delays_killed: list[float] = []
    duplicates = 0
    for n in range(1, args.rounds + 1):
        kill = args.kill_every > 0 and n % args.kill_every == 0
        delay, count, incidents = one_round(notify, kill)
        (delays_killed if kill else delays).append(delay)
        extra = (count - 1) + max(0, incidents - 1)
        duplicates += extra
        worker = "worker killed" if kill else "worker up"
        print(
            f"round {n}: alert → page {delay:.2f} s; triggers {count}, "
            f"PagerDuty incidents {incidents} ({worker}); duplicates {extra}"
        )
    print(f"alert active in Alertmanager → page at PagerDuty: {summary(delays, 's')}")
    if delays_killed:
        print(f"  in rounds with the worker killed and restarted: {summary(delays_killed, 's')}")
    print(f"duplicate pages: {duplicates} ({'met' if duplicates == 0 else 'MISSED'}: must be 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
