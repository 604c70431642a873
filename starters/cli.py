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
import contextlib
import gc
import logging
import os
import sys
from collections.abc import Iterator, Sequence

from starters import (
    codec_server_command,
    commands,
    devserver,
    rehearsal_commands,
    report_command,
    serve_command,
)
from starters.errors import EXIT_INVALID, EXIT_OK, EXIT_UNREACHABLE, UsageError
from starters.handler import Handler
from workers import options as worker_options
from workers.codec_keys import CodecKeyError
from workers.config import TemporalConfig, TemporalConfigError, TemporalConnectError


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with ``only`` (the first word of the command line) one whose
    other groups of subcommands are left empty: parsing needs only the one being run."""

    def full(name: str) -> bool:
        return only is None or only == name

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
    worker = subparsers.add_parser(
        "worker",
        help="run a worker for all deployflow workflows (with --host: a load balancer's agent)",
    )
    worker_options.add_arguments(worker)
    worker.set_defaults(func=Handler("workers.main:run"), needs_client=False)
    commands.add_rollout(subparsers, full=full("rollout"))
    rehearsal_commands.add_analysis(subparsers, full=full("analysis"))
    commands.add_pipeline(subparsers, full=full("pipeline"))
    commands.add_rollback(subparsers)
    commands.add_history(subparsers)
    commands.add_incident(subparsers, full=full("incident"))
    commands.add_monitor(subparsers, full=full("monitor"))
    commands.add_router(subparsers, full=full("router"))
    commands.add_ui_views(subparsers)
    serve_command.add_parser(subparsers)
    report_command.add_parser(subparsers)
    codec_server_command.add_parser(subparsers)
    return parser


def parse_args(words: Sequence[str]) -> argparse.Namespace:
    """``words`` (the command line after ``deployflow``) parsed by a parser that builds the
    subcommands of the command being run only."""
    return build_parser(only=_command(words)).parse_args(words)


def _command(words: Sequence[str]) -> str:
    """The command ``words`` run: the first word that is not a top-level option (``-h``,
    ``--profile NAME``); "" if none."""
    rest = iter(words)
    for word in rest:
        if word == "--profile":
            next(rest, None)
        elif not word.startswith("-"):
            return word
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return dispatch(args)
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
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        code = _expected_failure(exc, args.profile)
        if code is None:
            raise
        return code


def _expected_failure(exc: Exception, profile: str | None) -> int | None:
    """Print ``exc`` and give its exit code if Temporal is unreachable, a spec is invalid or
    history names no version to roll back to; ``None`` for anything else (a bug: its
    traceback is wanted)."""
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
        address = TemporalConfig.from_env(profile).address
        print(f"deployflow: Temporal is unreachable at {address}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    from workflows.core.spec import SpecError
    from workflows.rollouts.emergency_plan import NoRollbackTarget

    if isinstance(exc, SpecError):
        print(str(exc), file=sys.stderr)
        return EXIT_INVALID
    if isinstance(exc, NoRollbackTarget):  # raised below starters, read as a UsageError
        print(f"deployflow: {exc}", file=sys.stderr)
        return EXIT_INVALID
    return None


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "worker":
        from workers.logging_setup import configure_logging

        configure_logging(json=True)
    func = args.func.resolve() if isinstance(args.func, Handler) else args.func
    if not getattr(args, "needs_client", True):
        gc.enable()  # start-up is over (see entry)
        code: int = func(args)
        return code
    prepare = getattr(args, "prepare", None)
    if prepare is not None:
        prepare(args)
    config = TemporalConfig.from_env(args.profile)
    import asyncio  # here: `--help` and the commands without Temporal do not need it (~20 ms)

    async def run() -> int:
        identity_from = getattr(args, "identity_from", None)
        client = await config.connect(
            identity=getattr(args, identity_from, None) if identity_from else None,
            plain_payloads=getattr(args, "plain_payloads", False),
        )
        gc.enable()  # start-up is over (see entry)
        result: int = await func(args, config, client)
        return result

    with console_logging_on_first_record():
        return asyncio.run(run())


@contextlib.contextmanager
def console_logging_on_first_record() -> Iterator[None]:
    """Console logging (structlog) while a command runs, set up only once something logs;
    nothing is left behind if nothing did (``main`` also runs in-process, in tests)."""
    root = logging.getLogger()
    handler, level = _ConsoleLoggingOnFirstRecord(), root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)  # what configure_logging sets
    try:
        yield
    finally:
        if handler in root.handlers:
            root.removeHandler(handler)
            root.setLevel(level)


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

    The cyclic garbage collector is off until the command has imported what it needs and
    connected (``dispatch`` turns it back on): importing the Temporal SDK makes it run again
    and again over objects that all stay alive, ~6 % of a short command (~15 ms).
    """
    gc.disable()
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
