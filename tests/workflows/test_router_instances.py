"""A canary through a router with two load balancers (``router.instances``): every shift
goes to both agents' queues and counts when both report; a failure on one rolls both back
to the same split. Agents here are workers with the stub traffic activities on each
instance's queue; the stubs keep each instance's split by its own config path."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from temporalio.testing import WorkflowEnvironment

from activities.clients import Clients
from activities.routing.activities import RouterActivities
from activities.routing.base import Weights
from activities.routing.spec import agent_queue
from tests.fixtures.harness import poll, worker
from tests.workflows.harness import Stubs, canary_worker, rollout, start, wait_for_status
from workflows.core.verbs import OperatorInput
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.emergency import EmergencyRollback
from workflows.rollouts.emergency_models import RollbackRequest, RollbackResult
from workflows.rollouts.models import RolloutPhase

CENTRAL_PATH = "/nonexistent/upstream.conf"


def two_instances(steps: list[dict[str, object]], **spec: object) -> tuple[object, dict[str, str]]:
    """A canary whose router names lb-a and lb-b (each its own file, and queue)."""
    suffix = uuid.uuid4().hex[:8]
    names = {f"lb-a-{suffix}": "/lb-a/upstream.conf", f"lb-b-{suffix}": "/lb-b/upstream.conf"}
    router = {
        "nginx": {
            "upstream": "checkout",
            "configPath": CENTRAL_PATH,
            "stable": ["127.0.0.1:1"],
            "canary": ["127.0.0.1:2"],
        },
        "instances": [{"name": n, "configPath": p} for n, p in names.items()],
    }
    return rollout(steps, router=router, **spec), names


@asynccontextmanager
async def agents(env: WorkflowEnvironment, stubs: Stubs, names: list[str]) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for name in names:
            queue = f"deployflow-router-{name}"
            await stack.enter_async_context(worker(env, (), stubs.activities(), task_queue=queue))
        yield


async def roll_back_to_v1(
    env: WorkflowEnvironment, stubs: Stubs, spec: object, names: list[str]
) -> RollbackResult:
    """An emergency rollback to v1, on the idle list, with v2 live: a router flip."""
    request = RollbackRequest(rollout=spec, target="v1", live="v2", idle="v1")
    async with (
        worker(env, [EmergencyRollback], stubs.activities()) as queue,
        agents(env, stubs, names),
    ):
        return await env.client.execute_workflow(
            EmergencyRollback.run, request, id=f"rollback-{uuid.uuid4().hex[:8]}", task_queue=queue
        )


async def test_every_shift_reaches_both_load_balancers_and_none_the_workers_own(temporal_env):
    stubs = Stubs()
    spec, paths = two_instances([{"setWeight": 20}, {"pause": {"duration": "1m"}}])
    async with canary_worker(temporal_env, stubs) as tq, agents(temporal_env, stubs, [*paths]):
        result = await (await start(temporal_env, tq, spec)).result()
    assert result.outcome is RolloutPhase.PROMOTED
    assert stubs.canary_weights == [20, 20, 100, 100]  # each shift on both, in step
    assert {path: stubs.live[path] for path in paths.values()} == {
        path: Weights(stable=0, canary=100) for path in paths.values()
    }
    assert CENTRAL_PATH not in stubs.live


async def test_a_failure_on_one_load_balancer_rolls_both_back_to_the_same_split(temporal_env):
    stubs = Stubs()
    spec, paths = two_instances([{"setWeight": 20}, {"setWeight": 50}])
    lb_b = list(paths)[1]
    stubs.fail_weights = lambda input: (
        input.router.nginx is not None
        and input.router.nginx.config_path == paths[lb_b]
        and input.weights.canary == 50
    )
    async with canary_worker(temporal_env, stubs) as tq, agents(temporal_env, stubs, [*paths]):
        result = await (await start(temporal_env, tq, spec)).result()
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert f"set_weight failed on load balancer {lb_b}" in result.reason
    assert "RouterConfigRejected" in result.reason
    assert [stubs.live[path] for path in paths.values()] == [Weights(stable=100, canary=0)] * 2


async def test_an_agent_that_stays_away_fails_the_step_and_the_rollback_waits_for_it(
    temporal_env,
):
    """Past the step's deadline (here progressDeadlineSeconds; else AGENT_DEADLINE) the
    rollout rolls back: lb-a at once, lb-b as soon as its agent polls again."""
    stubs = Stubs()
    steps = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}]
    spec, paths = two_instances(steps, progressDeadlineSeconds=2)
    lb_a, lb_b = paths
    async with canary_worker(temporal_env, stubs) as tq, agents(temporal_env, stubs, [lb_a]):
        async with agents(temporal_env, stubs, [lb_b]):
            handle = await start(temporal_env, tq, spec)
            await wait_for_status(handle, lambda s: s.phase is RolloutPhase.PAUSED)
        # lb-b's agent is gone; the next shift waits for it until the deadline.
        await handle.execute_update(CanaryRollout.promote, OperatorInput())
        await wait_for_status(handle, lambda s: s.phase is RolloutPhase.ROLLING_BACK)
        rolled_back = Weights(stable=100, canary=0)
        await poll(lambda: stubs.live[paths[lb_a]] == rolled_back, "lb-a rolled back", 15)
        assert stubs.live[paths[lb_b]] == Weights(stable=80, canary=20)  # untouched meanwhile
        async with agents(temporal_env, stubs, [lb_b]):  # the agent of lb-b comes back
            result = await asyncio.wait_for(handle.result(), 60)
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert "progress deadline of 2s exceeded at step 2 (setWeight 50)" in result.reason
    assert [stubs.live[path] for path in paths.values()] == [Weights(stable=100, canary=0)] * 2


async def test_an_emergency_flip_moves_both_load_balancers(temporal_env):
    stubs = Stubs()
    spec, paths = two_instances([{"setWeight": 50}])
    stubs.live = dict.fromkeys(paths.values(), Weights(stable=0, canary=100))  # v2 live
    result = await roll_back_to_v1(temporal_env, stubs, spec, [*paths])
    assert result.flipped
    assert [stubs.live[path] for path in paths.values()] == [Weights(stable=100, canary=0)] * 2
    assert CENTRAL_PATH not in stubs.live


def holding(lb_a: Weights, lb_b: Weights) -> tuple[Stubs, object, dict[str, str]]:
    """Two load balancers holding these splits (a canary of one 20 % step)."""
    stubs = Stubs()
    spec, paths = two_instances([{"setWeight": 20}])
    stubs.live = dict(zip(paths.values(), (lb_a, lb_b), strict=True))
    return stubs, spec, paths


async def test_an_emergency_flip_puts_disagreeing_load_balancers_on_one_side(temporal_env):
    """lb-a sends all to the canary list (v2 live), lb-b was left mid-shift: both go to the
    stable list, which runs v1, and the timeline says what each held."""
    stubs, spec, paths = holding(Weights(stable=0, canary=100), Weights(stable=80, canary=20))
    lb_a, lb_b = paths
    result = await roll_back_to_v1(temporal_env, stubs, spec, [*paths])
    assert result.flipped
    assert [stubs.live[path] for path in paths.values()] == [Weights(stable=100, canary=0)] * 2
    said = [event.message for event in result.events if event.kind == "instances"]
    assert said == [
        f"the load balancers disagree ({lb_a}: stable 0 % / canary 100 %; "
        f"{lb_b}: stable 80 % / canary 20 %): all go to stable 100 % / canary 0 %"
    ]


async def test_a_rollout_still_refuses_load_balancers_that_disagree(temporal_env):
    stubs, spec, paths = holding(Weights(stable=100, canary=0), Weights(stable=80, canary=20))
    async with canary_worker(temporal_env, stubs) as tq, agents(temporal_env, stubs, [*paths]):
        result = await (await start(temporal_env, tq, spec)).result()
    assert result.outcome is not RolloutPhase.PROMOTED
    assert "the load balancers read back different values" in result.reason
    assert stubs.canary_weights == []  # nothing shifted


async def test_an_agent_on_another_hosts_queue_refuses_its_shifts(temporal_env):
    """lb-b's queue is polled by the agent of lb-a (``--host lb-a --task-queue`` of lb-b):
    it refuses lb-b's read instead of reporting lb-a's split as lb-b's, and the rollout
    stops before any shift, naming both hosts."""
    stubs = Stubs()
    suffix = uuid.uuid4().hex[:8]
    lb_a, lb_b = f"lb-a-{suffix}", f"lb-b-{suffix}"
    router = {
        "nop": {"stable": ["127.0.0.1:1"], "canary": ["127.0.0.1:2"]},
        "instances": [{"name": lb_a}, {"name": lb_b}],
    }
    agent_of_a = RouterActivities(Clients(), host=lb_a).all()
    async with (
        canary_worker(temporal_env, stubs) as tq,
        worker(temporal_env, (), agent_of_a, task_queue=agent_queue(lb_a)),
        worker(temporal_env, (), agent_of_a, task_queue=agent_queue(lb_b)),
    ):
        result = await (
            await start(temporal_env, tq, rollout([{"setWeight": 20}], router=router))
        ).result()
    assert result.outcome is not RolloutPhase.PROMOTED
    assert (
        f"get_weights failed on load balancer {lb_b}: get_weights for load balancer {lb_b} "
        f"reached the agent of {lb_a}"
    ) in result.reason
    assert "WrongLoadBalancer" in result.reason
