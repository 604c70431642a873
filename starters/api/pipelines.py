"""``/api/v1/pipelines``: submit a version, list, read with promotion eligibility, and
approve or reject a gate — as the token's own name, never as someone else."""

from __future__ import annotations

from datetime import UTC, datetime

from starters import pipeline_start, rollouts
from starters.api.models import (
    Answer,
    ApproveBody,
    Gate,
    NextStage,
    PipelineView,
    RunRow,
    Started,
)
from starters.api.rollouts import LIST_QUERY, list_runs, spec_document
from starters.api.routing import WORKER_ANSWER_TIMEOUT, Call, Query, Route
from starters.api.tokens import Scope
from starters.http_errors import Refusal
from workflows.core.durations import parse_duration
from workflows.core.windows import next_opening
from workflows.promotion.models import (
    ApprovalInput,
    PipelineOutcome,
    PipelineRequest,
    PipelineStatus,
    Submission,
)
from workflows.promotion.spec import Pipeline, parse_pipeline
from workflows.rollouts import emergency_plan

GATED = ("pending", "waiting-window", "soaking", "awaiting-approval")


def next_stage(pipeline: Pipeline, status: PipelineStatus, now: datetime) -> NextStage | None:
    """The first stage still waiting to start, and each of its gates: upstream (the stage
    before succeeded, verification included), window, soak, approval — passed or why not."""
    if status.outcome is not PipelineOutcome.RUNNING:
        return None
    index = next((i for i, s in enumerate(status.stages) if s.state in GATED), None)
    if index is None:
        return None
    stage, state = pipeline.spec.stages[index], status.stages[index]
    gates: list[Gate] = []
    upstream = status.stages[index - 1] if index else None
    if upstream is not None:
        done = upstream.state == "succeeded"
        verified = " and verified" if pipeline.spec.stages[index - 1].verification else ""
        reason = (
            f"{upstream.environment} is live{verified}"
            if done
            else (f"{upstream.environment} is {upstream.state}")
        )
        gates.append(Gate(gate="upstream", passed=done, reason=reason))
    if stage.window is not None:
        opening = next_opening(now, *stage.window.as_rules())
        if opening is None:
            gates.append(Gate(gate="window", passed=False, reason="its window never opens"))
        elif opening > now:
            reason = f"outside its window until {opening:%Y-%m-%d %H:%M} UTC"
            gates.append(Gate(gate="window", passed=False, reason=reason, until=opening))
        else:
            gates.append(Gate(gate="window", passed=True, reason="inside its window"))
    if stage.required_soak_time is not None and upstream is not None:
        if upstream.live_since is None:
            reason = f"{upstream.environment} is not live yet"
            gates.append(Gate(gate="soak", passed=False, reason=reason))
        else:
            ready = upstream.live_since + parse_duration(stage.required_soak_time)
            passed = ready <= now
            reason = (
                f"soaked {stage.required_soak_time} in {upstream.environment}"
                if passed
                else f"soaking in {upstream.environment} until {ready:%H:%M:%S} UTC"
            )
            gates.append(Gate(gate="soak", passed=passed, reason=reason, until=ready))
    if stage.approval is not None:
        approved = sorted({a.approver for a in state.approvals if a.decision == "approved"})
        rejected = [a.approver for a in state.approvals if a.decision == "rejected"]
        need = stage.approval.min_approvals
        approvers = ", ".join(state.approvers or stage.approval.approvers)
        if rejected:
            gates.append(Gate(gate="approval", passed=False, reason=f"rejected by {rejected[0]}"))
        else:
            got = f"{len(approved)} of {need} approval(s) from {approvers}"
            by = f" ({', '.join(approved)})" if approved else ""
            gates.append(Gate(gate="approval", passed=len(approved) >= need, reason=got + by))
    return NextStage(
        environment=state.environment,
        state=state.state,
        may_start=all(g.passed for g in gates),
        gates=gates,
    )


def _workflow_id(call: Call) -> str:
    return f"pipeline-{call.path('name')}"


async def submit_pipeline(call: Call) -> Started:
    documents = [d for d in await spec_document(call) if d is not None]
    if len(documents) != 1:
        raise Refusal(
            422,
            "invalid spec",
            [f"(top level): expected one kind: Pipeline document, found {len(documents)}"],
        )
    pipeline = parse_pipeline(documents[0], "request body")
    version = call.query("version") or pipeline.spec.version
    if not version:
        raise Refusal(422, "invalid spec", ["version: required (the spec has no spec.version)"])
    Submission(version=version)  # 422 naming the version if it is not one
    client = await call.client_as_caller()
    handle, answer = await pipeline_start.submit(
        client, call.api.config, pipeline, version, call.caller.name
    )
    return Started(
        workflow_id=handle.id, url=call.api.config.workflow_url(handle.id), message=answer
    )


async def list_pipelines(call: Call) -> list[RunRow]:
    return await list_runs(call, "PromotionPipeline")


async def get_pipeline(call: Call) -> PipelineView:
    client = await call.client()
    workflow_id = _workflow_id(call)
    status = await client.get_workflow_handle(workflow_id).query(
        "status", result_type=PipelineStatus, rpc_timeout=WORKER_ANSWER_TIMEOUT
    )
    # The current run's input: a pipeline continues as new for each version.
    request = await emergency_plan.started_input(client, workflow_id, PipelineRequest)
    return PipelineView(
        workflow_id=workflow_id,
        url=call.api.config.workflow_url(workflow_id),
        status=status,
        next=next_stage(request.pipeline, status, datetime.now(UTC)),
    )


def decision_route(decision: str) -> Route:
    async def handler(call: Call) -> Answer:
        body = await call.body(ApproveBody)
        if body.approver is not None and body.approver != call.caller.name:
            raise Refusal(
                403,
                f"approver: this token approves only as {call.caller.name!r}, "
                f"not as {body.approver!r}",
            )
        request = ApprovalInput(approver=call.caller.name, comment=body.comment, stage=body.stage)
        client = await call.client_as_caller()
        handle = client.get_workflow_handle(_workflow_id(call))
        message = await rollouts.send_verb(handle, decision, request, WORKER_ANSWER_TIMEOUT)
        return Answer(workflow_id=handle.id, message=message)

    handler.__name__ = f"{decision}_pipeline_gate"
    return Route(
        "POST",
        f"/pipelines/{{name}}/{decision}",
        handler,
        Scope.APPROVE,
        f"{decision.capitalize()} the open gate (or body.stage's) as the token's name",
        Answer,
        body=ApproveBody,
        errors=(404, 409, 422),
    )


ROUTES = [
    Route(
        "POST",
        "/pipelines",
        submit_pipeline,
        Scope.OPERATE,
        "Start a pipeline, or submit a newer version to the running one",
        Started,
        status=202,
        spec_body=Pipeline,
        query=(Query("version", "the version to promote (default: spec.version)"),),
        errors=(400, 415, 422),
    ),
    Route(
        "GET",
        "/pipelines",
        list_pipelines,
        Scope.READ,
        "List pipelines",
        list[RunRow],
        query=LIST_QUERY,
        errors=(400,),
    ),
    Route(
        "GET",
        "/pipelines/{name}",
        get_pipeline,
        Scope.READ,
        "Stages, approvals, queue, and whether the next stage may start now (gate by gate)",
        PipelineView,
        errors=(404,),
    ),
    decision_route("approve"),
    decision_route("reject"),
]
