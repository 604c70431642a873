"""The report's records from Temporal: visibility (paged, so years of history stream
through in pages of ``page_size``) and, where visibility does not say enough, run results.

A rollout's outcome is its ``DeployPhase`` search attribute (kept current by the workflow),
its commit time the memo ``rollout start --commit-time`` wrote; only runs that did not
promote are read further (their timeline says when traffic first moved and when the
rollout decided to stop). Incidents are read from their result (opened and resolved
times survive continue-as-new there). Results are fetched a few at a time.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Final, TypeVar

from temporalio.client import Client, WorkflowExecution, WorkflowFailureError

from starters.deploy_memo import commit_time_of
from starters.report.dora import FAILED, Deployment, Incident, Rollback
from workflows.core import search_attributes as sa
from workflows.incidents.models import WORKFLOW_TYPE as INCIDENT
from workflows.incidents.models import IncidentStatus
from workflows.rollouts.models import RolloutResult
from workflows.rollouts.registry import WORKFLOW_TYPES

PAGE_SIZE: Final = 1000
CONCURRENT_RESULTS: Final = 16
T = TypeVar("T")


def _query(types: tuple[str, ...], since: datetime, service: str | None, env: str | None) -> str:
    query = (
        f"WorkflowType IN ({', '.join(repr(t) for t in types)}) "
        f"AND ExecutionStatus != 'Running' AND ExecutionStatus != 'ContinuedAsNew' "
        f"AND CloseTime >= '{since.isoformat()}'"
    )
    if service is not None:
        query += f" AND DeployService = {json.dumps(service)}"
    if env is not None:
        query += f" AND DeployEnvironment = {json.dumps(env)}"
    return query


async def _bounded(jobs: list[Callable[[], Awaitable[T]]]) -> list[T]:
    gate = asyncio.Semaphore(CONCURRENT_RESULTS)

    async def run(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return await asyncio.gather(*(run(job) for job in jobs))


async def deployments(
    client: Client,
    since: datetime,
    service: str | None = None,
    env: str | None = None,
    page_size: int = PAGE_SIZE,
) -> list[Deployment]:
    found = client.list_workflows(_query(WORKFLOW_TYPES, since, service, env), page_size=page_size)
    runs = [wf async for wf in found if wf.close_time is not None]
    return await _bounded([functools.partial(_deployment, client, wf) for wf in runs])


async def _deployment(client: Client, wf: WorkflowExecution) -> Deployment:
    attrs = wf.typed_search_attributes
    phase = attrs.get(sa.DEPLOY_PHASE)
    status = (wf.status.name if wf.status else "FAILED").replace("_", " ").title().replace(" ", "")
    outcome = phase if phase in ("Promoted", *FAILED) and status == "Completed" else status
    assert wf.close_time is not None
    record = Deployment(
        workflow_id=wf.id,
        service=attrs.get(sa.DEPLOY_SERVICE) or "-",
        environment=attrs.get(sa.DEPLOY_ENVIRONMENT) or "-",
        strategy=attrs.get(sa.DEPLOY_STRATEGY) or wf.workflow_type,
        version=None,
        started=wf.start_time,
        finished=wf.close_time,
        outcome=outcome,
        commit_time=commit_time_of(await wf.memo()),
    )
    if outcome not in FAILED or outcome == "TimedOut":
        return record
    handle = client.get_workflow_handle(wf.id, run_id=wf.run_id, result_type=RolloutResult)
    try:
        result = await handle.result(follow_runs=False)
    except WorkflowFailureError:
        return record
    shift = next((e.at for e in result.events if e.kind == "weights"), None)
    stopped = next((e.at for e in result.events if e.kind == "stopping"), None)
    return Deployment(
        **{**record.__dict__, "version": result.version, "first_shift": shift, "stopped": stopped}
    )


async def rollbacks(
    client: Client,
    since: datetime,
    service: str | None = None,
    env: str | None = None,
    page_size: int = PAGE_SIZE,
) -> list[Rollback]:
    query = (
        _query(("EmergencyRollback",), since, service, env) + " AND ExecutionStatus = 'Completed'"
    )
    return [
        Rollback(
            service=wf.typed_search_attributes.get(sa.DEPLOY_SERVICE) or "-",
            environment=wf.typed_search_attributes.get(sa.DEPLOY_ENVIRONMENT) or "-",
            started=wf.start_time,
            finished=wf.close_time,
        )
        async for wf in client.list_workflows(query, page_size=page_size)
        if wf.close_time is not None
    ]


async def incidents(
    client: Client,
    since: datetime,
    service: str | None = None,
    env: str | None = None,
    page_size: int = PAGE_SIZE,
) -> list[Incident]:
    query = _query((INCIDENT,), since, service, env) + " AND ExecutionStatus = 'Completed'"
    runs = [wf async for wf in client.list_workflows(query, page_size=page_size)]

    async def read(wf: WorkflowExecution) -> Incident | None:
        handle = client.get_workflow_handle(wf.id, run_id=wf.run_id, result_type=IncidentStatus)
        try:
            status = await handle.result(follow_runs=False)
        except WorkflowFailureError:
            return None
        return Incident(status.service, status.environment, status.opened_at, status.resolved_at)

    found = await _bounded([functools.partial(read, wf) for wf in runs])
    return [i for i in found if i is not None]
