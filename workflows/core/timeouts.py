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
AGENT_DEADLINE = timedelta(seconds=90)
"""Schedule-to-close of a traffic activity moving forward on one load balancer's agent (a
router with ``instances``), over all its attempts: an attempt waits in the agent's task
queue while no agent polls it. An agent its supervisor restarts is back within seconds and
the shift completes; one that stays away fails the step, and the rollout rolls every
instance back (its rollback waits for the agent for as long as it takes). Above one
attempt's worst case (``ROUTER_START_TO_CLOSE``)."""
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
KUBERNETES_HEARTBEAT = timedelta(seconds=5)
"""Kubernetes activities heartbeat every second (``keep_alive``) and with every rollout state
their watch sees; a watch read blocks at most 5 s, which is also how long a cancel waits."""
KUBERNETES_CALL = timedelta(seconds=60)
"""Start-to-close of a Kubernetes activity that does not wait for a rollout (read, scale):
a few calls of at most 23 s each (``activities.kubeconfig.REQUEST_TIMEOUT``)."""
KUBERNETES_WAIT_SLACK = timedelta(seconds=120)
"""Added to a Deployment's ``progressDeadlineSeconds`` for an activity that waits for its
rollout: the activity gives up 60 s after the deadline the controller should have noticed."""
