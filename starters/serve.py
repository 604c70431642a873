"""`deployflow serve`: receive Alertmanager webhooks and open incidents on Temporal.

``POST /alerts/alertmanager`` takes a version-4 webhook body with ``Authorization: Bearer
$DEPLOYFLOW_WEBHOOK_TOKEN`` and starts or signals the alert group's IncidentRunbook;
``GET /healthz`` answers 200. A bad request is a 4xx and never reaches Temporal;
Alertmanager does not retry a 4xx, so only "try again later" is a 5xx: 503 while Temporal
is unreachable. SIGHUP reloads the runbooks (a broken file keeps the old ones);
SIGINT/SIGTERM finish the requests in flight and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hmac
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Final, Protocol

import structlog
from aiohttp import web
from temporalio.client import Client

from starters.alertmanager import (
    OversizedNotification,
    PayloadError,
    parse_payload,
    to_notification,
)
from starters.api import Api, Tokens, add_api
from starters.api.guard import RateLimits, parse_rate
from starters.api.openapi import OPENAPI_PATH
from starters.api.routing import CALLER
from starters.api.tokens import load_tokens
from starters.errors import EXIT_OK, UsageError
from starters.http_errors import Refusal, describe, read_body, unreachable
from starters.serve_command import DEFAULT_MAX_BODY, TOKEN_ENV
from workers.config import TemporalConfig
from workers.listen import parse_listen, start_site
from workers.logging_setup import configure_logging
from workers.runbook_files import load_runbook_path
from workflows.core.spec import SpecError
from workflows.incidents import intake
from workflows.incidents.models import AlertNotification
from workflows.incidents.spec import Runbook

DELIVER_TIMEOUT: Final = 10.0
_BODY_HEADERS: Final = ("content-type", "content-length")
ALERTMANAGER_PATH: Final = "/alerts/alertmanager"

log = structlog.get_logger("deployflow.serve")
DELIVERIES: Final = web.RequestKey("deliveries", list[intake.Delivery])

Connect = Callable[[], Awaitable[Client]]


class Deliver(Protocol):
    """``intake.deliver``'s signature; tests pass a recording stand-in."""

    def __call__(
        self,
        client: Client,
        task_queue: str,
        notification: AlertNotification,
        runbooks: list[Runbook],
        ui_base: str | None,
    ) -> Awaitable[intake.Delivery]: ...


class TemporalConnection:
    """Connects on first use and keeps the client; a failed attempt is retried by the next
    request, so the server can start (and answer 503) before Temporal is up. The API's
    verbs connect as their caller (``identity``: one client per token name), so history
    names who sent them."""

    def __init__(self, config: TemporalConfig) -> None:
        self.config = config
        self._clients: dict[str | None, Client] = {}
        self._lock = asyncio.Lock()

    async def __call__(self, identity: str | None = None) -> Client:
        async with self._lock:
            if identity not in self._clients:
                self._clients[identity] = await self.config.connect(identity=identity)
            return self._clients[identity]


def build_app(
    connect: Connect,
    runbooks: list[Runbook],
    token: str | None,
    max_body_bytes: int = DEFAULT_MAX_BODY,
    task_queue: str = TemporalConfig.task_queue,
    ui_base: str | None = None,
    deliver: Deliver = intake.deliver,
    deliver_timeout: float = DELIVER_TIMEOUT,
    api: Api | None = None,
) -> web.Application:
    """The intake (and, given ``api``, the deployment API) as an aiohttp app. ``runbooks``
    is read on every request, so replacing its contents in place (``runbooks[:] = new``)
    reloads them; ``token=None`` disables the intake's authentication."""
    expected = token.encode("utf-8", "surrogatepass") if token is not None else None

    async def alertmanager(request: web.Request) -> web.Response:
        authorize(request, expected)
        if request.content_type != "application/json":
            raise Refusal(415, f"Content-Type must be application/json, not {request.content_type}")
        body = await read_body(request, max_body_bytes)
        try:
            notification = to_notification(parse_payload(body))
        except PayloadError as exc:
            raise Refusal(400, "not an Alertmanager webhook (version 4)", exc.problems) from None
        except OversizedNotification as exc:
            raise Refusal(413, str(exc)) from None
        try:
            async with asyncio.timeout(deliver_timeout):
                client = await connect()
                delivery = await deliver(client, task_queue, notification, list(runbooks), ui_base)
        except Exception as exc:
            if not unreachable(exc):
                raise
            raise Refusal(503, f"Temporal is unreachable, retry later: {describe(exc)}") from None
        request[DELIVERIES] = [delivery]
        return web.json_response({"incidents": [_incident(delivery)]})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "runbooks": len(runbooks)})

    app = web.Application(middlewares=[_access_log], client_max_size=max_body_bytes)
    app.router.add_post(ALERTMANAGER_PATH, alertmanager)
    app.router.add_get("/healthz", healthz)
    if api is not None:
        add_api(app, api)
    return app


def authorize(request: web.Request, expected: bytes | None) -> None:
    """Refuse (401) a request without ``Authorization: Bearer <expected>``; constant time."""
    if expected is None:
        return
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        raise Refusal(
            401,
            "a Bearer token is required",
            headers={"WWW-Authenticate": 'Bearer realm="deployflow"'},
        )
    # surrogatepass: any header text encodes, and distinct texts stay distinct.
    if not hmac.compare_digest(given.strip().encode("utf-8", "surrogatepass"), expected):
        raise Refusal(
            401,
            "the Bearer token is wrong",
            headers={"WWW-Authenticate": 'Bearer realm="deployflow", error="invalid_token"'},
        )


