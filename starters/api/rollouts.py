"""``/api/v1/rollouts``: start one from a spec, list, read, steer, and its health.

A rollout is named by service and environment, as in the CLI (``rollout-SERVICE-ENV`` is
its workflow id). Starting takes the spec file's text as it is (``application/yaml``, or
the same document as ``application/json``) and validates it exactly as ``deployflow rollout
start`` does; the verbs are the workflows' updates, so a verb that does not apply now is
refused with the workflow's reason (409).
"""

from __future__ import annotations

import json
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError

from activities.errors import root_cause
from starters import rollout_start, rollouts
from starters.api.models import (
    Answer,
    Failure,
    Measured,
    NextStep,
    RolloutHealth,
    RolloutView,
    RunRow,
    Started,
    VerbBody,
)
from starters.api.routing import WORKER_ANSWER_TIMEOUT, Call, Query, Route, no_answer
from starters.api.tokens import Scope
from starters.deploy_memo import parse_commit_time
from starters.http_errors import Refusal
from workflows.core.spec import yaml_documents
from workflows.core.verbs import OperatorInput
from workflows.rollouts import emergency_plan
from workflows.rollouts.models import RolloutPhase, RolloutResult, RolloutStatus
from workflows.rollouts.registry import WORKFLOW_TYPES
from workflows.rollouts.spec import Rollout, parse_rollout, rollout_workflow_id

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/plain")
MAX_LIST = 1000


async def spec_document(call: Call, source: str = "request body") -> list[Any]:
    """The documents of a spec body: JSON, or YAML (a spec file's text, several documents)."""
    text = await call.text()
    content_type = call.request.content_type
    if content_type == "application/json":
        try:
            return [json.loads(text)]
        except (json.JSONDecodeError, RecursionError) as exc:
            raise Refusal(400, f"the body is not JSON: {exc}") from None
    if content_type not in YAML_TYPES:
        raise Refusal(
            415, f"Content-Type must be application/yaml or application/json, not {content_type}"
        )
    return yaml_documents(text, source)


async def start_rollout(call: Call) -> Started:
    commit = call.query("commitTime")
    commit_time = parse_commit_time(commit, "commitTime") if commit is not None else None
    rollout: Rollout = parse_rollout(await spec_document(call), "request body")
    client = await call.client_as_caller()
    handle = await rollout_start.start_rollout(
        client,
        call.api.config,
        rollout,
        by=call.caller.name,
        source="the deployment API",
        commit_time=commit_time,
    )
    url = call.api.config.workflow_url(handle.id, handle.result_run_id)
    return Started(
        workflow_id=handle.id,
        run_id=handle.result_run_id,
        url=url,
        message=rollout_start.describe(rollout),
    )


def limit(call: Call) -> int:
    text = call.query("limit") or "50"
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIST:
        raise Refusal(400, f"limit: expected a number from 1 to {MAX_LIST}, got {text[:20]!r}")
    return int(text)


def flag(call: Call, name: str) -> bool:
    text = (call.query(name) or "false").lower()
    if text not in ("true", "false", "1", "0"):
        raise Refusal(400, f"{name}: expected true or false, got {text[:20]!r}")
    return text in ("true", "1")


def visibility_query(base: str, call: Call) -> str:
    """``base`` narrowed by the ``all``, ``service`` and ``environment`` query parameters."""
    query = base
    if not flag(call, "all"):
        query += " AND ExecutionStatus = 'Running'"
    for parameter, attribute in (
        ("service", "DeployService"),
        ("environment", "DeployEnvironment"),
    ):
        value = call.query(parameter)
        if value is not None:
            query += f" AND {attribute} = {json.dumps(value)}"
    return query


async def list_runs(call: Call, *types: str) -> list[RunRow]:
    """Runs of the workflow ``types``, narrowed by the list query parameters."""
    query = visibility_query(f"WorkflowType IN ({', '.join(map(repr, types))})", call)
    rows = await rollouts.visibility_rows(await call.client(), query, limit(call))
    return [RunRow.model_validate(row) for row in rows]


async def list_rollouts(call: Call) -> list[RunRow]:
    return await list_runs(call, *WORKFLOW_TYPES)


async def view(client: Client, workflow_id: str, url: str) -> RolloutView:
    """A rollout's status (running) or result (finished), as ``rollout status`` shows it."""
    handle = client.get_workflow_handle(workflow_id, result_type=RolloutResult)
    description = await handle.describe()
    if description.status == WorkflowExecutionStatus.RUNNING:
        try:
            status = await handle.query(
                "status", result_type=RolloutStatus, rpc_timeout=WORKER_ANSWER_TIMEOUT
            )
        except RPCError as exc:
            return RolloutView(
                workflow_id=workflow_id, url=url, running=True, unreadable=no_answer(exc)
            )
        return RolloutView(workflow_id=workflow_id, url=url, running=True, status=status)
    try:
        result = await handle.result()
    except WorkflowFailureError as exc:
        outcome = description.status.name if description.status else "FAILED"
        failure = Failure(outcome=outcome.capitalize(), reason=root_cause(exc).located)
        return RolloutView(workflow_id=workflow_id, url=url, running=False, failure=failure)
    return RolloutView(workflow_id=workflow_id, url=url, running=False, result=result)


