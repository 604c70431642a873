"""Rollback by scope over the API: ``deployflow rollback --scope GROUP`` as two routes.

``POST /scope-rollbacks/{scope}/{environment}`` finds the scope's services in visibility and
starts one ScopeRollback for them (202, with the services it covers); ``GET`` on the same
path (``?canaryOnly=true`` for a canary abort) shows each service's outcome so far, or the
result once it has finished.
"""

from __future__ import annotations

import re

from pydantic import Field
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from activities.model import Model
from starters.api.models import Failure
from starters.api.operations import run_failure
from starters.api.rollouts import flag
from starters.api.routing import Call, Query, Route
from starters.api.tokens import Scope
from starters.http_errors import Refusal
from starters.scope_rollback import members, start_scope_rollback
from workflows.core.spec import NAME_PATTERN
from workflows.rollouts.scope_rollback import ScopeRollback
from workflows.rollouts.scope_rollback_models import (
    ScopeRollbackRequest,
    ScopeRollbackStatus,
    scope_rollback_workflow_id,
)


class ScopeRollbackBody(Model):
    canary_only: bool = False
    reason: str | None = Field(default=None, max_length=1000)


class ScopeRollbackStarted(Model):
    workflow_id: str
    url: str
    services: list[str]


class ScopeRollbackView(Model):
    workflow_id: str
    url: str
    running: bool
    status: ScopeRollbackStatus | None = None
    failure: Failure | None = None


def _names(call: Call) -> tuple[str, str]:
    """The path's scope and environment, refused (400) unless they are names."""
    names = call.path("scope"), call.path("environment")
    for field, value in zip(("scope", "environment"), names, strict=True):
        if len(value) > 63 or not re.fullmatch(NAME_PATTERN, value):
            raise Refusal(400, f"{field}: must be a name like backend (a-z, 0-9, -)")
    return names


async def start_scope(call: Call) -> ScopeRollbackStarted:
    scope, environment = _names(call)
    body = await call.body(ScopeRollbackBody)
    client = await call.client_as_caller()
    request = ScopeRollbackRequest(
        scope=scope,
        environment=environment,
        services=await members(client, scope, environment),
        canary_only=body.canary_only,
        reason=body.reason or "emergency rollback",
        by=call.caller.name,
    )
    handle = await start_scope_rollback(client, call.api.config, request)
    url = call.api.config.workflow_url(handle.id)
    return ScopeRollbackStarted(workflow_id=handle.id, url=url, services=request.services)


async def get_scope(call: Call) -> ScopeRollbackView:
    scope, environment = _names(call)
    workflow_id = scope_rollback_workflow_id(scope, environment, flag(call, "canaryOnly"))
    client = await call.client()
    handle = client.get_workflow_handle(workflow_id, result_type=ScopeRollbackStatus)
    description = await handle.describe()
    url = call.api.config.workflow_url(workflow_id)
    if description.status == WorkflowExecutionStatus.RUNNING:
        status = await handle.query(ScopeRollback.status)
        return ScopeRollbackView(workflow_id=workflow_id, url=url, running=True, status=status)
    try:
        result = await handle.result()
    except WorkflowFailureError as exc:
        failure = run_failure(description, exc)
        return ScopeRollbackView(workflow_id=workflow_id, url=url, running=False, failure=failure)
    return ScopeRollbackView(workflow_id=workflow_id, url=url, running=False, status=result)


ROUTES = [
    Route(
        "POST",
        "/scope-rollbacks/{scope}/{environment}",
        start_scope,
        Scope.OPERATE,
        "Roll back every service of a group (spec.groups; all: every service) in parallel, "
        "or with canaryOnly stop only their running rollouts",
        ScopeRollbackStarted,
        status=202,
        body=ScopeRollbackBody,
        errors=(400, 404, 415, 422),
    ),
    Route(
        "GET",
        "/scope-rollbacks/{scope}/{environment}",
        get_scope,
        Scope.READ,
        "A scope rollback: each service's outcome so far, or the result",
        ScopeRollbackView,
        query=(Query("canaryOnly", "the canary abort of the scope", {"type": "boolean"}),),
        errors=(400, 404),
    ),
]
