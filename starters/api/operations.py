"""Emergency rollbacks and on-demand checks over the API.

``POST /rollbacks/{service}/{environment}`` plans and starts the EmergencyRollback exactly as
``deployflow rollback`` does (the last known good version from history, or ``to``) and
answers at once (202); ``GET`` on the same path follows it.

``POST /rollouts/{service}/{environment}/checks`` runs the spec's health check or smoke
tests on its servers now. The spec is the service's latest rollout's (from history, never
from the request: a check may run commands on the worker). They run as standalone
activities on the workers' task queue — where the rollouts' own checks run — so the API
server needs no route to the hosts; this needs a Temporal server with standalone
activities (the dev server has them).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

from temporalio.client import (
    ActivityFailureError,
    Client,
    WorkflowExecutionDescription,
    WorkflowExecutionStatus,
    WorkflowFailureError,
)
from temporalio.exceptions import TimeoutError as ActivityTimeout
from temporalio.exceptions import TimeoutType
from temporalio.service import RPCError, RPCStatusCode

from activities.errors import root_cause
from activities.health.activities import (
    CheckHealthInput,
    HealthReport,
    SmokeReport,
    SmokeTestInput,
)
from activities.model import Model
from starters import emergency
from starters.api.models import (
    CheckBody,
    CheckResult,
    Failure,
    RollbackBody,
    RollbackStarted,
    SmokeOn,
)
from starters.api.routing import NO_WORKER_ANSWERED, WORKER_ANSWER_TIMEOUT, Call, Route
from starters.api.tokens import Scope
from starters.errors import NotFound
from starters.http_errors import Refusal
from workers.config import TemporalConfig
from workflows.core import retry
from workflows.rollouts import emergency_plan
from workflows.rollouts.emergency_models import RollbackResult, rollback_workflow_id
from workflows.rollouts.registry import WORKFLOW_TYPES
from workflows.rollouts.spec import Rollout


class RollbackView(Model):
    workflow_id: str
    url: str
    running: bool
    result: RollbackResult | None = None
    failure: Failure | None = None


async def start_rollback(call: Call) -> RollbackStarted:
    body = await call.body(RollbackBody)
    service, environment = call.path("service"), call.path("environment")
    client = await call.client_as_caller()
    request = await emergency_plan.plan(
        client, service, environment, body.to, body.reason, call.caller.name
    )
    handle = await emergency.start_rollback(client, call.api.config, request)
    return RollbackStarted(
        workflow_id=handle.id,
        url=call.api.config.workflow_url(handle.id),
        target=request.target,
        cancels=request.cancel_workflow_id,
    )


async def get_rollback(call: Call) -> RollbackView:
    workflow_id = rollback_workflow_id(call.path("service"), call.path("environment"))
    client = await call.client()
    handle = client.get_workflow_handle(workflow_id, result_type=RollbackResult)
    description = await handle.describe()
    url = call.api.config.workflow_url(workflow_id)
    if description.status == WorkflowExecutionStatus.RUNNING:
        return RollbackView(workflow_id=workflow_id, url=url, running=True)
    try:
        result = await handle.result()
    except WorkflowFailureError as exc:
        failure = run_failure(description, exc)
        return RollbackView(workflow_id=workflow_id, url=url, running=False, failure=failure)
    return RollbackView(workflow_id=workflow_id, url=url, running=False, result=result)


def run_failure(description: WorkflowExecutionDescription, exc: WorkflowFailureError) -> Failure:
    """How a closed run without a result ended, and its root cause."""
    outcome = (description.status.name if description.status else "FAILED").capitalize()
    return Failure(outcome=outcome, reason=root_cause(exc).located)


async def latest_rollout(client: Client, service: str, environment: str) -> tuple[str, Rollout]:
    """The service's newest rollout in ``environment`` (running or not) and its spec."""
    types = ", ".join(repr(t) for t in WORKFLOW_TYPES)
    query = (
        f"WorkflowType IN ({types}) AND DeployService = {json.dumps(service)} "
        f"AND DeployEnvironment = {json.dumps(environment)}"
    )
    async for wf in client.list_workflows(query, limit=1):
        return wf.id, await emergency_plan.started_input(client, wf.id, Rollout, wf.run_id)
    raise NotFound(f"no rollout of {service} in {environment} in history to take a spec from")


