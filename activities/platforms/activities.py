"""Temporal activities that put versions onto hosts and Kubernetes Deployments. Sync ``def``:
the worker runs them on a thread pool.

Both are declarative and keyed: ``deploy v2 to 10.0.0.5:8080`` twice runs v2 once when the
platform can read back what runs (``changed=False`` the second time). While a command runs
the activity heartbeats every second with its latest output line, so set a
``heartbeat_timeout`` of a few seconds (the workflows use 3 s) and a cancel reaches the
command, whose process group is then killed. Set ``start_to_close_timeout`` above the
platform's own command timeout.

The Kubernetes activities (``record_stable``, ``apply_canary``, ``set_stable``,
``scale_workload``, ``restart_workload``) are declarative too: each sets a state (this
template, these replicas, this restart time) and reads back first, so a retry after a
SIGKILL finds the change made and only waits. They heartbeat every second (and with each
rollout state they see), so a ``heartbeat_timeout`` of a few seconds notices a dead worker.
"""

from __future__ import annotations

import time

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.clients import Clients
from activities.errors import INVALID_SPEC, failure
from activities.heartbeat import keep_alive
from activities.log_fields import attempt, ms_since
from activities.platforms.base import Action, ActionResult, Platform, Target
from activities.platforms.factory import deployments_for, platform_for
from activities.platforms.kubernetes import KubernetesDeployments
from activities.platforms.models import (
    ApplyCanaryInput,
    CurrentVersionInput,
    PauseInput,
    PlatformActionInput,
    RecordStableInput,
    RestartInput,
    ScaleInput,
    SetStableInput,
    StableRecord,
    WorkloadState,
)
from activities.platforms.spec import KubernetesPlatformSpec

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

    @activity.defn(name="record_stable")
    def record_stable(self, input: RecordStableInput) -> StableRecord:
        """The stable Deployment's exact pod template, before the run changes anything."""
        started = time.monotonic()
        with keep_alive("reading the stable deployment"):
            record = self._deployments(input.platform).record()
        log.info(
            "kubernetes_stable_recorded",
            key=input.key,
            deployment=record.deployment,
            version=record.version,
            replicas=record.replicas,
            duration_ms=ms_since(started),
        )
        return record

    @activity.defn(name="apply_canary")
    def apply_canary(self, input: ApplyCanaryInput) -> WorkloadState:
        """Create or update the canary Deployment and wait until it has rolled out."""
        with keep_alive(f"canary {input.version}"):
            state = self._deployments(input.platform).apply_canary(
                input.stable, input.version, input.replicas, input.rollout
            )
        return _logged("kubernetes_canary_applied", input.key, state)

    @activity.defn(name="set_stable")
    def set_stable(self, input: SetStableInput) -> WorkloadState:
        """Set the stable Deployment's pod template exactly and wait for its rollout."""
        with keep_alive("updating the stable deployment"):
            state = self._deployments(input.platform).set_stable(
                input.template,
                input.strategy,
                input.progress_deadline_seconds,
                input.rollout,
                input.uid,
            )
        return _logged("kubernetes_stable_set", input.key, state)

    @activity.defn(name="scale_workload")
    def scale_workload(self, input: ScaleInput) -> WorkloadState:
        """Set a Deployment's replicas (``/scale``); no wait."""
        with keep_alive(f"scaling {input.workload} to {input.replicas}"):
            state = self._deployments(input.platform).scale(input.workload, input.replicas)
        return _logged("kubernetes_scaled", input.key, state)

    @activity.defn(name="pause_workload")
    def pause_workload(self, input: PauseInput) -> WorkloadState:
        """``kubectl rollout pause`` / ``resume`` (``spec.paused``); no wait."""
        with keep_alive(f"{'pausing' if input.paused else 'resuming'} {input.workload}"):
            state = self._deployments(input.platform).pause(input.workload, input.paused)
        event = "kubernetes_paused" if input.paused else "kubernetes_resumed"
        return _logged(event, input.key, state)

    @activity.defn(name="restart_workload")
    def restart_workload(self, input: RestartInput) -> WorkloadState:
        """``kubectl rollout restart`` at the workflow's time, then wait for the rollout."""
        with keep_alive(f"restarting {input.workload}"):
            state = self._deployments(input.platform).restart(input.workload, input.at)
        return _logged("kubernetes_restarted", input.key, state)

    def _deployments(self, spec: KubernetesPlatformSpec) -> KubernetesDeployments:
        return deployments_for(spec, self.clients, _heartbeat)


def _logged(event: str, key: str, state: WorkloadState) -> WorkloadState:
    log.info(event, key=key, attempt=attempt(), **state.model_dump(by_alias=False))
    return state


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
