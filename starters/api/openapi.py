"""The OpenAPI 3.1 document of the deployment API, built from the route table.

Schemas come from the pydantic models the handlers validate and answer with (the same ones
the workflows use), so the document says what the server does: request bodies in their
validation form, answers in their serialisation form (camelCase, as sent).
"""

from __future__ import annotations

import re
import typing
from collections.abc import Sequence
from typing import Any, Final

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from starters.api.models import ErrorBody
from starters.api.routing import PREFIX, Route

OPENAPI_PATH: Final = f"{PREFIX}/openapi.json"
_REF: Final = "#/components/schemas/{model}"
_SSE_EVENT: Final = {  # one event of the stream (the shape OpenAPI 3.2 calls itemSchema)
    "type": "object",
    "properties": {
        "event": {"enum": ["timeline", "status", "end", "error"]},
        "id": {"type": "string", "description": "timeline events: the entry's position"},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
    "required": ["event", "data"],
}
_MESSAGES: Final = {
    400: "Bad request: an argument is wrong (the error names it)",
    401: "No token, or not one of the API's tokens",
    403: "The token lacks the route's scope, or acts as someone else",
    404: "No such run",
    409: "Refused now: already running, or the workflow rejected the verb (its reason)",
    413: "The body is over the server's limit",
    415: "Unsupported Content-Type",
    422: "Invalid spec or body: each problem names its field",
    429: "Over the rate limit: Retry-After says when to try again",
    501: "The Temporal server cannot do this (standalone activities)",
    503: "Temporal is unreachable, or no worker answered in time: retry later",
}


def _model(annotation: Any) -> type[BaseModel] | None:
    """The model of ``Model`` or ``list[Model]``."""
    if typing.get_origin(annotation) is list:
        (annotation,) = typing.get_args(annotation)
    return (
        annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None
    )


def _schema(annotation: Any, refs: dict[Any, Any]) -> Any:
    model = _model(annotation)
    assert model is not None
    ref = refs[(model, "serialization")]
    return {"type": "array", "items": ref} if typing.get_origin(annotation) is list else ref


def document(routes: Sequence[Route], version: str) -> dict[str, Any]:
    """The OpenAPI document for ``routes``; every route is one operation."""
    inputs: list[tuple[type[BaseModel], JsonSchemaMode]] = []
    for route in routes:
        for model in (route.body, route.spec_body):
            if model is not None:
                inputs.append((model, "validation"))
        if (answer := _model(route.response)) is not None:
            inputs.append((answer, "serialization"))
    inputs.append((ErrorBody, "serialization"))
    refs, definitions = models_json_schema(list(dict.fromkeys(inputs)), ref_template=_REF)
    error = {"content": {"application/json": {"schema": refs[(ErrorBody, "serialization")]}}}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [route.path.split("/")[1]],
            "security": [{"bearer": [route.scope.value] if route.scope else []}],
            "parameters": [
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                for name in re.findall(r"{(\w+)}", route.path)
            ]
            + [
                {"name": q.name, "in": "query", "description": q.description, "schema": q.schema}
                for q in route.query
            ],
            "responses": _responses(route, refs, error),
        }
        if route.body is not None:
            operation["requestBody"] = {
                "required": False,
                "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
            }
        if route.spec_body is not None:
            spec = refs[(route.spec_body, "validation")]
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/yaml": {"schema": {"type": "string"}},
                    "application/json": {"schema": spec},
                },
            }
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "deployflow deployment API",
            "version": version,
            "description": "Start, follow and steer rollouts, pipelines and incidents.",
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A token of --api-tokens; its scopes: read, operate, approve",
                }
            },
        },
    }


def _responses(route: Route, refs: dict[Any, Any], error: dict[str, Any]) -> dict[str, Any]:
    if route.stream:
        ok: dict[str, Any] = {
            "description": "text/event-stream: timeline, status and end events",
            "content": {"text/event-stream": {"schema": _SSE_EVENT}},
        }
    else:
        schema = _schema(route.response, refs)
        ok = {"description": "OK", "content": {"application/json": {"schema": schema}}}
    codes = sorted({*route.errors, 401, 429, 503, *((403,) if route.scope else ())})
    if route.body is not None or route.spec_body is not None:
        codes = sorted({*codes, 400, 413, 415})
    return {str(route.status): ok} | {
        str(code): {"description": _MESSAGES[code], **error} for code in codes
    }
