"""`rollback --scope`: a scope's members come from the ``DeployGroups`` search attribute the
starter sets (no history read), and from the run's input for a run started without it.
The rollouts are started with no worker polling their queue: only visibility is read."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from starters import scope_rollback
from starters.errors import NotFound
from starters.rollout_start import start_rollout
from tests.workflows import harness
from workers.config import TemporalConfig
from workflows.core import search_attributes as sa
from workflows.rollouts.registry import workflow_type
from workflows.rollouts.spec import Rollout


def rollout(service: str, environment: str, groups: list[str]) -> Rollout:
    return harness.rollout(
        [{"setWeight": 100}], service=service, environment=environment, groups=groups
    )


class Fleet:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.environment = f"sm{uuid.uuid4().hex[:6]}"
        self.config = TemporalConfig(task_queue=f"nobody-{uuid.uuid4().hex[:6]}")
        self.started: list[str] = []
        self.reads: list[str] = []

    async def start(self, service: str, *groups: str) -> None:
        """As `deployflow rollout start` does (DeployGroups in the start call)."""
        handle = await start_rollout(
            self.client,
            self.config,
            rollout(service, self.environment, list(groups)),
            by="t",
            source="test",
        )
        self.started.append(handle.id)

    async def start_before_deploy_groups(self, service: str, *groups: str) -> None:
        """As a starter did before DeployGroups existed."""
        spec = rollout(service, self.environment, list(groups))
        attributes = [
            SearchAttributePair(sa.DEPLOY_SERVICE, service),
            SearchAttributePair(sa.DEPLOY_ENVIRONMENT, self.environment),
        ]
        handle = await self.client.start_workflow(
            workflow_type(spec),
            spec,
            id=spec.workflow_id,
            task_queue=self.config.task_queue,
            search_attributes=TypedSearchAttributes(attributes),
        )
        self.started.append(handle.id)

    async def end(self, service: str) -> None:
        await self.client.get_workflow_handle(f"rollout-{service}-{self.environment}").terminate()

    async def members(self, scope: str, listed: int) -> list[str]:
        query = f"DeployEnvironment = '{self.environment}'"
        for _ in range(200):  # visibility catches up with the starts
            if (await self.client.count_workflows(query)).count >= listed:
                break
            await asyncio.sleep(0.05)
        return await scope_rollback.members(self.client, scope, self.environment)


@pytest.fixture
async def fleet(
    temporal_env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Fleet]:
    found = Fleet(temporal_env.client)
    real = scope_rollback.started_input

    async def started_input(client: Client, workflow_id: str, *args: Any) -> Any:
        found.reads.append(workflow_id)
        return await real(client, workflow_id, *args)

    monkeypatch.setattr(scope_rollback, "started_input", started_input)
    yield found
    for workflow_id in set(found.started):
        with contextlib.suppress(RPCError):  # ended already
            await temporal_env.client.get_workflow_handle(workflow_id).terminate()


async def test_members_come_from_deploy_groups_without_reading_any_history(fleet: Fleet):
    await fleet.start("api", "backend")
    await fleet.start("orders", "backend", "payments")
    await fleet.start("web", "frontend")

    assert await fleet.members("backend", 3) == ["api", "orders"]
    assert await fleet.members("payments", 3) == ["orders"]
    assert await fleet.members("all", 3) == ["api", "orders", "web"]
    assert fleet.reads == []
    described = await fleet.client.get_workflow_handle(fleet.started[1]).describe()
    assert described.typed_search_attributes.get(sa.DEPLOY_GROUPS) == ["backend", "payments"]


async def test_a_run_started_before_deploy_groups_is_judged_by_its_input(fleet: Fleet):
    await fleet.start_before_deploy_groups("api", "backend")
    await fleet.start("web", "frontend")
    await fleet.start("jobs")  # no groups: its input is read (it may be an old run)

    assert await fleet.members("backend", 3) == ["api"]
    assert sorted(fleet.reads) == [f"rollout-{s}-{fleet.environment}" for s in ("api", "jobs")]


async def test_the_newest_rollout_of_a_service_says_its_groups(fleet: Fleet):
    await fleet.start("api", "backend")
    await fleet.end("api")
    await fleet.start("api", "edge")  # moved out of backend by its newest rollout
    await fleet.start("orders", "backend")

    assert await fleet.members("backend", 3) == ["orders"]
    assert await fleet.members("edge", 3) == ["api"]
    with pytest.raises(NotFound, match="no service is in group 'payments'"):
        await fleet.members("payments", 3)
