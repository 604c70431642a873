"""The `deployflow codec-server` subcommand's arguments; the server itself is imported only
when it runs (``starters/codec_server.py``), so other commands do not pay for it."""

from __future__ import annotations

import argparse
from typing import Final

from starters.handler import Handler

TOKEN_ENV: Final = "DEPLOYFLOW_CODEC_SERVER_TOKEN"
DEFAULT_LISTEN: Final = "127.0.0.1:8888"


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "codec-server",
        help="decode encrypted payloads for the Temporal UI and `temporal --codec-endpoint`",
        epilog=f"Keys: DEPLOYFLOW_CODEC_KEYS or DEPLOYFLOW_CODEC_KEY, as the worker's. "
        f"The Bearer token callers must send is read from {TOKEN_ENV} or --token-file.",
    )
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="HOST:PORT")
    p.add_argument(
        "--cors-origin",
        action="append",
        metavar="ORIGIN",
        help="a Temporal UI origin allowed to call from a browser (repeatable; default: "
        "the origin of DEPLOYFLOW_UI_URL, else http://localhost:8233)",
    )
    p.add_argument("--token-file", metavar="FILE", help=f"the Bearer token, instead of {TOKEN_ENV}")
    p.add_argument(
        "--insecure-no-auth",
        action="store_true",
        help="start without a token: anyone who can reach the port can decrypt payloads",
    )
    p.set_defaults(func=Handler("starters.codec_server:run"), needs_client=False)
