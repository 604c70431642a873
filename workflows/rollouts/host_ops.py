"""Workflow-side calls that act on hosts: deploy, start/stop, health checks, smoke tests,
per-server router states. Each schedules one activity by name with options that suit it;
a failing host becomes a ``Stop`` so the strategy rolls back with a clear reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities.errors import root_cause
    from activities.health.activities import (
        CheckHealthInput,
        HealthReport,
        SmokeReport,
        SmokeTestInput,
    )
    from activities.health.spec import HealthCheck
    from activities.platforms.base import Action, ActionResult
    from activities.platforms.models import CurrentVersionInput, PlatformActionInput
    from activities.routing.base import ServerState, Weights
    from activities.routing.models import GetWeightsInput, SetServerStatesInput, SetWeightInput
    from workflows.core import retry
    from workflows.core.timeouts import (
        CHECK_HEARTBEAT,
        PLATFORM_HEARTBEAT,
        ROUTER_HEARTBEAT,
        ROUTER_START_TO_CLOSE,
    )
    from workflows.rollouts import instances
    from workflows.rollouts.models import RolloutPhase
    from workflows.rollouts.spec import Rollout
    from workflows.rollouts.state import Stop


def supports(rollout: Rollout, action: Action) -> bool:
    """Whether the spec's platform has a command for ``action`` (deploy always does)."""
    command = rollout.spec.platform.command if rollout.spec.platform else None
    return command is not None and bool(getattr(command, action))


async def platform_action(
    rollout: Rollout,
    action: Action,
    target: str,
    key: str,
    *,
    version: str | None = None,
    rolling_back: bool = False,
) -> ActionResult:
    """Run ``action`` on ``target``; a failure is a Stop (unless already rolling back)."""
    platform = rollout.spec.platform
    assert platform is not None  # rollout_problems requires it for these strategies
    timeout = platform.command.timeout_seconds if platform.command else 300.0
    try:
        result: ActionResult = await workflow.execute_activity(
            "platform_action",
            PlatformActionInput(
                platform=platform,
                action=action,
                target=target,
                version=version,
                service=rollout.spec.service,
                key=key,
            ),
            result_type=ActionResult,
            start_to_close_timeout=timedelta(seconds=timeout + 30),
            heartbeat_timeout=PLATFORM_HEARTBEAT,
            retry_policy=retry.ROLLBACK if rolling_back else retry.PLATFORM,
            summary=f"{action} {version or ''} on {target}".replace("  ", " "),
        )
    except ActivityError as exc:
        if is_cancelled_exception(exc) or rolling_back:
            raise
        raise Stop(
            RolloutPhase.ROLLED_BACK,
            f"{action} {version or ''} on {target} failed: {root_cause(exc)}".replace("  ", " "),
        ) from None
    return result


async def current_version(rollout: Rollout, target: str, key: str) -> str | None:
    platform = rollout.spec.platform
    assert platform is not None
    version: str | None = await workflow.execute_activity(
        "current_version",
        CurrentVersionInput(
            platform=platform, target=target, service=rollout.spec.service, key=key
        ),
        result_type=str | None,  # type: ignore[arg-type]
        start_to_close_timeout=timedelta(seconds=60),
        heartbeat_timeout=PLATFORM_HEARTBEAT,
        retry_policy=retry.PLATFORM,
        summary=f"read the version on {target}",
    )
    return version


async def previous_versions(rollout: Rollout, hosts: list[str], key: str) -> dict[str, str | None]:
    """What each host runs before the rollout touches it (None: nothing), for rollback."""
    versions = await asyncio.gather(*(current_version(rollout, h, f"{key}/{h}") for h in hosts))
    return dict(zip(hosts, versions, strict=True))


async def check_health(rollout: Rollout, target: str, key: str) -> HealthReport | None:
    """The health check's verdict on ``target`` (None when the spec has no health check)."""
    check = rollout.spec.health_check
    if check is None:
        return None
    return await check_target(check, target, key)


