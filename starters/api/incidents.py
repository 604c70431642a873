"""``/api/v1/incidents``: list, read and steer incident runbooks (as ``deployflow incident``)."""

from __future__ import annotations

from starters import incidents, rollouts
from starters.api.models import Answer, IncidentApproveBody, RunRow, VerbBody
from starters.api.rollouts import LIST_QUERY, list_runs
from starters.api.routing import WORKER_ANSWER_TIMEOUT, Call, Route
from starters.api.tokens import Scope
from workflows.core.verbs import OperatorInput
from workflows.incidents.models import WORKFLOW_TYPE, ApproveInput, IncidentStatus


async def list_incidents(call: Call) -> list[RunRow]:
    return await list_runs(call, WORKFLOW_TYPE)


async def get_incident(call: Call) -> IncidentStatus:
    client = await call.client()
    incident = await incidents.find(client, call.path("incident"), open_only=False)
    status: IncidentStatus = await client.get_workflow_handle(incident).query(
        "status", result_type=IncidentStatus, rpc_timeout=WORKER_ANSWER_TIMEOUT
    )
    return status


def verb_route(verb: str, summary: str) -> Route:
    async def handler(call: Call) -> Answer:
        client = await call.client_as_caller()
        incident = await incidents.find(client, call.path("incident"), open_only=True)
        request: OperatorInput | ApproveInput
        if verb == "approve":
            body = await call.body(IncidentApproveBody)
            request = ApproveInput(approved=body.approved, by=call.caller.name, reason=body.reason)
        else:
            request = OperatorInput(by=call.caller.name, reason=(await call.body(VerbBody)).reason)
        message = await rollouts.send_verb(
            client.get_workflow_handle(incident), verb, request, WORKER_ANSWER_TIMEOUT
        )
        return Answer(workflow_id=incident, message=message)

    handler.__name__ = f"{verb}_incident"
    return Route(
        "POST",
        f"/incidents/{{incident}}/{verb}",
        handler,
        Scope.APPROVE if verb == "approve" else Scope.OPERATE,
        summary,
        Answer,
        body=IncidentApproveBody if verb == "approve" else VerbBody,
        errors=(404, 409, 422),
    )


ROUTES = [
    Route(
        "GET",
        "/incidents",
        list_incidents,
        Scope.READ,
        "List incidents",
        list[RunRow],
        query=LIST_QUERY,
        errors=(400,),
    ),
    Route(
        "GET",
        "/incidents/{incident}",
        get_incident,
        Scope.READ,
        "An incident (id, id prefix, or a service with one): phase, pages, timeline",
        IncidentStatus,
        errors=(400, 404),
    ),
    verb_route("acknowledge", "I am on it: stop escalating"),
    verb_route("resolve", "Resolve now: pages resolved, the Slack thread updated"),
    verb_route("escalate", "Page the next escalation level now"),
    verb_route("approve", "Decide the pending approval step (approved: false rejects it)"),
]
