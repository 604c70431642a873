"""The API's routes as data: each ``Route`` is registered on the aiohttp app *and* written
into the OpenAPI document (``starters/api/openapi.py``) from the same entry, so a route
cannot exist without being documented, nor be documented without existing.

A handler gets a ``Call`` (the request, the caller, Temporal) and returns a model (or a
list of models, or a ready response for a stream). Errors every handler can meet are
mapped once here: an invalid spec or body is 422 with ``problems`` naming the fields, a
missing run 404, a refused verb or a run already running 409, a bad argument 400, an
unreachable Temporal 503.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final, Protocol, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from starters.api.guard import RateLimits, authenticate, authorize
from starters.api.tokens import Caller, Scope, Tokens
from starters.errors import Conflict, NotFound, UsageError
from starters.http_errors import Refusal, describe, read_body, unreachable
from workers.config import TemporalConfig
from workflows.core.spec import SpecError, validation_problems
from workflows.rollouts.emergency_plan import NoRollbackTarget

PREFIX: Final = "/api/v1"
CALLER: Final = web.RequestKey("api_caller", str)
M = TypeVar("M", bound=BaseModel)

WORKER_ANSWER_TIMEOUT = timedelta(seconds=10)
"""How long a query or a verb (an update) may wait for a worker. With no worker polling,
the server holds either until its own deadline; the API answers instead: a view says it
could not read the run, an endpoint that needs the answer is a 503 naming the cause."""


def timed_out(exc: RPCError) -> bool:
    """A call's own ``rpc_timeout`` ran out: the SDK (1.35) reports it as CANCELLED with
    "Timeout expired", a server-side deadline as DEADLINE_EXCEEDED."""
    return exc.status == RPCStatusCode.DEADLINE_EXCEEDED or (
        exc.status == RPCStatusCode.CANCELLED and exc.message == "Timeout expired"
    )


NO_WORKER_ANSWERED = (
    f"no deployflow worker answered within {WORKER_ANSWER_TIMEOUT.total_seconds():.0f} s "
    "(is one polling?)"
)


def no_answer(exc: RPCError) -> str:
    """What a query that timed out means, said to whoever asked."""
    return NO_WORKER_ANSWERED if timed_out(exc) else exc.message


class ConnectAs(Protocol):
    """``TemporalConnection``: a client, as ``identity`` when given."""

    def __call__(self, identity: str | None = None) -> Awaitable[Client]: ...


@dataclass
class Api:
    """What every handler shares; ``stopping`` is set when the server shuts down (event
    streams end then, instead of holding the shutdown up)."""

    connect: ConnectAs
    config: TemporalConfig
    tokens: Tokens
    rate: RateLimits = field(default_factory=RateLimits)
    max_body_bytes: int = 1024 * 1024
    stopping: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Call:
    request: web.Request
    api: Api
    caller: Caller

    def path(self, name: str) -> str:
        return self.request.match_info[name]

    def query(self, name: str) -> str | None:
        return self.request.query.get(name)

    async def client(self) -> Client:
        return await self.api.connect()

    async def client_as_caller(self) -> Client:
        """A client whose identity is the caller's name: history records who acted."""
        return await self.api.connect(self.caller.name)

    async def text(self) -> str:
        raw = await read_body(self.request, self.api.max_body_bytes)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Refusal(400, f"the body is not UTF-8 text (byte {exc.start})") from None

    async def body(self, model: type[M]) -> M:
        """The JSON body as ``model`` (an empty body is ``{}``); 422 naming the fields."""
        text = await self.text()
        if text.strip() and self.request.content_type != "application/json":
            raise Refusal(
                415, f"Content-Type must be application/json, not {self.request.content_type}"
            )
        try:
            document = json.loads(text) if text.strip() else {}
        except (json.JSONDecodeError, RecursionError) as exc:
            raise Refusal(400, f"the body is not JSON: {exc}") from None
        try:
            return model.model_validate(document)
        except ValidationError as exc:
            raise Refusal(422, "invalid request body", validation_problems(exc)) from None


Handler = Callable[[Call], Awaitable[BaseModel | Sequence[BaseModel] | web.StreamResponse]]


@dataclass(frozen=True)
class Query:
    name: str
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # below PREFIX, aiohttp's {name} placeholders
    handler: Handler
    scope: Scope | None  # None: any valid token
    summary: str
    response: Any  # a model type, list[Model], or None for an event stream
    status: int = 200
    body: type[BaseModel] | None = None  # a JSON body of this model (optional fields: {})
    spec_body: type[BaseModel] | None = None  # the body is this spec, as YAML or JSON
    query: tuple[Query, ...] = ()
    errors: tuple[int, ...] = ()
    stream: bool = False  # text/event-stream

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.strip("_")


def register(app: web.Application, api: Api, routes: Sequence[Route]) -> None:
    for route in routes:
        app.router.add_route(route.method, PREFIX + route.path, _endpoint(api, route))


def _endpoint(api: Api, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        caller = authenticate(request, api.tokens, api.rate)
        request[CALLER] = caller.name
        if route.scope is not None:
            authorize(caller, route.scope)
        try:
            result = await route.handler(Call(request, api, caller))
        except SpecError as exc:
            raise Refusal(422, "invalid spec", exc.problems) from None
        except ValidationError as exc:
            raise Refusal(422, "invalid request", validation_problems(exc)) from None
        except NotFound as exc:
            raise Refusal(404, str(exc)) from None
        except Conflict as exc:
            raise Refusal(409, str(exc)) from None
        except (UsageError, NoRollbackTarget) as exc:
            raise Refusal(400, str(exc)) from None
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise Refusal(404, exc.message) from None
            if timed_out(exc):
                raise Refusal(503, NO_WORKER_ANSWERED) from None
            if not unreachable(exc):
                raise
            raise Refusal(503, f"Temporal is unreachable, retry later: {describe(exc)}") from None
        except WorkflowUpdateRPCTimeoutOrCancelledError:
            raise Refusal(503, NO_WORKER_ANSWERED) from None
        except (TimeoutError, ConnectionError) as exc:
            raise Refusal(503, f"Temporal is unreachable, retry later: {describe(exc)}") from None
        if isinstance(result, web.StreamResponse):
            return result
        return json_answer(result, route.status)

    return endpoint


def json_answer(result: BaseModel | Sequence[BaseModel], status: int = 200) -> web.Response:
    if isinstance(result, BaseModel):
        text = result.model_dump_json(by_alias=True)
    else:
        text = "[" + ",".join(r.model_dump_json(by_alias=True) for r in result) + "]"
    return web.Response(text=text, status=status, content_type="application/json")
