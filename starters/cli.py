"""`deployflow`: the command line, for people and for CI.

Exit codes: 0 success, 1 the rollout failed / was rolled back / aborted, 2 invalid input,
3 Temporal (or another dependency) unreachable. Errors are one clear line on stderr,
never a traceback for a user mistake.

Start-up is kept short (DESIGN §6: ≤ 0.3 s for commands that only talk to Temporal): the
parser is built from modules that import nothing heavy, and a command imports its own
module when it runs (``starters/commands.py``). ``tests/unit/test_cli_imports.py`` pins it.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from starters import commands, devserver, serve_command
from starters.errors import EXIT_INVALID, EXIT_OK, EXIT_UNREACHABLE, UsageError
from workers.config import TemporalConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deployflow",
        description="Durable progressive delivery and incident response on Temporal.",
        epilog="Temporal: TEMPORAL_ADDRESS (localhost:7233), TEMPORAL_NAMESPACE (default).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    devserver.add_parser(subparsers)
    worker = subparsers.add_parser("worker", help="run a worker for all deployflow workflows")
    worker.set_defaults(func=commands.Handler("workers.main:run"), needs_client=False)
    commands.add_rollout(subparsers)
    commands.add_pipeline(subparsers)
    commands.add_rollback(subparsers)
    commands.add_history(subparsers)
    commands.add_incident(subparsers)
    commands.add_monitor(subparsers)
    commands.add_ui_views(subparsers)
    serve_command.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except UsageError as exc:
        print(f"deployflow: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:
        # Whoever read stdout went away (`| head`): nothing wrong with Temporal.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        code = _expected_failure(exc)
        if code is None:
            raise
        return code


def _expected_failure(exc: Exception) -> int | None:
    """Print ``exc`` and give its exit code if Temporal is unreachable or a spec is
    invalid; ``None`` for anything else (a bug: its traceback is wanted)."""
    # Imported here, not at start-up: only a command that called Temporal can raise an
    # RPCError, and only one that read a spec a SpecError.
    from temporalio.service import RPCError, RPCStatusCode

    if isinstance(exc, RPCError):
        unreachable = exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED)
    else:
        unreachable = isinstance(exc, ConnectionError) or (
            isinstance(exc, RuntimeError) and "connect" in str(exc).lower()
        )
    if unreachable:
        address = TemporalConfig.from_env().address
        print(f"deployflow: Temporal is unreachable at {address}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    from workflows.spec import SpecError

    if isinstance(exc, SpecError):
        print(str(exc), file=sys.stderr)
        return EXIT_INVALID
    return None


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "worker":
        from workers.logging_setup import configure_logging

        configure_logging(json=True)
    if not getattr(args, "needs_client", True):
        code: int = args.func(args)
        return code
    log_to_console_on_first_record()
    prepare = getattr(args, "prepare", None)
    if prepare is not None:
        prepare(args)
    config = TemporalConfig.from_env()
    import asyncio  # here: `--help` and the commands without Temporal do not need it (~20 ms)

    async def run() -> int:
        identity_from = getattr(args, "identity_from", None)
        client = await config.connect(
            identity=getattr(args, identity_from, None) if identity_from else None,
            plain_payloads=getattr(args, "plain_payloads", False),
        )
        result: int = await args.func(args, config, client)
        return result

    return asyncio.run(run())


def log_to_console_on_first_record() -> None:
    """Console logging (structlog) for a command, set up only once something logs."""
    root = logging.getLogger()
    root.addHandler(_ConsoleLoggingOnFirstRecord())
    root.setLevel(logging.INFO)  # what configure_logging sets


class _ConsoleLoggingOnFirstRecord(logging.Handler):
    """Sets up structlog's console logging when something first logs (the SDK, on a
    retry or a warning), then hands it the record: importing structlog costs a command
    ~0.1 s, and most commands log nothing."""

    def emit(self, record: logging.LogRecord) -> None:
        from workers.logging_setup import configure_logging

        configure_logging(json=False)  # replaces this handler on the root logger
        logging.getLogger().handle(record)


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
