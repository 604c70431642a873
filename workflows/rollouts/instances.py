"""Traffic on a router with several load balancers (``router.instances``).

Every traffic activity goes to each instance's agent (its own task queue) at once, and
counts as done only when all of them report: the step waits for every instance's activity
to finish, even after one failed, so no change is still in flight on one load balancer
when the rollback starts on all of them. A failure on one is raised naming it, once all
finished; the rollout's rollback path (any exception rolls back first) then sets every
instance to the same stable split. Instances that succeed but read back different values
(someone edited one by hand) are a failure too.

A router without instances takes exactly the one activity it always did, on the worker's
own queue, so histories recorded before instances existed replay unchanged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from activities import errors
    from activities.errors import root_cause
    from activities.model import Model
    from activities.routing.base import Weights
    from activities.routing.spec import RouterInstance, RouterSpec
    from workflows.core.timeouts import AGENT_DEADLINE

R = TypeVar("R")


async def on_router(
    activity: str,
    router: RouterSpec,
    make_input: Callable[[RouterSpec], Model],
    result_type: type[R],
    *,
    summary: str,
    **options: Any,
) -> R:
    """``activity`` with ``make_input(router)`` on the worker's queue, or on every instance
    of ``router`` with its own spec; the result all of them agree on. ``options`` are
    ``workflow.execute_activity``'s."""
    on = router.on_instances()
    if not on:
        result: R = await workflow.execute_activity(
            activity, make_input(router), result_type=result_type, summary=summary, **options
        )
        return result
    policy = options.get("retry_policy")
    if policy is not None and policy.maximum_attempts:  # a bounded step, not a rollback
        options = {"schedule_to_close_timeout": AGENT_DEADLINE, **options}
    outcomes = await asyncio.gather(
        *(
            workflow.execute_activity(
                activity,
                make_input(spec),
                task_queue=instance.queue,
                result_type=result_type,
                summary=f"{summary} on {instance.name}",
                **options,
            )
            for instance, spec in on
        ),
        return_exceptions=True,
    )
    instances = [instance for instance, _ in on]
    _raise_first_failure(activity, instances, outcomes)
    first: R = outcomes[0]  # type: ignore[assignment]  # no failures: every outcome is an R
    if any(outcome != first for outcome in outcomes[1:]):
        held = "; ".join(f"{i.name}: {_shown(o)}" for i, o in zip(instances, outcomes, strict=True))
        raise ApplicationError(
            f"{activity}: the load balancers read back different values ({held})",
            type=errors.INSTANCES_DISAGREE,
            non_retryable=True,
        )
    return first


def _raise_first_failure(
    activity: str, instances: list[RouterInstance], outcomes: list[Any]
) -> None:
    failures = [
        (i, o) for i, o in zip(instances, outcomes, strict=True) if isinstance(o, BaseException)
    ]
    for _, outcome in failures:
        if not isinstance(outcome, ActivityError) or is_cancelled_exception(outcome):
            raise outcome  # cancelled (or not the activity's failure): as a single one would
    if failures:
        instance, exc = failures[0]
        others = f" (and {', '.join(i.name for i, _ in failures[1:])})" if failures[1:] else ""
        raise ApplicationError(
            f"{activity} failed on load balancer {instance.name}{others}: {root_cause(exc)}",
            type=errors.ROUTER_INSTANCE_FAILED,
            non_retryable=True,
        ) from exc


def _shown(value: object) -> str:
    if isinstance(value, Weights):
        return f"stable {value.stable} % / canary {value.canary} %"
    return str(value)
