"""Temporal activities that put versions onto hosts. Sync ``def``: the worker runs them on a
thread pool.

Both are declarative and keyed: ``deploy v2 to 10.0.0.5:8080`` twice runs v2 once when the
platform can read back what runs (``changed=False`` the second time). While a command runs
the activity heartbeats every second with its latest output line, so set a
``heartbeat_timeout`` of a few seconds (the workflows use 3 s) and a cancel reaches the
command, whose process group is then killed. Set ``start_to_close_timeout`` above the
platform's own command timeout.
"""

from __future__ import annotations

import time

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.clients import Clients
from activities.errors import INVALID_SPEC, failure
from activities.log_fields import attempt, ms_since
from activities.platforms.base import Action, ActionResult, Platform, Target
from activities.platforms.factory import platform_for
from activities.platforms.models import CurrentVersionInput, PlatformActionInput

log = structlog.get_logger()


class PlatformActivities:
    """The platform activities, building each platform with the worker's ``clients``."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    @activity.defn(name="platform_action")
    def platform_action(self, input: PlatformActionInput) -> ActionResult:
        """Deploy, start, stop or restart the service on one target; see :class:`ActionResult`."""
        started = time.monotonic()
        # Only the key, kind, action, target and version: never the platform's env values.
        fields = {
            "key": input.key,
            "platform": input.platform.kind,
            "action": input.action,
            "target": input.target,
            "version": input.version if input.action == "deploy" else None,
            "attempt": attempt(),
        }
        try:
            platform = platform_for(input.platform, input.service, self.clients, _heartbeat)
            result = _act(platform, input.action, _target(input.target), input.version)
        except BaseException as e:  # ApplicationError, or the cancel Temporal raises in here
            error = e.type if isinstance(e, ApplicationError) else type(e).__name__
            log.warning(
                "platform_action_failed", **fields, error=error, duration_ms=ms_since(started)
            )
            raise
        log.info(
            "platform_action", **fields, changed=result.changed, duration_ms=result.duration_ms
        )
        return result

    @activity.defn(name="current_version")
    def current_version(self, input: CurrentVersionInput) -> str | None:
        """The version running on the target, or None when nothing runs there."""
        started = time.monotonic()
        platform = platform_for(input.platform, input.service, self.clients, _heartbeat)
        version = platform.current(_target(input.target))
        log.info(
            "current_version",
            key=input.key,
            platform=input.platform.kind,
            target=input.target,
            version=version,
            duration_ms=ms_since(started),
        )
        return version


def _heartbeat(line: str) -> None:
    if activity.in_activity():
        activity.heartbeat(line)


def _target(address: str) -> Target:
    try:
        return Target.parse(address)
    except ValueError as e:
        raise failure(INVALID_SPEC, f"target: {e}") from None


def _act(platform: Platform, action: Action, target: Target, version: str | None) -> ActionResult:
    if action == "deploy":
        if version is None:
            raise failure(INVALID_SPEC, "deploy needs a version")
        return platform.deploy(target, version)
    if action == "start":
        return platform.start(target)
    if action == "stop":
        return platform.stop(target)
    return platform.restart(target)
