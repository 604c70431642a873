"""The deployment API (``/api/v1``), served by ``deployflow serve`` beside the Alertmanager
intake: one aiohttp app, one port, one access log, one shutdown.

Why aiohttp and not FastAPI or litestar: the intake is aiohttp, and one server keeps one
listener, one middleware (refusals as JSON, the access log that never shows a token) and
one graceful shutdown for both; the bodies that matter most — rollout and pipeline specs —
must be validated by the spec loaders (``load_rollout``, ``parse_pipeline``) so the API's
422 names the same fields as ``deployflow rollout lint``, which a framework's automatic
body validation would not do. What a framework would add, an OpenAPI document from the
pydantic models, is ``starters/api/openapi.py``: the routes are data (``routing.Route``),
registered and documented from the same entries.
"""

from __future__ import annotations

from importlib import metadata

from aiohttp import web

from starters.api import (
    events,
    incidents,
    openapi,
    operations,
    pipelines,
    rollouts,
    scope_rollbacks,
)
from starters.api.models import Caller
from starters.api.routing import Api, Call, Route, register
from starters.api.tokens import Tokens, parse_tokens


async def whoami(call: Call) -> Caller:
    return Caller(name=call.caller.name, scopes=sorted(call.caller.scopes))


ROUTES: list[Route] = [
    Route("GET", "/whoami", whoami, None, "The token's name and scopes", Caller),
    *rollouts.ROUTES,
    *events.ROUTES,
    *operations.ROUTES,
    *scope_rollbacks.ROUTES,
    *pipelines.ROUTES,
    *incidents.ROUTES,
]


def add_api(app: web.Application, api: Api) -> dict[str, object]:
    """Mount the API's routes and its OpenAPI document on ``app``; the document."""
    register(app, api, ROUTES)
    document = openapi.document(ROUTES, metadata.version("deployflow"))

    async def serve_document(request: web.Request) -> web.Response:
        return web.json_response(document)

    async def stop_streams(app: web.Application) -> None:
        api.stopping.set()

    app.router.add_get(openapi.OPENAPI_PATH, serve_document)
    app.on_shutdown.append(stop_streams)
    return document


__all__ = ["ROUTES", "Api", "Tokens", "add_api", "parse_tokens"]
