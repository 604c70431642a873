"""The `deployflow serve` subcommand's arguments, apart from the server itself: every CLI
call builds the parser, and importing the server (aiohttp) would cost each of them ~0.2 s.
"""

from __future__ import annotations

import argparse
from typing import Final

from starters.handler import Handler

TOKEN_ENV: Final = "DEPLOYFLOW_WEBHOOK_TOKEN"
API_TOKENS_ENV: Final = "DEPLOYFLOW_API_TOKENS"
DEFAULT_LISTEN: Final = "127.0.0.1:9095"
DEFAULT_MAX_BODY: Final = 1024 * 1024


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of bytes, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "serve",
        help="receive Alertmanager webhooks; serve the deployment API (/api/v1)",
        epilog=f"The webhook's Bearer token is read from {TOKEN_ENV}; the API's tokens from "
        f"--api-tokens or {API_TOKENS_ENV}. OpenAPI: /api/v1/openapi.json.",
    )
    p.add_argument(
        "--runbooks",
        required=True,
        metavar="FILE_OR_DIR",
        help="runbook YAML, or a directory of it",
    )
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT")
    p.add_argument(
        "--ui-url",
        metavar="URL",
        help="Temporal UI for incident links (default: DEPLOYFLOW_UI_URL, else http://localhost:8233)",
    )
    p.add_argument("--max-body-bytes", type=_positive, default=DEFAULT_MAX_BODY, metavar="N")
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help=f"start without {TOKEN_ENV}: anyone who can reach the port can open incidents",
    )
    p.add_argument(
        "--api-tokens",
        metavar="FILE",
        help=f"the deployment API's tokens (YAML; default: {API_TOKENS_ENV}); "
        "without any, /api/v1 answers 401",
    )
    p.add_argument(
        "--api-rate",
        default="600/minute",
        metavar="N/PERIOD",
        help="requests per API token (default 600/minute; second, minute or hour)",
    )
    # The server (aiohttp) is imported only when serving.
    p.set_defaults(func=Handler("starters.serve:run"), needs_client=False)
