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
ROUTER_HEARTBEAT = timedelta(seconds=3)
"""Router and measure activities heartbeat every second; the SDK sends one per 2.4 s."""
PLATFORM_HEARTBEAT = timedelta(seconds=4)
"""Platform actions heartbeat every second with their latest output line (the SDK sends one
per 3.2 s at this timeout): a worker killed mid-deploy is noticed within a few seconds."""