async def check_target(check: HealthCheck, target: str, key: str) -> HealthReport:
    """``check``'s verdict on ``target``: probes until the thresholds decide."""
    rounds = check.failure_threshold + check.success_threshold
    budget = check.initial_delay_seconds + 10 * rounds * (
        check.period_seconds + check.timeout_seconds
    )
    report: HealthReport = await workflow.execute_activity(
        "check_health",
        CheckHealthInput(check=check, target=target, key=key),
        result_type=HealthReport,
        start_to_close_timeout=timedelta(seconds=budget + 60),
        # It heartbeats after every probe and every second between them (activities/health).
        heartbeat_timeout=timedelta(seconds=3 * check.timeout_seconds + 2),
        retry_policy=retry.CHECK,
        summary=f"health-check {target}",
    )
    return report


async def require_healthy(rollout: Rollout, targets: Iterable[str], key: str) -> list[str]:
    """Health-check ``targets`` together; Stop naming the first unhealthy one. Messages."""
    reports = await asyncio.gather(*(check_health(rollout, t, f"{key}/{t}") for t in targets))
    for report in reports:
        if report is not None and not report.healthy:
            raise Stop(
                RolloutPhase.ROLLED_BACK,
                f"health check failed on {report.target}: {report.message}",
            )
    return [f"{r.target} healthy after {r.probes} probe(s)" for r in reports if r is not None]


async def require_smoke_tests(rollout: Rollout, targets: Iterable[str], key: str) -> int:
    """Run the spec's smoke tests against each target; Stop on the first failure."""
    tests = rollout.spec.smoke_tests
    if not tests:
        return 0
    budget = sum(t.timeout_seconds for t in tests) + 30
    for target in targets:
        report: SmokeReport = await workflow.execute_activity(
            "run_smoke_tests",
            SmokeTestInput(tests=tests, base_url=f"http://{target}", key=f"{key}/{target}"),
            result_type=SmokeReport,
            start_to_close_timeout=timedelta(seconds=budget),
            heartbeat_timeout=CHECK_HEARTBEAT,  # it heartbeats every second while testing
            retry_policy=retry.CHECK,
            summary=f"smoke-test {target}",
        )
        if not report.passed:
            failed = "; ".join(r.message for r in report.results if not r.passed)
            raise Stop(RolloutPhase.ROLLED_BACK, f"smoke tests failed on {target}: {failed}")
    return len(tests)


async def get_weights(rollout: Rollout) -> Weights:
    """The split the router holds (every instance the same, else ``InstancesDisagree``)."""
    return instances.agreed("get_weights", await weights_on_each(rollout))


async def weights_on_each(rollout: Rollout) -> dict[str, Weights]:
    """The split each load balancer holds, by instance name, also when they differ
    (``{"": weights}`` for a router without instances)."""
    weights: dict[str, Weights] = await instances.on_each(
        "get_weights",
        rollout.spec.router,
        lambda router: GetWeightsInput(router=router),
        Weights,
        start_to_close_timeout=ROUTER_START_TO_CLOSE,
        heartbeat_timeout=ROUTER_HEARTBEAT,
        retry_policy=retry.ROUTER,
        summary="read the traffic split",
    )
    return weights


async def set_weights(rollout: Rollout, weights: Weights, key: str) -> Weights:
    """Set absolute weights (no side semantics): for flips outside a rollout."""
    applied: Weights = await instances.on_router(
        "set_weight",
        rollout.spec.router,
        lambda router: SetWeightInput(router=router, weights=weights, key=key),
        Weights,
        start_to_close_timeout=ROUTER_START_TO_CLOSE,
        heartbeat_timeout=ROUTER_HEARTBEAT,
        retry_policy=retry.ROLLBACK,
        summary=f"set weights stable {weights.stable} % / canary {weights.canary} %",
    )
    return applied


async def set_server_states(
    rollout: Rollout, states: dict[str, ServerState], key: str, *, rolling_back: bool = False
) -> None:
    await instances.on_router(
        "set_server_states",
        rollout.spec.router,
        lambda router: SetServerStatesInput(router=router, states=states, key=key),
        dict[str, ServerState],
        start_to_close_timeout=ROUTER_START_TO_CLOSE,
        heartbeat_timeout=ROUTER_HEARTBEAT,
        retry_policy=retry.ROLLBACK if rolling_back else retry.ROUTER,
        summary=" ".join(f"{state} {server}" for server, state in states.items()),
        cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    )
