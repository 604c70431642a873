"""How long activities may take, and how soon a dead worker's activity is noticed.

Every short activity heartbeats while it works (``activities.heartbeat.keep_alive``, or its
own progress heartbeats), so its heartbeat timeout, not its start-to-close timeout, is what a
worker SIGKILLed in the middle costs: the server times the attempt out after the heartbeat
timeout and the retry policy hands it to a replacement worker. Start-to-close timeouts stay
above each activity's own worst case, so a slow but live call is never cut short.
"""

from __future__ import annotations

from datetime import timedelta

ROUTER_START_TO_CLOSE = timedelta(seconds=75)
"""Above a router's own worst case: its test and reload commands time out at 30 s each."""
ROUTER_HEARTBEAT = timedelta(seconds=2)
"""Router and measure activities heartbeat every second; the SDK sends one per 1.6 s. They
take milliseconds, so only a dead worker (or a router command hanging for seconds, which
the heartbeats cover) comes near it."""
PLATFORM_HEARTBEAT = timedelta(seconds=2)
"""Platform actions heartbeat every second with their latest output line (the SDK sends one
per 1.6 s at this timeout): a worker killed mid-deploy is noticed within 2 s. At 3 s the
chaos benchmark's kill → progress p95 sat on the timeout itself (3.03 s)."""
CHECK_HEARTBEAT = timedelta(seconds=2)
"""Smoke tests heartbeat every second while a request is out (``keep_alive``)."""

WORKFLOW_TASK_TIMEOUT = timedelta(seconds=5)
"""Start-to-close of every deployflow workflow task (the server's default is 10 s): what a
worker SIGKILLed while holding one costs the run. A worker that has not cached the run
replays its whole history inside the task; canaries continue as new at 2,000 events, which
replay in about 1 s on 2 loaded cores (``bench/replay_cost.py``: ~0.5 ms per event), and a
worker runs at most ``workers.main.WORKFLOW_TASKS_IN_FLIGHT`` tasks at once, so a mass cold
start (a worker restarted under 200 running rollouts) queues at the server instead of timing
out tasks the worker started and could not finish in time."""
