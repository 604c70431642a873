"""Traffic on a router with several load balancers (``router.instances``).

Every traffic activity goes to each instance's agent (its own task queue) at once, and
counts as done only when all of them report: the step waits for every instance's activity
to finish, even after one failed, so no change is still in flight on one load balancer
when the rollback starts on all of them. A failure on one is raised naming it, once all
finished; the rollout's rollback path (any exception rolls back first) then sets every
instance to the same stable split. Instances that succeed but read back different values
(someone edited one by hand) are a failure too — except where a caller asks for each one's
value (``on_each``: the emergency flip, which puts them all on one side).

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
    from activities.routing.base import Weights
    from activities.routing.models import TrafficInput
    from activities.routing.spec import RouterInstance, RouterSpec
    from workflows.core.timeouts import AGENT_DEADLINE

R = TypeVar("R")


async def on_router(
    activity: str,
    router: RouterSpec,
    make_input: Callable[[RouterSpec], TrafficInput],
    result_type: type[R],
    *,
    summary: str,
    **options: Any,
) -> R:
    """``activity`` with ``make_input(router)`` on the worker's queue, or on every instance
    of ``router`` with its own spec; the result all of them agree on. ``options`` are
    ``workflow.execute_activity``'s. Each instance's input names it (``instance``), so
    an agent refuses one meant for another host."""
    held = await on_each(activity, router, make_input, result_type, summary=summary, **options)
    return agreed(activity, held)


async def on_each(
    activity: str,
    router: RouterSpec,
    make_input: Callable[[RouterSpec], TrafficInput],
    result_type: type[R],
    *,
    summary: str,
    **options: Any,
) -> dict[str, R]:
    """What each instance returned, by name, even when they differ (``on_router`` without
    the agreement check); ``{"": result}`` for a router without instances."""
    on = router.on_instances()
    if not on:
        result: R = await workflow.execute_activity(
            activity, make_input(router), result_type=result_type, summary=summary, **options
        )
        return {"": result}
    policy = options.get("retry_policy")
    if policy is not None and policy.maximum_attempts:  # a bounded step, not a rollback
        options = {"schedule_to_close_timeout": AGENT_DEADLINE, **options}
    outcomes = await asyncio.gather(
        *(
            workflow.execute_activity(
                activity,
                make_input(spec).model_copy(update={"instance": instance.name}),
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
    # No failures were raised: every outcome is an R.
    return {i.name: o for i, o in zip(instances, outcomes, strict=True)}  # type: ignore[misc]


def agreed(activity: str, held: dict[str, R]) -> R:
    """The one value every instance in ``held`` returned; ``InstancesDisagree`` naming
    what each holds when they differ."""
    values = list(held.values())
    if any(value != values[0] for value in values[1:]):
        raise ApplicationError(
            f"{activity}: the load balancers read back different values ({held_by(held)})",
            type=errors.INSTANCES_DISAGREE,
            non_retryable=True,
        )
    return values[0]


def held_by(held: dict[str, Any]) -> str:
    """``lb-a: stable 0 % / canary 100 %; lb-b: ...``: what each instance returned."""
    return "; ".join(f"{name}: {_shown(value)}" for name, value in held.items())


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