async def run_checks(call: Call) -> CheckResult:
    body = await call.body(CheckBody)
    service, environment = call.path("service"), call.path("environment")
    client = await call.client_as_caller()
    workflow_id, rollout = await latest_rollout(client, service, environment)
    router = rollout.spec.router.pools()
    if router is None:
        raise Refusal(422, f"{workflow_id}: its router has no server lists to check")
    pools = {"stable": router.stable, "canary": router.canary}
    targets = [t for name, pool in pools.items() if body.pool in (name, "all") for t in pool]
    try:
        if body.kind == "health":
            reports = await asyncio.gather(
                *(_health(client, call.api.config, rollout, t) for t in targets)
            )
            passed = all(r.healthy for r in reports)
            return CheckResult(
                workflow_id=workflow_id, kind="health", passed=passed, health=reports
            )
        smoke = await asyncio.gather(
            *(_smoke(client, call.api.config, rollout, t) for t in targets)
        )
        return CheckResult(
            workflow_id=workflow_id,
            kind="smoke",
            passed=all(s.report.passed for s in smoke),
            smoke=list(smoke),
        )
    except ActivityFailureError as exc:
        cause = exc.cause
        if isinstance(cause, ActivityTimeout) and cause.type is TimeoutType.SCHEDULE_TO_START:
            raise Refusal(503, NO_WORKER_ANSWERED) from None
        raise
    except RPCError as exc:
        if exc.status in (RPCStatusCode.UNIMPLEMENTED, RPCStatusCode.FAILED_PRECONDITION):
            raise Refusal(
                501,
                f"this Temporal server does not run standalone activities, which on-demand "
                f"checks need: {exc.message}",
            ) from None
        raise


def _activity_id(rollout: Rollout, kind: str, target: str) -> str:
    spec = rollout.spec
    return f"{kind}-{spec.service}-{spec.environment}-{target}-{uuid.uuid4().hex[:8]}"


async def _health(
    client: Client, config: TemporalConfig, rollout: Rollout, target: str
) -> HealthReport:
    check = rollout.spec.health_check
    if check is None:
        raise Refusal(422, "spec.healthCheck: the latest rollout's spec has none")
    # The budget the rollouts' own checks get (workflows/rollouts/host_ops.py).
    rounds = check.failure_threshold + check.success_threshold
    budget = check.initial_delay_seconds + 10 * rounds * (
        check.period_seconds + check.timeout_seconds
    )
    key = _activity_id(rollout, "health", target)
    report: HealthReport = await client.execute_activity(
        "check_health",
        CheckHealthInput(check=check, target=target, key=key),
        id=key,
        task_queue=config.task_queue,
        result_type=HealthReport,
        # No worker polling: a 503 after WORKER_ANSWER_TIMEOUT, not a request held for ever.
        schedule_to_start_timeout=WORKER_ANSWER_TIMEOUT,
        start_to_close_timeout=timedelta(seconds=budget + 60),
        heartbeat_timeout=timedelta(seconds=3 * check.timeout_seconds + 2),
        retry_policy=retry.CHECK,
        summary=f"health-check {target} (on demand)",
    )
    return report


async def _smoke(client: Client, config: TemporalConfig, rollout: Rollout, target: str) -> SmokeOn:
    tests = rollout.spec.smoke_tests
    if not tests:
        raise Refusal(422, "spec.smokeTests: the latest rollout's spec has none")
    key = _activity_id(rollout, "smoke", target)
    report: SmokeReport = await client.execute_activity(
        "run_smoke_tests",
        SmokeTestInput(tests=tests, base_url=f"http://{target}", key=key),
        id=key,
        task_queue=config.task_queue,
        result_type=SmokeReport,
        # No worker polling: a 503 after WORKER_ANSWER_TIMEOUT, not a request held for ever.
        schedule_to_start_timeout=WORKER_ANSWER_TIMEOUT,
        start_to_close_timeout=timedelta(seconds=sum(t.timeout_seconds for t in tests) + 30),
        heartbeat_timeout=timedelta(seconds=2 * max(t.timeout_seconds for t in tests) + 3),
        retry_policy=retry.CHECK,
        summary=f"smoke-test {target} (on demand)",
    )
    return SmokeOn(target=target, report=report)


ROUTES = [
    Route(
        "POST",
        "/rollbacks/{service}/{environment}",
        start_rollback,
        Scope.OPERATE,
        "Emergency rollback to the last known good version (or body.to); cancels a running rollout",
        RollbackStarted,
        status=202,
        body=RollbackBody,
        errors=(400, 404, 422),
    ),
    Route(
        "GET",
        "/rollbacks/{service}/{environment}",
        get_rollback,
        Scope.READ,
        "An emergency rollback: running, or its result",
        RollbackView,
        errors=(404,),
    ),
    Route(
        "POST",
        "/rollouts/{service}/{environment}/checks",
        run_checks,
        Scope.OPERATE,
        "Run the latest spec's health check or smoke tests on its servers now",
        CheckResult,
        body=CheckBody,
        errors=(404, 422, 501),
    ),
]
