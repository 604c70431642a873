"""`deployflow codec-server`: Temporal's codec server protocol over the workers' keys, so the
Temporal UI and `temporal workflow show --codec-endpoint` can show encrypted payloads.

``POST /encode`` and ``POST /decode`` take and answer ``{"payloads": [...]}`` (Temporal's
``Payloads`` message in proto JSON). Callers send ``Authorization: Bearer <token>``; a browser
on an allowed origin (the Temporal UI) gets CORS answers, preflight included. Request bodies
and the token are never logged.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp_cors
import structlog
from aiohttp import web
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import PayloadCodec

from starters.codec_server_command import TOKEN_ENV
from starters.errors import EXIT_OK, UsageError
from starters.http_errors import Refusal
from starters.serve import authorize, stop_on_signals
from workers.codec import EncryptionCodec
from workers.codec_keys import KEY_ENV, KEYS_FILE_ENV, CodecKeyError, keys_from_env
from workers.config import TemporalConfig
from workers.listen import parse_listen, start_site
from workers.logging_setup import configure_logging

MAX_BODY_BYTES = 16 * 1024 * 1024
log = structlog.get_logger("deployflow.codec_server")


def build_app(codec: PayloadCodec, token: str | None, origins: Sequence[str]) -> web.Application:
    """The two endpoints, CORS for ``origins``; ``token=None`` disables authentication."""
    expected = token.encode("utf-8", "surrogatepass") if token is not None else None

    def endpoint(
        convert: Callable[[Sequence[Payload]], Awaitable[list[Payload]]],
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            started = time.perf_counter()
            count: int | None = None
            try:
                authorize(request, expected)
                try:
                    payloads = json_format.Parse(await request.read(), Payloads()).payloads
                except json_format.ParseError as exc:
                    raise Refusal(400, f'expected {{"payloads": [...]}}: {exc}') from None
                count = len(payloads)
                try:
                    converted = await convert(payloads)
                except CodecKeyError as exc:
                    raise Refusal(400, str(exc)) from None
                body = json_format.MessageToJson(Payloads(payloads=converted))
                response = web.Response(text=body, content_type="application/json")
            except Refusal as refusal:
                response = web.json_response(
                    {"error": refusal.message}, status=refusal.status, headers=refusal.headers
                )
            log.info(
                "request",
                path=request.path,
                status=response.status,
                payloads=count,
                namespace=request.headers.get("X-Namespace"),
                duration_ms=round((time.perf_counter() - started) * 1000, 1),
                remote=request.remote,
            )
            return response

        return handle

    app = web.Application(client_max_size=MAX_BODY_BYTES)
    cors = aiohttp_cors.setup(
        app,
        defaults={
            # aiohttp-cors ships py.typed but leaves ResourceOptions' __init__ unannotated.
            origin: aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
                allow_credentials=True,
                allow_headers=("Content-Type", "Authorization", "X-Namespace"),
                allow_methods=("POST",),
                max_age=3600,
            )
            for origin in origins
        },
    )
    cors.add(app.router.add_post("/encode", endpoint(codec.encode)))
    cors.add(app.router.add_post("/decode", endpoint(codec.decode)))
    return app


def ui_origin(url: str) -> str:
    """``scheme://host[:port]`` of a UI address: what a browser sends as its Origin."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise UsageError(f"--cors-origin: expected e.g. http://localhost:8233, got {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def server_token(token_file: str | None, insecure_no_auth: bool, env_token: str) -> str | None:
    """The Bearer token from ``--token-file`` or the environment; without one, starting
    needs ``--insecure-no-auth``."""
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise UsageError(f"--token-file: cannot read {token_file}: {reason}") from None
        if not token:
            raise UsageError(f"--token-file: {token_file} is empty")
        return token
    if env_token.strip():
        return env_token.strip()
    if insecure_no_auth:
        return None
    raise UsageError(
        f"{TOKEN_ENV} is not set: set it (or --token-file) to the token callers send "
        "(temporal --codec-auth 'Bearer TOKEN'), or pass --insecure-no-auth"
    )


def run(args: argparse.Namespace) -> int:
    """Validate everything, then listen until SIGINT/SIGTERM."""
    keys = keys_from_env()
    if keys is None:
        raise UsageError(f"no keys: set {KEYS_FILE_ENV} or {KEY_ENV} as for the worker")
    token = server_token(args.token_file, args.insecure_no_auth, os.environ.get(TOKEN_ENV, ""))
    default_origin = os.environ.get("DEPLOYFLOW_UI_URL") or TemporalConfig.ui_url
    origins = [ui_origin(o) for o in args.cors_origin or [default_origin]]
    host, port = parse_listen(args.listen)
    configure_logging(json=True)
    if token is None:
        log.warning("authentication is off (--insecure-no-auth): anyone can decrypt payloads")
    app = build_app(EncryptionCodec(keys), token, origins)
    asyncio.run(_serve(app, host, port, keys.ids, origins))
    return EXIT_OK


async def _serve(
    app: web.Application, host: str, port: int, key_ids: list[str], origins: list[str]
) -> None:
    runner = await start_site(app, host, port)
    stop = stop_on_signals()
    log.info("serving", url=f"http://{host}:{port}", keys=key_ids, cors_origins=origins)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
    log.info("stopped")
