"""`deployflow`: the command line, for people and for CI.

Exit codes: 0 success, 1 the rollout failed / was rolled back / aborted, 2 invalid input,
3 Temporal (or another dependency) unreachable. Errors are one clear line on stderr,
never a traceback for a user mistake.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from temporalio.service import RPCError, RPCStatusCode

from starters import (
    codec_server_command,
    devserver,
    emergency,
    history,
    incidents,
    monitors,
    pipelines,
    report_command,
    rollouts,
    routers,
    serve_command,
)
from starters.errors import EXIT_INVALID, EXIT_OK, EXIT_UNREACHABLE, UsageError
from workers import main as worker_main
from workers.codec_keys import CodecKeyError
from workers.config import TemporalConfig, TemporalConfigError, TemporalConnectError
from workers.logging_setup import configure_logging
from workflows.spec import SpecError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deployflow",
        description="Durable progressive delivery and incident response on Temporal.",
        epilog="Temporal: as the temporal CLI reads it (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, "
        "TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE); "
        "default localhost:7233, namespace default.",
    )
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="the Temporal client profile to use (default: TEMPORAL_PROFILE, else 'default')",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    devserver.add_parser(subparsers)
    worker = subparsers.add_parser("worker", help="run a worker for all deployflow workflows")
    worker.set_defaults(func=worker_main.run, sync=True)
    rollouts.add_parsers(subparsers)
    pipelines.add_parsers(subparsers)
    emergency.add_parser(subparsers)
    history.add_parser(subparsers)
    incidents.add_parsers(subparsers)
    monitors.add_parsers(subparsers)
    routers.add_parsers(subparsers)
    serve_command.add_parser(subparsers)
    report_command.add_parser(subparsers)
    codec_server_command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except SpecError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_INVALID
    except (UsageError, TemporalConfigError, CodecKeyError) as exc:
        print(f"deployflow: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except TemporalConnectError as exc:
        print(f"deployflow: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except BrokenPipeError:
        # Whoever read stdout went away (`| head`): nothing wrong with Temporal.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except (RPCError, ConnectionError, RuntimeError) as exc:
        if isinstance(exc, RPCError) and exc.status not in _UNREACHABLE:
            raise
        if isinstance(exc, RuntimeError) and "connect" not in str(exc).lower():
            raise
        address = TemporalConfig.from_env(args.profile).address
        print(f"deployflow: Temporal is unreachable at {address}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return 130


_UNREACHABLE = (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "worker":
        configure_logging(json=True)
        code: int = args.func(args)
        return code
    if args.command == "dev-server" or not getattr(args, "needs_client", True):
        code = args.func(args)
        return code
    configure_logging(json=False)
    prepare = getattr(args, "prepare", None)
    if prepare is not None:
        prepare(args)
    config = TemporalConfig.from_env(args.profile)

    async def run() -> int:
        identity_from = getattr(args, "identity_from", None)
        client = await config.connect(
            identity=getattr(args, identity_from, None) if identity_from else None
        )
        result: int = await args.func(args, config, client)
        return result

    return asyncio.run(run())


def entry() -> None:
    """Console-script entry point.

    Exits with ``os._exit`` after flushing: the Temporal client's Rust threads can outlive
    the event loop and abort CPython's finalisation ("PyGILState_Release ... finalizing",
    temporalio/sdk-python#300), which would turn exit code 0 into a SIGABRT in CI.
    """
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
