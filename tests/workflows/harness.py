"""Stub activities (registered by name, like the real ones) and helpers for workflow tests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.metrics.activities import MeasureInput, MeasureOutput
from activities.routing.base import Weights
from activities.routing.models import GetWeightsInput, SetWeightInput
from activities.routing.spec import RouterSpec
from tests.fixtures.harness import poll, queried, worker
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.models import RolloutStatus
from workflows.rollouts.spec import Rollout, parse_rollout

ERROR_RATE_TEMPLATE = {
    "name": "error-rate",
    "metrics": [
        {
            "name": "error-rate",
            "interval": "1m",
            "count": 3,
            "successCondition": "result < 0.01",
            "provider": {
                "prometheus": {
                    "address": "http://127.0.0.1:9",
                    "query": 'errors{version="{{version}}"}',
                }
            },
        }
    ],
}


def rollout(steps: list[dict[str, Any]], **spec: Any) -> Rollout:
    """A canary Rollout with ``steps``; ``spec`` overrides or adds spec fields."""
    body: dict[str, Any] = {
        "service": "checkout",
        "environment": f"test-{uuid.uuid4().hex[:8]}",
        "version": "v2",
        "router": {
            "nginx": {
                "upstream": "checkout",
                "configPath": "/nonexistent/upstream.conf",
                "stable": ["127.0.0.1:1"],
                "canary": ["127.0.0.1:2"],
            }
        },
        "strategy": {"canary": {"steps": steps}},
        "analysisTemplates": [ERROR_RATE_TEMPLATE],
    }
    canary = spec.pop("canary", {})
    body["strategy"]["canary"].update(canary)
    body.update(spec)
    doc = {"apiVersion": "deployflow/v1", "kind": "Rollout", "metadata": {"name": "checkout"}}
    return parse_rollout([{**doc, "spec": body}])


@dataclass
class Stubs:
    """What the stub activities saw, and what ``measure`` answers (by call number)."""

    canary_weights: list[int] = field(default_factory=list)
    live: dict[str, Weights] = field(default_factory=dict)  # by router config path
    measure_keys: list[str] = field(default_factory=list)
    measure_inputs: list[MeasureInput] = field(default_factory=list)
    measure_values: Callable[[int], list[float]] = lambda n: [0.0]
    measurements: int = 0
    # Fault injection: set_weight raises this (non-retryable) while ``fail_weights`` says so.
    fail_weights: Callable[[SetWeightInput], bool] = lambda input: False
    # A set_weight whose key ends with ``hold_key`` waits for ``release`` (``held`` is set).
    hold_key: str | None = None
    held: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="set_weight")
        async def set_weight(input: SetWeightInput) -> Weights:
            if self.fail_weights(input):
                raise ApplicationError(
                    "nginx: [emerg] unexpected end of file",
                    type="RouterConfigRejected",
                    non_retryable=True,
                )
            if self.hold_key is not None and input.key.endswith(self.hold_key):
                self.held.set()
                await self.release.wait()
            self.canary_weights.append(input.weights.canary)
            self.live[_path(input.router)] = input.weights
            return input.weights

        @activity.defn(name="get_weights")
        async def get_weights(input: GetWeightsInput) -> Weights:
            return self.live.get(_path(input.router), Weights(stable=100, canary=0))

        @activity.defn(name="measure")
        async def measure(input: MeasureInput) -> MeasureOutput:
            self.measurements += 1
            self.measure_keys.append(input.key)
            self.measure_inputs.append(input)
            return MeasureOutput(values=self.measure_values(self.measurements))

        return [set_weight, get_weights, measure]


def _path(router: RouterSpec) -> str:
    return router.nginx.config_path if router.nginx else "?"


def canary_worker(env: WorkflowEnvironment, stubs: Stubs) -> AbstractAsyncContextManager[str]:
    return worker(env, [CanaryRollout], stubs.activities())


async def start(
    env: WorkflowEnvironment, task_queue: str, spec: Rollout
) -> WorkflowHandle[Any, Any]:
    return await env.client.start_workflow(
        CanaryRollout.run, spec, id=spec.workflow_id, task_queue=task_queue
    )


async def wait_for_status(
    handle: WorkflowHandle[Any, Any],
    predicate: Callable[[RolloutStatus], bool],
    timeout: float = 15.0,
) -> RolloutStatus:
    """The rollout's ``status`` once ``predicate`` holds (bounded)."""
    return await queried(handle, CanaryRollout.status, predicate, "the rollout's status", timeout)


async def activity_scheduled(
    handle: WorkflowHandle[Any, Any], name: str, timeout: float = 15.0
) -> None:
    """Poll the run's history until it has scheduled activity ``name`` (bounded)."""
    scheduled = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED

    async def found() -> bool:
        async for event in handle.fetch_history_events():
            attributes = event.activity_task_scheduled_event_attributes
            if event.event_type == scheduled and attributes.activity_type.name == name:
                return True
        return False

    await poll(found, f"activity {name} scheduled", timeout, every_s=0.05)
