"""A dry run: ``router: {nop: ...}`` takes a canary through every step with the real traffic
activities, remembering the split on the worker, touching no load balancer."""

from __future__ import annotations

from temporalio.testing import WorkflowEnvironment

from activities.clients import Clients
from activities.routing.activities import RouterActivities
from activities.routing.base import Weights
from activities.routing.factory import router_for
from tests.fixtures.harness import worker
from tests.workflows.harness import rollout
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.models import RolloutPhase, RolloutResult
from workflows.rollouts.spec import Rollout

NOP = {"nop": {"stable": ["10.0.0.1:8080"], "canary": ["10.0.0.2:8080"]}}
STEPS = [{"setWeight": 25}, {"pause": {"duration": "30m"}}, {"setWeight": 100}]


async def run_on(env: WorkflowEnvironment, clients: Clients, spec: Rollout) -> RolloutResult:
    routing = RouterActivities(clients)
    async with worker(env, [CanaryRollout], [routing.set_weight, routing.get_weights]) as queue:
        handle = await env.client.start_workflow(
            CanaryRollout.run, spec, id=spec.workflow_id, task_queue=queue
        )
        return await handle.result()


async def test_a_nop_canary_runs_every_step_and_the_next_one_finds_the_sides_flipped(
    temporal_env,
):
    clients = Clients()
    first = rollout(STEPS, router=NOP)

    promoted = await run_on(temporal_env, clients, first)

    assert promoted.outcome is RolloutPhase.PROMOTED
    assert router_for(first.spec.router, clients).get_weights() == Weights(stable=0, canary=100)
    second = rollout(STEPS, router=NOP, version="v3")
    again = await run_on(temporal_env, clients, second)
    assert again.outcome is RolloutPhase.PROMOTED
    assert any("v3 goes to the stable list (10.0.0.1:8080)" in e.message for e in again.events)
    assert router_for(first.spec.router, clients).get_weights() == Weights(stable=100, canary=0)