def _incident(delivery: intake.Delivery) -> dict[str, str]:
    return {
        "workflowId": delivery.workflow_id,
        "action": delivery.action,
        "reason": delivery.reason,
    }


@web.middleware
async def _access_log(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """One log line per request (never its headers: they carry the token); refusals become
    JSON answers, and an unexpected error a 500 that names no internals."""
    started = time.perf_counter()
    error: str | None = None
    try:
        response = await handler(request)
    except Refusal as refusal:
        error = refusal.message
        body: dict[str, object] = {"error": refusal.message}
        if refusal.problems:
            body["problems"] = refusal.problems
        response = web.json_response(body, status=refusal.status, headers=refusal.headers)
    except web.HTTPException as exc:
        error = exc.reason
        # Its own headers (Allow, Location) without its text/plain Content-Type.
        kept = {k: v for k, v in exc.headers.items() if k.lower() not in _BODY_HEADERS}
        response = web.json_response({"error": exc.reason}, status=exc.status, headers=kept)
    except Exception:
        log.exception("request failed", method=request.method, path=request.path)
        error = "internal error"
        response = web.json_response({"error": "internal error, see the server's log"}, status=500)
    deliveries = request.get(DELIVERIES, [])
    log.info(
        "request",
        method=request.method,
        path=request.path,
        status=response.status,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        remote=request.remote,
        caller=request.get(CALLER),
        error=error,
        incidents=[_incident(d) for d in deliveries] or None,
    )
    return response


def webhook_token(insecure_no_auth: bool) -> str | None:
    """The token from the environment; without one, starting needs ``--insecure-no-auth``."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    if insecure_no_auth:
        return None
    raise UsageError(
        f"{TOKEN_ENV} is not set: set it to the token Alertmanager sends "
        "(http_config.authorization.credentials), or pass --insecure-no-auth"
    )


def run(args: argparse.Namespace) -> int:
    """Validate everything, then listen until SIGINT/SIGTERM."""
    path = Path(args.runbooks)
    runbooks = load_runbook_path(path)
    token = webhook_token(args.insecure_no_auth)
    host, port = parse_listen(args.listen)
    configure_logging(json=True)
    config = TemporalConfig.from_env(args.profile)
    ui_base = (args.ui_url or config.ui_url).rstrip("/")
    if token is None:
        log.warning("authentication is off (--insecure-no-auth): anyone can open incidents")
    connection = TemporalConnection(config)
    api = Api(
        connection,
        config,
        load_tokens(args.api_tokens, dict(os.environ)),
        rate=RateLimits(_api_rate(args.api_rate)),
        max_body_bytes=args.max_body_bytes,
    )
    app = build_app(
        connection,
        runbooks,
        token,
        max_body_bytes=args.max_body_bytes,
        task_queue=config.task_queue,
        ui_base=ui_base,
        api=api,
    )
    reload = functools.partial(_reload, runbooks, path, api.tokens, args.api_tokens)
    asyncio.run(_serve(app, host, port, connection, reload))
    return EXIT_OK


async def _serve(
    app: web.Application,
    host: str,
    port: int,
    connection: TemporalConnection,
    reload: Callable[[], None],
) -> None:
    config = connection.config
    runner = await start_site(app, host, port, shutdown_timeout=DELIVER_TIMEOUT + 5)
    stop = stop_on_signals()
    asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
    log.info(
        "serving",
        url=f"http://{host}:{port}{ALERTMANAGER_PATH}",
        api=f"http://{host}:{port}{OPENAPI_PATH}",
        temporal=config.address,
        namespace=config.namespace,
        task_queue=config.task_queue,
        security=config.security,
        codec_keys=config.codec_keys.ids if config.codec_keys else None,
    )
    warm_up = asyncio.create_task(_warm_up(connection))
    try:
        await stop.wait()
    finally:
        log.info("stopping: finishing requests in flight")
        warm_up.cancel()
        await runner.cleanup()
    log.info("stopped")


def stop_on_signals() -> asyncio.Event:
    """An event SIGINT or SIGTERM sets."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def _warm_up(connection: TemporalConnection) -> None:
    """Connect at start so a wrong address shows in the log before the first alert does."""
    try:
        await connection()
    except Exception as exc:
        log.warning(
            "cannot connect to Temporal; answering 503 until it can",
            temporal=connection.config.address,
            error=describe(exc),
        )
        return
    log.info("connected to Temporal", temporal=connection.config.address)


def _api_rate(text: str) -> str:
    try:
        parse_rate(text)
    except ValueError as exc:
        raise UsageError(f"--api-rate: {exc}") from None
    return text


def _reload(runbooks: list[Runbook], path: Path, tokens: Tokens, tokens_path: str | None) -> None:
    """SIGHUP: the runbooks and the API's tokens again; a broken file keeps the old ones."""
    try:
        runbooks[:] = load_runbook_path(path)
    except (SpecError, UsageError) as exc:
        log.error("runbooks not reloaded; keeping the previous ones", error=str(exc))
    else:
        log.info("runbooks reloaded", runbooks=[r.name for r in runbooks])
    try:
        tokens.replace(load_tokens(tokens_path, dict(os.environ)))
    except (SpecError, UsageError) as exc:
        log.error("API tokens not reloaded; keeping the previous ones", error=str(exc))
    else:
        log.info("API tokens reloaded", callers=tokens.names)


__all__ = ["build_app", "run"]