async def get_rollout(call: Call) -> RolloutView:
    workflow_id = rollout_workflow_id(call.path("service"), call.path("environment"))
    return await view(await call.client(), workflow_id, call.api.config.workflow_url(workflow_id))


async def rollout_health(call: Call) -> RolloutHealth:
    service, environment = call.path("service"), call.path("environment")
    client = await call.client()
    current = await view(client, rollout_workflow_id(service, environment), "")
    live, _ = emergency_plan.lists_after(
        await emergency_plan.deployments(client, service, environment)
    )
    shown = current.status or current.result
    measurements = [
        Measured(
            analysis=run.name,
            metric=metric.name,
            phase=metric.phase.value,
            value=metric.measurements[-1].value if metric.measurements else [],
            at=metric.measurements[-1].finished_at if metric.measurements else None,
            message=metric.measurements[-1].message if metric.measurements else metric.message,
        )
        for run in (shown.analysis_runs if shown else [])
        for metric in run.metrics
    ]
    phase = (
        current.status.phase.value
        if current.status
        else current.result.outcome.value
        if current.result
        else current.failure.outcome
        if current.failure
        else "Unknown"
    )
    return RolloutHealth(
        workflow_id=current.workflow_id,
        running=current.running,
        phase=phase,
        version=shown.version if shown else None,
        live_version=live,
        weights=shown.weights if shown else None,
        measurements=measurements,
        next=next_step(current),
    )


def next_step(current: RolloutView) -> NextStep:
    """Whether the rollout may go on now, and the verb that would make it."""
    status = current.status
    if not current.running or status is None:
        why = current.unreadable or "it has finished"
        return NextStep(may_proceed=False, reason=why)
    if status.phase is RolloutPhase.PAUSED:
        action = "promote" if status.paused_reason is None else "resume"
        return NextStep(may_proceed=True, action=action, reason=status.message)
    running = [r.name for r in status.analysis_runs if not r.phase.completed]
    if running and status.phase is RolloutPhase.PROGRESSING:
        return NextStep(may_proceed=False, reason=f"analysis {', '.join(running)} is running")
    return NextStep(may_proceed=False, reason=status.message or status.phase.value)


def verb_route(verb: str, update: str, summary: str) -> Route:
    async def handler(call: Call) -> Answer:
        body = await call.body(VerbBody)
        client = await call.client_as_caller()
        workflow_id = rollout_workflow_id(call.path("service"), call.path("environment"))
        request = OperatorInput(reason=body.reason, by=call.caller.name)
        message = await rollouts.send_verb(
            client.get_workflow_handle(workflow_id), update, request, WORKER_ANSWER_TIMEOUT
        )
        return Answer(workflow_id=workflow_id, message=message)

    handler.__name__ = f"{update}_rollout"
    return Route(
        "POST",
        f"/rollouts/{{service}}/{{environment}}/{verb}",
        handler,
        Scope.OPERATE,
        summary,
        Answer,
        body=VerbBody,
        errors=(404, 409, 422),
    )


LIST_QUERY = (
    Query("all", "finished runs too (default: running only)", {"type": "boolean"}),
    Query("service", "only this service"),
    Query("environment", "only this environment"),
    Query(
        "limit", "at most this many rows", {"type": "integer", "minimum": 1, "maximum": MAX_LIST}
    ),
)

ROUTES = [
    Route(
        "POST",
        "/rollouts",
        start_rollout,
        Scope.OPERATE,
        "Start a rollout from a spec (the file's YAML, or the same document as JSON)",
        Started,
        status=201,
        spec_body=Rollout,
        query=(Query("commitTime", "when the change was committed (ISO 8601 with a zone)"),),
        errors=(400, 409, 415, 422),
    ),
    Route(
        "GET",
        "/rollouts",
        list_rollouts,
        Scope.READ,
        "List rollouts",
        list[RunRow],
        query=LIST_QUERY,
        errors=(400,),
    ),
    Route(
        "GET",
        "/rollouts/{service}/{environment}",
        get_rollout,
        Scope.READ,
        "A rollout's status (running) or result: phase, step, weights, analysis, timeline",
        RolloutView,
        errors=(404,),
    ),
    Route(
        "GET",
        "/rollouts/{service}/{environment}/health",
        rollout_health,
        Scope.READ,
        "The live version, the last measurements, and whether the rollout may go on now",
        RolloutHealth,
        errors=(404,),
    ),
    verb_route("promote", "promote", "Finish the current pause and go on"),
    verb_route("promote-full", "promote_full", "Skip the remaining steps: straight to 100 %"),
    verb_route("pause", "pause", "Hold before the next step"),
    verb_route("resume", "resume", "Continue a paused rollout"),
    verb_route("abort", "abort", "Stop and send all traffic back to stable"),
]

__all__ = ["ROUTES", "spec_document", "view"]
