"""Canaries through routers with two instances: two real NGINX and two real HAProxy on
127.0.0.1, each driven by its own agent (``deployflow worker --host NAME``, a real process
polling its own queue), workflows on a central worker in this process.

What a user expects, and what is shown here: a shift counts only when both load balancers
report it, so the rollout never moves on with them on different splits; an agent SIGKILLed
in the middle of a shift and restarted by its supervisor picks the shift up again (it is
declarative) and the rollout completes; a load balancer whose reload keeps failing fails
the step, and the rollout rolls BOTH back to the same stable split.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from activities.routing.base import Weights
from activities.routing.haproxy.router import HAProxyRouter
from activities.routing.nginx import NginxRouter
from tests.fixtures.agents import Agents
from tests.fixtures.harness import poll
from tests.fixtures.prometheus import http
from tests.workflows.harness import rollout
from workflows.rollouts.canary import CanaryRollout
from workflows.rollouts.models import RolloutPhase, RolloutResult

pytestmark = pytest.mark.integration

# lb-b's reload waits for the test's go-ahead the first time it runs (or ends with its
# agent); the loop is the command's own, the test waits on files with bounds.
GATED = (
    'if [ ! -e "$1/started" ]; then touch "$1/started"; '
    'while [ ! -e "$1/release" ] && kill -0 "$PPID" 2>/dev/null; do sleep 0.05; done; '
    'kill -0 "$PPID" 2>/dev/null || exit 1; fi; shift; exec "$@"'
)
# lb-b's reload fails whenever its file holds the 50 % split.
FAILS_AT_50 = 'grep -q "canary=50" "$1" && { echo "reload refused" >&2; exit 1; }; shift; exec "$@"'


@pytest.fixture(scope="module")
def lbs(agents: Agents) -> tuple[str, str]:
    """Two load-balancer names, each with its agent running."""
    suffix = uuid.uuid4().hex[:6]
    names = (f"lb-a-{suffix}", f"lb-b-{suffix}")
    for name in names:
        agents.start(name)
    return names


def canary(router: dict[str, Any], steps: list[dict[str, Any]]) -> Any:
    return rollout(steps, router=router, analysisTemplates=[])


async def start(worker_queue: tuple[str, str], rollout: Any) -> WorkflowHandle[Any, Any]:
    address, queue = worker_queue
    client = await Client.connect(address, data_converter=pydantic_data_converter)
    return await client.start_workflow(
        CanaryRollout.run, rollout, id=rollout.workflow_id, task_queue=queue
    )


def nginx_router(servers: list[Any], names: tuple[str, str], **lb_b: Any) -> dict[str, Any]:
    first = servers[0].router_spec(stable=servers[0].stable, canary=servers[0].canary)
    instances = [
        {
            "name": name,
            "configPath": str(server.config_path),
            "testCommand": server.test_command,
            "reloadCommand": server.reload_command,
        }
        for name, server in zip(names, servers, strict=True)
    ]
    instances[1] |= lb_b
    return {"nginx": first.model_dump(mode="json"), "instances": instances}


@pytest.fixture
def two_nginx(nginx_factory: Any, http_backend: Any) -> list[Any]:
    stable, canary_ = [http_backend("v1")], [http_backend("v2")]
    servers = [nginx_factory(stable=stable, canary=canary_) for _ in range(2)]
    for server in servers:
        server.stable, server.canary = stable, canary_
    return servers


def nginx_weights(servers: list[Any]) -> list[Weights]:
    return [
        NginxRouter(s.router_spec(stable=s.stable, canary=s.canary)).get_weights() for s in servers
    ]


async def serves(url: str, version: str) -> None:
    """Every request through ``url`` answers ``version`` (once a reload's old workers left)."""

    def only() -> bool:
        return {http("GET", url)[1] for _ in range(6)} == {version}

    await poll(only, f"{url} serves only {version}", 10)


def shifts_in_step(history: Any) -> list[str]:
    """The shift labels in order, checking each was scheduled only after every instance
    completed the one before (the workflow never moves on with a split apart)."""
    summaries, completed_at = {}, {}
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            attrs = event.activity_task_scheduled_event_attributes
            if attrs.activity_type.name == "set_weight":
                summary = json.loads(event.user_metadata.summary.data)
                summaries[event.event_id] = summary.rsplit(" on ", 1)[0]
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled = event.activity_task_completed_event_attributes.scheduled_event_id
            if scheduled in summaries:
                completed_at[scheduled] = event.event_id
    labels: list[str] = []
    for scheduled, label in summaries.items():
        if labels and label == labels[-1]:
            continue
        before = [s for s, lab in summaries.items() if labels and lab == labels[-1]]
        assert all(completed_at.get(s, 10**9) < scheduled for s in before), (label, labels)
        labels.append(label)
    return labels


async def promoted_in_step(
    handle: WorkflowHandle[Any, Any], weights: Callable[[], list[Weights]], urls: list[str]
) -> None:
    """The rollout promoted; both load balancers hold (and serve) the canary alone; every
    shift was scheduled only after both reported the one before."""
    result: RolloutResult = await handle.result()
    assert result.outcome is RolloutPhase.PROMOTED, result.reason
    assert weights() == [Weights(stable=0, canary=100)] * 2
    for url in urls:
        await serves(url, "v2")
    labels = shifts_in_step(await handle.fetch_history())
    assert [label.split("(")[-1] for label in labels] == ["step-0)", "step-1)", "promoted)"]


async def test_a_canary_shifts_two_nginx_in_step_through_their_agents(
    lbs: tuple[str, str], two_nginx: list[Any], worker_queue: tuple[str, str]
) -> None:
    spec = canary(nginx_router(two_nginx, lbs), [{"setWeight": 25}, {"setWeight": 50}])
    handle = await start(worker_queue, spec)
    await promoted_in_step(handle, lambda: nginx_weights(two_nginx), [s.url for s in two_nginx])


async def test_an_agent_killed_mid_shift_is_restarted_and_the_shift_completes_on_both(
    lbs: tuple[str, str],
    two_nginx: list[Any],
    worker_queue: tuple[str, str],
    agents: Agents,
    tmp_path: Path,
) -> None:
    gate = tmp_path / "gate"
    gate.mkdir()
    reload_b = ["/bin/sh", "-c", GATED, "gated", str(gate), *two_nginx[1].reload_command]
    router = nginx_router(two_nginx, lbs, reloadCommand=reload_b)
    handle = await start(worker_queue, canary(router, [{"setWeight": 25}, {"setWeight": 50}]))
    await poll(lambda: (gate / "started").exists(), "lb-b's reload started", 60)
    agents.kill(lbs[1])  # SIGKILL while it runs the shift's reload
    (gate / "release").touch()  # the orphaned reload sees its agent gone and exits
    assert nginx_weights(two_nginx)[0] == Weights(stable=75, canary=25)  # lb-a: done
    agents.start(lbs[1])  # the supervisor restarts it
    await promoted_in_step(handle, lambda: nginx_weights(two_nginx), [s.url for s in two_nginx])


async def test_one_load_balancers_reload_failing_rolls_both_back_to_the_same_split(
    lbs: tuple[str, str], two_nginx: list[Any], worker_queue: tuple[str, str]
) -> None:
    config_b = str(two_nginx[1].config_path)
    reload_b = ["/bin/sh", "-c", FAILS_AT_50, "fails", config_b, *two_nginx[1].reload_command]
    router = nginx_router(two_nginx, lbs, reloadCommand=reload_b)
    handle = await start(worker_queue, canary(router, [{"setWeight": 25}, {"setWeight": 50}]))
    result: RolloutResult = await handle.result()
    assert result.outcome is RolloutPhase.ROLLED_BACK
    assert f"set_weight failed on load balancer {lbs[1]}" in result.reason
    assert "RouterCommandFailed" in result.reason
    assert nginx_weights(two_nginx) == [Weights(stable=100, canary=0)] * 2
    for server in two_nginx:
        await serves(server.url, "v1")


async def test_a_canary_shifts_two_haproxy_in_step_through_their_agents(
    lbs: tuple[str, str],
    haproxy_factory: Any,
    http_backend: Any,
    worker_queue: tuple[str, str],
) -> None:
    stable, canary_ = [http_backend("v1")], [http_backend("v2")]
    servers = [haproxy_factory(stable=stable, canary=canary_) for _ in range(2)]
    instances = [
        {
            "name": name,
            "socket": str(server.socket),
            "configPath": str(server.config_path),
            "checkCommand": server.check_command,
        }
        for name, server in zip(lbs, servers, strict=True)
    ]
    router = {"haproxy": servers[0].router_spec().model_dump(mode="json"), "instances": instances}
    handle = await start(worker_queue, canary(router, [{"setWeight": 25}, {"setWeight": 50}]))
    await promoted_in_step(
        handle,
        lambda: [HAProxyRouter(s.router_spec()).get_weights() for s in servers],
        [f"http://127.0.0.1:{s.port}/" for s in servers],
    )


async def test_an_agent_answers_ready_once_it_polls_its_own_queue(
    lbs: tuple[str, str], agents: Agents
) -> None:
    status, body = agents.running[lbs[0]].health("/readyz")
    assert (status, body) == (200, {"status": "ready", "taskQueue": f"deployflow-router-{lbs[0]}"})
