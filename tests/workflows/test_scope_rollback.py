"""ScopeRollback on the dev server: real EmergencyRollback children flipping real nop
routers (worker memory) with the real router activities; the planning activity, which
reads history, is replaced by plans written here (the CLI end-to-end test covers the real
one, tests/integration/test_scope_rollback.py)."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager

from temporalio import activity
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities import errors
from activities.clients import Clients
from activities.routing.activities import RouterActivities
from activities.routing.base import Weights
from activities.routing.factory import router_for
from activities.temporal.activities import WorkflowWatcher
from tests.fixtures.harness import worker
from tests.workflows.harness import activity_scheduled, rollout
from workflows.rollouts.emergency import EmergencyRollback
from workflows.rollouts.emergency_models import RollbackRequest
from workflows.rollouts.registry import BY_STRATEGY
from workflows.rollouts.scope_rollback import ScopeRollback
from workflows.rollouts.scope_rollback_models import (
    PlanScopeMemberInput,
    ScopeMemberPlan,
    ScopeRollbackRequest,
    ScopeRollbackStatus,
    ServiceOutcome,
)
from workflows.rollouts.spec import Rollout

ENVIRONMENT = "production"


def nop_rollout(service: str, number: int) -> Rollout:
    router = {"nop": {"stable": [f"10.0.{number}.1:80"], "canary": [f"10.0.{number}.2:80"]}}
    return rollout(
        [{"setWeight": 100}], service=service, environment=ENVIRONMENT, router=router,
        groups=["backend"],
    )  # fmt: skip


SPECS = {name: nop_rollout(name, n) for n, name in enumerate(["api", "orders", "web", "batch"])}


def plans() -> dict[str, ScopeMemberPlan | str]:
    """api: v1 runs on the idle list (a flip brings it back); orders: v9 runs nowhere and
    there is no platform (RollbackImpossible); web: history knows no good version (the
    plan fails); batch: nothing runs (canary-only would skip it)."""
    return {
        "api": ScopeMemberPlan(
            request=RollbackRequest(rollout=SPECS["api"], target="v1", live="v2", idle="v1")
        ),
        "orders": ScopeMemberPlan(
            request=RollbackRequest(rollout=SPECS["orders"], target="v9", live="v2", idle="v1")
        ),
        "web": "--to: history knows no other good version; name one with --to VERSION",
        "batch": ScopeMemberPlan(skipped="no rollout running: the promoted version stays"),
    }


def scope_worker(env: WorkflowEnvironment, clients: Clients) -> AbstractAsyncContextManager[str]:
    written = plans()

    @activity.defn(name="plan_scope_member")
    async def plan_scope_member(input: PlanScopeMemberInput) -> ScopeMemberPlan:
        plan = written[input.service]
        if isinstance(plan, str):
            raise errors.failure(errors.ROLLBACK_IMPOSSIBLE, plan)
        return plan

    routing = RouterActivities(clients)
    return worker(
        env,
        [ScopeRollback, EmergencyRollback, *BY_STRATEGY.values()],
        [
            plan_scope_member,
            routing.get_weights,
            routing.set_weight,
            WorkflowWatcher(env.client).await_closed,
        ],
    )


async def start(
    env: WorkflowEnvironment, queue: str
) -> WorkflowHandle[ScopeRollback, ScopeRollbackStatus]:
    request = ScopeRollbackRequest(
        scope="backend", environment=ENVIRONMENT, services=list(SPECS), reason="pager"
    )
    return await env.client.start_workflow(
        ScopeRollback.run, request, id=f"rollback-scope-{uuid.uuid4().hex[:6]}", task_queue=queue
    )


async def test_each_service_gets_its_own_outcome_and_a_failure_spares_the_others(
    temporal_env: WorkflowEnvironment,
) -> None:
    clients = Clients()
    async with scope_worker(temporal_env, clients) as queue:
        handle = await start(temporal_env, queue)
        result = await handle.result()
    outcomes = {s.service: s for s in result.services}
    assert [s.service for s in result.services] == ["api", "orders", "web", "batch"]
    api = outcomes["api"]
    assert (api.outcome, api.before, api.after) == (ServiceOutcome.ROLLED_BACK, "v2", "v1")
    assert api.reason == "v1 is live (router flipped to the idle list)"
    assert api.workflow_id == f"rollback-api-{ENVIRONMENT}"
    flipped = router_for(SPECS["api"].spec.router, clients).get_weights()
    assert flipped == Weights(stable=0, canary=100)
    assert outcomes["orders"].outcome is ServiceOutcome.FAILED
    assert outcomes["orders"].root_cause is not None
    assert "v9 runs on neither list" in outcomes["orders"].root_cause
    assert "(RollbackImpossible)" in outcomes["orders"].root_cause
    untouched = router_for(SPECS["orders"].spec.router, clients).get_weights()
    assert untouched == Weights(stable=100, canary=0)
    assert outcomes["web"].outcome is ServiceOutcome.FAILED
    assert outcomes["web"].reason == "cannot be planned"
    assert outcomes["batch"].outcome is ServiceOutcome.SKIPPED
    assert [s.service for s in result.failed] == ["orders", "web"]
    assert result.events[-1].message == "1 RolledBack, 1 Skipped, 2 Failed"


async def test_a_rollback_of_the_service_already_running_is_waited_for_not_started_twice(
    temporal_env: WorkflowEnvironment,
) -> None:
    api = plans()["api"]
    assert isinstance(api, ScopeMemberPlan)
    assert api.request is not None
    # An operator's rollback of api, on a queue no worker polls: it runs until terminated.
    operators = await temporal_env.client.start_workflow(
        "EmergencyRollback",
        api.request,
        id=f"rollback-api-{ENVIRONMENT}",
        task_queue=f"nobody-{uuid.uuid4().hex}",
    )
    clients = Clients()
    async with scope_worker(temporal_env, clients) as queue:
        handle = await temporal_env.client.start_workflow(
            ScopeRollback.run,
            ScopeRollbackRequest(
                scope="backend", environment=ENVIRONMENT, services=["api"], reason="pager"
            ),
            id=f"rollback-scope-{uuid.uuid4().hex[:6]}",
            task_queue=queue,
        )
        await activity_scheduled(handle, "await_closed")
        await operators.terminate("the operator gave up")
        result = await handle.result()
    [entry] = result.services
    assert entry.outcome is ServiceOutcome.FAILED
    assert entry.reason == f"a rollback already running ({operators.id}) closed: terminated"
    untouched = router_for(SPECS["api"].spec.router, clients).get_weights()
    assert untouched == Weights(stable=100, canary=0)
